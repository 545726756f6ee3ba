// Clients that leave: streaming requests each closed by its client as soon as the model service
// (a mock that never answers) has it. Shared by the e2e tests and `npm run soak`.
"use strict";

const http = require("node:http");

/**
 * Sends `count` streaming requests (numbered from `from`), `concurrency` at a time, to Envoy on
 * `port`; `mock` hangs each and says which arrived, and its client then closes the connection.
 * `requestId(n)`: each request's x-request-id. Resolves with how many reached the mock.
 */
async function sendCancelled({ port, mock, from = 0, count, concurrency, requestId, body }) {
  const waiting = new Map();
  mock.behave((entry) => {
    const arrived = waiting.get(entry.headers["x-n"]);
    if (arrived) arrived();
    return { hang: true };
  });
  const payload = body ?? JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] });
  let next = from;
  let reached = 0;
  const one = (n) => new Promise((resolve) => {
    const req = http.request({
      host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), "x-n": String(n), "x-request-id": requestId(n) },
    });
    const done = (arrived) => {
      clearTimeout(timer);
      waiting.delete(String(n));
      if (arrived) reached++;
      req.destroy();
      resolve();
    };
    const timer = setTimeout(() => done(false), 10000);
    waiting.set(String(n), () => done(true));
    req.on("error", () => {});
    req.end(payload);
  });
  const worker = async () => {
    while (next < from + count) {
      await one(next++);
      // The mock's record of hung requests (their large ids) is not the caller's to keep.
      if (mock.requests.length > 1000) mock.requests.length = 0;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  mock.requests.length = 0;
  return reached;
}

module.exports = { sendCancelled };
