// A small HTTP/1.1 client for the end-to-end tests: one connection per request, every response chunk
// kept with its arrival time, resets and timeouts reported instead of thrown.
"use strict";

const http = require("node:http");

const now = () => Number(process.hrtime.bigint() / 1000n) / 1000; // ms, monotonic

function prepare(port, opts = {}) {
  const { method = "POST", path = "/v1/chat/completions", headers = {}, body } = opts;
  const outHeaders = { ...headers };
  const has = (name) => Object.keys(outHeaders).some((k) => k.toLowerCase() === name);
  let payload = null;
  if (body !== undefined && body !== null) {
    if (Buffer.isBuffer(body)) payload = body;
    else if (typeof body === "string") payload = Buffer.from(body);
    else {
      payload = Buffer.from(JSON.stringify(body));
      if (!has("content-type")) outHeaders["content-type"] = "application/json";
    }
    if (!has("content-length") && !has("transfer-encoding")) outHeaders["content-length"] = String(payload.length);
  }
  return { options: { host: "127.0.0.1", port, method, path, headers: outHeaders, agent: false }, payload };
}

function makeResult() {
  const result = {
    status: 0,
    headers: {},
    rawHeaders: [],
    body: Buffer.alloc(0),
    text: "",
    chunks: [],
    complete: false,
    json() {
      return JSON.parse(result.text);
    },
  };
  return result;
}

function finish(result) {
  result.body = Buffer.concat(result.chunks.map((c) => c.data));
  result.text = result.body.toString("utf8");
  return result;
}

/**
 * Sends one request to 127.0.0.1:port. Resolves with
 * { status, headers, rawHeaders, body, text, json(), chunks: [{ at, data }], complete, trailers, error? }:
 * error is 'reset' when the connection broke before the response was complete (status 0 when no
 * response head arrived) and 'timeout' when it took longer than timeoutMs. Rejects only when the
 * connection is refused.
 */
function request(port, opts = {}) {
  const { timeoutMs = 15000 } = opts;
  const { options, payload } = prepare(port, opts);
  const result = makeResult();
  return new Promise((resolve, reject) => {
    const start = now();
    let settled = false;
    let res = null;
    const settle = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      result.complete = !error && res !== null && res.complete;
      if (error) result.error = error;
      else if (!result.complete) result.error = "reset";
      resolve(finish(result));
    };
    const timer = setTimeout(() => {
      settle("timeout");
      req.destroy();
    }, timeoutMs);

    const req = http.request(options, (r) => {
      res = r;
      record(result, r, start, opts.onChunk);
      r.on("end", () => {
        result.trailers = r.trailers;
        settle(r.complete ? undefined : "reset");
      });
      r.on("aborted", () => settle("reset"));
      r.on("error", () => settle("reset"));
      r.on("close", () => settle(r.complete ? undefined : "reset"));
    });
    req.on("error", (err) => {
      if (settled) return;
      if (err.code === "ECONNREFUSED" && res === null) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`request to 127.0.0.1:${port} refused: is the server running?`));
        return;
      }
      result.errorCode = err.code;
      settle("reset");
    });
    req.end(payload ?? undefined);
  });
}

/**
 * Records a response's status and headers, and each body chunk with its arrival time; `onChunk`
 * (optional) sees each chunk as it arrives, with the result so far (the demo prints them live).
 */
function record(result, r, start, onChunk) {
  result.status = r.statusCode;
  result.headers = r.headers;
  result.rawHeaders = r.rawHeaders;
  result.headersAt = now() - start;
  r.on("data", (data) => {
    const chunk = { at: now() - start, data };
    result.chunks.push(chunk);
    if (onChunk) onChunk(chunk, result);
  });
}

/**
 * Sends a request and destroys the client socket `ms` after sending it (the client goes away).
 * Resolves once the socket is destroyed with whatever had arrived:
 * { status, headers, rawHeaders, body, text, json(), chunks, complete, aborted }; aborted is false
 * when the response had already completed before the deadline.
 */
function abortAfter(port, opts, ms) {
  const { options, payload } = prepare(port, opts);
  const result = makeResult();
  return new Promise((resolve) => {
    const start = now();
    let res = null;
    const req = http.request(options, (r) => {
      res = r;
      record(result, r, start, opts.onChunk);
      r.on("error", () => {});
    });
    req.on("error", (err) => {
      result.errorCode = result.errorCode ?? err.code;
    });
    setTimeout(() => {
      result.complete = res !== null && res.complete;
      result.aborted = !result.complete;
      const sock = req.socket;
      const done = () => resolve(finish(result));
      if (!sock || sock.destroyed) {
        req.destroy();
        done();
        return;
      }
      sock.once("close", done);
      req.destroy();
    }, ms);
    req.end(payload ?? undefined);
  });
}

// A POST whose body goes out in pieces, `gapMs` apart (chunked transfer encoding). Resolves with the
// response, `sentAt` (Date.now() when each piece was written) and `sentAllAt`, when the last piece
// was written. `headers` are added to the request's.
function chunkedRequest(port, path, parts, gapMs, headers = {}) {
  return new Promise((resolve, reject) => {
    let sentAllAt = 0;
    const sentAt = [];
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", agent: false, headers: { "content-type": "application/json", ...headers } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString(), sentAt, sentAllAt }));
    });
    req.on("error", reject);
    let i = 0;
    const next = () => {
      if (i === parts.length) {
        sentAllAt = Date.now();
        return req.end();
      }
      sentAt.push(Date.now());
      req.write(parts[i++]);
      setTimeout(next, gapMs);
    };
    next();
  });
}

/** When (a chunk's `at`) each SSE data event of `res` arrived, one entry per `data: {` line. */
function sseEventTimes(res) {
  const out = [];
  for (const c of res.chunks) {
    const n = (c.data.toString("utf8").match(/^data: \{/gm) ?? []).length;
    for (let i = 0; i < n; i++) out.push(c.at);
  }
  return out;
}

module.exports = {
  sseEventTimes, chunkedRequest, request, abortAfter };
