// Uploads a file with tus-js-client (the tus project's JavaScript client) in Node, for
// pipe-server's end-to-end tests. One JSON object per line on stdout:
//   {"url": …}                  once the upload exists
//   {"acked": n, "total": n}    after each chunk the server accepted
//   {"done": true, "url": …}    when the upload is complete
//   {"error": "…"}              and exit code 1 when it failed
//
// node tus-upload.mjs <endpoint> <file> <chunk bytes> <metadata JSON> [<upload URL to resume>
//   [<bytes after which the client kills itself with SIGKILL, as a crash would>]]
import { readFileSync } from 'node:fs';
import { Upload } from 'tus-js-client';

const [endpoint, path, chunk, metadata, resume, dieAfter] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const file = readFileSync(path);
let told = false;
const upload = new Upload(file, {
  endpoint,
  uploadUrl: resume || null,
  chunkSize: Number(chunk),
  metadata: JSON.parse(metadata),
  retryDelays: [0, 500, 1000, 2000],
  onChunkComplete(_size, acked, total) {
    if (!told) {
      say({ url: upload.url });
      told = true;
    }
    say({ acked, total });
    if (dieAfter && acked >= Number(dieAfter)) process.kill(process.pid, 'SIGKILL');
  },
  onSuccess() {
    say({ done: true, url: upload.url });
  },
  onError(error) {
    say({ error: String(error) });
    process.exit(1);
  },
});
upload.start();
