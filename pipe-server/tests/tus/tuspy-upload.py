"""Uploads a file with tuspy (the tus project's Python client), chunk by chunk with
sha1 Upload-Checksum headers, for pipe-server's end-to-end tests. One JSON object per
line on stdout: {"url": ...} once the upload exists, {"offset": n} after each chunk,
{"done": true} at the end.

python3 tuspy-upload.py <endpoint> <file> <chunk bytes> <metadata JSON> [<upload URL> or ""
  [<offset after which to stop, as a client that went away>]]
"""

import json
import sys

from tusclient import client


def say(o):
    print(json.dumps(o), flush=True)


def main():
    endpoint, path, chunk, metadata = sys.argv[1:5]
    resume = (sys.argv[5] if len(sys.argv) > 5 else "") or None
    stop = int(sys.argv[6]) if len(sys.argv) > 6 else None
    tus = client.TusClient(endpoint)
    uploader = tus.uploader(
        path,
        url=resume,
        chunk_size=int(chunk),
        metadata=json.loads(metadata),
        upload_checksum=True,
    )
    if not uploader.url:
        uploader.set_url(uploader.create_url())
        uploader.offset = 0
    say({"url": uploader.url})
    size = uploader.get_file_size()
    while uploader.offset < size:
        uploader.upload_chunk()
        say({"offset": uploader.offset})
        if stop is not None and uploader.offset >= stop:
            return
    say({"done": True})


main()
