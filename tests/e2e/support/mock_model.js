// A scriptable OpenAI-compatible model service on 127.0.0.1 for the end-to-end tests.
//
//   const m = await startMock("backup-a");
//   m.behave({ status: 503, json: { error: { message: "down" } } });   // from now on
//   m.behave([{ hang: true }, {}]);                                    // first request hangs, then defaults
//   m.behave((req) => (req.headers["x-fault"] ? { status: 503 } : {})); // per request
//   m.requests  // [{ method, path, headers, rawHeaders, body, receivedAt, complete, cancelledAt }]
//   (cancelledAt: when the peer closed the answer before its end, else null)
//
// A behaviour: { status=200, headers={}, body (string|Buffer|object -> JSON), json, delayHeadersMs=0,
//   delayBodyMs=0, hang=false, reset=false, trailers (object: sent after a chunked body),
//   answerEarly=false (answer at the request's headers, before its body has arrived),
//   sse: { events: [data lines], intervalMs=0, firstDelayMs=0, keepAlives: [{ afterMs, text }],
//          resetAfter: n, stallAfterHeaders: bool,
//          raw: [SSE texts written as they are, in place of events (no [DONE] after them)],
//          stallAfterEvents: bool (the stream stays open after its events: no [DONE], no end) } }
// Without body, json or sse: a 2xx status answers with an OpenAI chat completion naming this mock,
// any other status with an OpenAI-style error object. Every answer carries `x-served-by: <name>`
// unless the behaviour's headers override it. Behaviour headers override the defaults (content-type,
// content-length, ...). A string or Buffer body gets no content-type unless the headers give one.
"use strict";

const http = require("node:http");

const liveMocks = new Set();

function requestedModel(body) {
  try {
    const parsed = JSON.parse(body.toString("utf8"));
    if (parsed && typeof parsed.model === "string") return parsed.model;
  } catch {
    // not JSON
  }
  return "unknown";
}

function defaultCompletion(name, model) {
  return {
    id: `chatcmpl-${name}`,
    object: "chat.completion",
    model,
    choices: [{ index: 0, message: { role: "assistant", content: `hello from ${name}` }, finish_reason: "stop" }],
    served_by: name,
  };
}

function defaultSseEvents(name, model) {
  const chunk = (delta, finish) =>
    JSON.stringify({
      id: `chatcmpl-${name}`,
      object: "chat.completion.chunk",
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
      served_by: name,
    });
  return [chunk({ role: "assistant", content: "hello " }, null), chunk({ content: `from ${name}` }, null), chunk({}, "stop")];
}

// Header names are compared case-insensitively; the behaviour's headers win.
function mergeHeaders(defaults, overrides) {
  const out = {};
  const lower = new Set(Object.keys(overrides || {}).map((k) => k.toLowerCase()));
  for (const [k, v] of Object.entries(defaults)) if (!lower.has(k.toLowerCase())) out[k] = v;
  for (const [k, v] of Object.entries(overrides || {})) out[k] = v;
  return out;
}

// recordBodies: false keeps only each request's body length (`bodyLength`), for load tests whose
// bodies would not fit in memory.
async function startMock(name = "mock", { port = 0, host = "127.0.0.1", recordBodies = true } = {}) {
  const requests = [];
  const sockets = new Set();
  const timers = new Set();
  let current = {};
  let queue = null;

  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const wait = (ms) => (ms > 0 ? new Promise((resolve) => later(ms, resolve)) : Promise.resolve());

  // A behaviour may be a function of the request entry (method, path, headers): one per request.
  function nextBehaviour(entry) {
    let b = current;
    if (queue) b = (queue.length > 1 ? queue.shift() : queue[0]) ?? {};
    return typeof b === "function" ? b(entry) ?? {} : b;
  }

  const gone = (res) => res.destroyed || res.socket == null || res.socket.destroyed;

  async function answerSse(req, res, b, entry) {
    const sse = b.sse;
    const model = requestedModel(entry.body);
    const events = sse.raw ?? (sse.events ?? defaultSseEvents(name, model)).map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`);
    await wait(b.delayHeadersMs ?? 0);
    if (gone(res)) return;
    res.writeHead(
      b.status ?? 200,
      mergeHeaders({ "content-type": "text/event-stream", "cache-control": "no-cache", "x-served-by": name }, b.headers),
    );
    res.flushHeaders();
    for (const ka of sse.keepAlives ?? []) {
      later(ka.afterMs ?? 0, () => {
        if (!gone(res) && !res.writableEnded) res.write(ka.text ?? ": ping\n\n");
      });
    }
    if (sse.stallAfterHeaders) return; // headers only; stop() or the peer closes the socket
    // Resolves once the bytes are handed to the kernel, so a reset right after still delivers them.
    const send = (text) => new Promise((resolve) => res.write(text, () => resolve()));
    const count = sse.resetAfter === undefined ? events.length : Math.min(sse.resetAfter, events.length);
    await wait(sse.firstDelayMs ?? 0);
    for (let i = 0; i < count; i++) {
      if (i > 0) await wait(sse.intervalMs ?? 0);
      if (gone(res)) return;
      await send(events[i]);
    }
    if (sse.stallAfterEvents) return; // open, silent; stop() or the peer closes the socket
    if (sse.resetAfter !== undefined) {
      req.socket.destroy();
      return;
    }
    await wait(sse.intervalMs ?? 0);
    if (gone(res)) return;
    res.end(sse.raw ? undefined : "data: [DONE]\n\n");
  }

  async function answer(req, res, b, entry) {
    if (b.hang) return; // never answer; the socket stays open until the peer or stop() closes it
    if (b.reset) {
      req.socket.destroy();
      return;
    }
    if (b.sse) return answerSse(req, res, b, entry);

    const status = b.status ?? 200;
    const defaults = { "x-served-by": name };
    let payload;
    if (b.json !== undefined) {
      payload = Buffer.from(JSON.stringify(b.json));
      defaults["content-type"] = "application/json";
    } else if (b.body !== undefined && b.body !== null) {
      if (Buffer.isBuffer(b.body)) payload = b.body;
      else if (typeof b.body === "string") payload = Buffer.from(b.body);
      else {
        payload = Buffer.from(JSON.stringify(b.body));
        defaults["content-type"] = "application/json";
      }
    } else {
      const model = requestedModel(entry.body);
      const obj =
        status >= 200 && status < 300
          ? defaultCompletion(name, model)
          : { error: { message: `${name} answered ${status}`, type: "mock_error", code: status }, served_by: name };
      payload = Buffer.from(JSON.stringify(obj));
      defaults["content-type"] = "application/json";
    }
    // With trailers the body goes chunked (trailers need chunked transfer encoding).
    // announceTrailers: false leaves out the `trailer` header (HTTP/1.1 lets a sender not announce them).
    if (b.trailers && b.announceTrailers !== false) defaults.trailer = Object.keys(b.trailers).join(", ");
    else if (b.trailers) defaults["transfer-encoding"] = "chunked";
    else defaults["content-length"] = String(payload.length);
    const headers = mergeHeaders(defaults, b.headers);

    await wait(b.delayHeadersMs ?? 0);
    if (gone(res)) return;
    if (b.delayBodyMs) {
      res.writeHead(status, headers);
      res.flushHeaders();
      await wait(b.delayBodyMs);
      if (gone(res)) return;
      res.end(payload);
    } else if (b.trailers) {
      res.writeHead(status, headers);
      res.write(payload);
      res.addTrailers(b.trailers);
      res.end();
    } else {
      res.writeHead(status, headers);
      res.end(payload);
    }
  }

  // Headers as large as Envoy lets through (its max_request_headers_kb, at most 8 MiB), not Node's 16 KiB.
  const server = http.createServer({ maxHeaderSize: 8 * 1024 * 1024 }, (req, res) => {
    const entry = {
      method: req.method,
      path: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0), // filled in when the whole body has arrived (then complete=true)
      receivedAt: Date.now(),
      complete: false,
      cancelledAt: null,
    };
    requests.push(entry);
    res.on("close", () => {
      if (!res.writableFinished) entry.cancelledAt = Date.now();
    });
    const behaviour = nextBehaviour(entry);
    const chunks = [];
    let bodyLength = 0;
    const respond = () => answer(req, res, behaviour, entry).catch((err) => {
      // A write after the peer went away; nothing to answer any more.
      if (!res.headersSent && !gone(res)) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`mock ${name}: ${err.message}`);
      }
    });
    // answerEarly: the answer goes out at the request's headers, before its body has arrived.
    if (behaviour.answerEarly) respond();
    req.on("data", (c) => {
      bodyLength += c.length;
      if (recordBodies) chunks.push(c);
    });
    req.on("end", () => {
      entry.body = Buffer.concat(chunks);
      entry.bodyLength = bodyLength;
      entry.complete = true;
      if (!behaviour.answerEarly) respond();
    });
    req.on("close", () => {
      if (!entry.complete) {
        entry.body = Buffer.concat(chunks);
        entry.bodyLength = bodyLength;
      }
    });
  });
  // No idle timeout on kept-alive connections: Envoy reuses them, and a server-side close racing a
  // new request would show up as a spurious upstream reset.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on("connection", (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (err, socket) => socket.destroy());

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.removeListener("error", reject);
      resolve();
    });
  });

  let stopped = null;
  const mock = {
    name,
    port: server.address().port,
    requests,
    behave(b) {
      if (Array.isArray(b)) {
        queue = b.length ? [...b] : null;
        current = {};
      } else {
        queue = null;
        current = b ?? {};
      }
      return mock;
    },
    // Forget the recorded requests (the array is emptied in place) and go back to the default behaviour.
    reset() {
      requests.length = 0;
      queue = null;
      current = {};
      return mock;
    },
    // Close every open connection (hung requests end with a reset); the server keeps listening.
    dropConnections() {
      for (const s of sockets) s.destroy();
      return mock;
    },
    stop() {
      if (!stopped) {
        stopped = new Promise((resolve) => {
          for (const t of timers) clearTimeout(t);
          timers.clear();
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }).then(() => {
          liveMocks.delete(mock);
        });
      }
      return stopped;
    },
  };
  liveMocks.add(mock);
  return mock;
}

async function stopAllMocks() {
  await Promise.all([...liveMocks].map((m) => m.stop()));
}

module.exports = { startMock, stopAllMocks };
