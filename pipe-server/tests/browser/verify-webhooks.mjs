// Verifies webhook requests with the Standard Webhooks reference library (`standardwebhooks`
// on npm), not with our own code: what a receiver written in JavaScript would run.
//
// stdin: one JSON document {"secret": "whsec_…", "requests": [{"headers": {…}, "body": "<base64>"}]}.
// stdout: one line per request, "ok" or "error: <why>".
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, requests } = JSON.parse(input);
const webhook = new Webhook(secret);
for (const { headers, body } of requests) {
  try {
    webhook.verify(Buffer.from(body, "base64").toString("utf8"), headers);
    console.log("ok");
  } catch (e) {
    console.log(`error: ${e.message}`);
  }
}
