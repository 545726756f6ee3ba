// A mock external processor for Envoy's ext_proc filter, on 127.0.0.1: gRPC over plaintext HTTP/2
// (node:http2), the service envoy.service.ext_proc.v3.ExternalProcessor/Process, its protobuf
// messages encoded by hand. It lets every request's headers through and then refuses, at the whole
// body, each request that carries REFUSE_HEADER: an ImmediateResponse 403 "refused by ext_proc" with
// no details (the case a local reply without response details stands for). The rest continue.
"use strict";

const http2 = require("node:http2");

const REFUSE_HEADER = "x-ext-proc-refuse";
const REFUSAL_BODY = "refused by ext_proc";
const PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

// Field numbers, from envoy/service/ext_proc/v3/external_processor.proto, envoy/type/v3/http_status.proto
// and envoy/config/core/v3/base.proto.
const REQ = { requestHeaders: 2, responseHeaders: 3, requestBody: 4, responseBody: 5, requestTrailers: 6, responseTrailers: 7 };
const RESP_IMMEDIATE = 7; // ProcessingResponse.immediate_response
const HTTP_HEADERS_HEADERS = 1; // HttpHeaders.headers (a HeaderMap)
const HEADER_MAP_HEADERS = 1; // HeaderMap.headers (repeated HeaderValue)
const HEADER_VALUE_KEY = 1; // HeaderValue.key
const HTTP_BODY_BODY = 1; // HttpBody.body
const HTTP_BODY_END = 2; // HttpBody.end_of_stream
const IMMEDIATE_STATUS = 1; // ImmediateResponse.status (an HttpStatus)
const IMMEDIATE_BODY = 3; // ImmediateResponse.body
const HTTP_STATUS_CODE = 1; // HttpStatus.code
// ProcessingRequest's oneof request fields 2..7 are answered by ProcessingResponse's fields 1..6, in the
// same order (request_headers -> request_headers, ... response_trailers -> response_trailers).
const answerFieldFor = (requestField) => requestField - 1;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

function varint(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

const tag = (field, wire) => varint(field * 8 + wire);
const lenField = (field, bytes) => Buffer.concat([tag(field, WIRE_LEN), varint(bytes.length), bytes]);
const varintField = (field, value) => Buffer.concat([tag(field, WIRE_VARINT), varint(value)]);

/** The fields of one protobuf message: [{ field, value }] (value: a number or a Buffer). */
function decode(buf) {
  const fields = [];
  let i = 0;
  const readVarint = () => {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint");
      const byte = buf[i++];
      n += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return n;
      scale *= 128;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === WIRE_VARINT) fields.push({ field, value: readVarint() });
    else if (wire === WIRE_LEN) {
      const len = readVarint();
      fields.push({ field, value: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8; // fixed64
    else if (wire === 5) i += 4; // fixed32
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

const first = (fields, field) => fields.find((f) => f.field === field)?.value;

function headerNames(httpHeaders) {
  const map = first(decode(httpHeaders), HTTP_HEADERS_HEADERS);
  if (!map) return [];
  return decode(map)
    .filter((f) => f.field === HEADER_MAP_HEADERS)
    .map((f) => String(first(decode(f.value), HEADER_VALUE_KEY) ?? ""));
}

/** A gRPC message frame: compressed flag 0, 4-byte big-endian length, the message. */
function grpcFrame(message) {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const continueAnswer = (requestField) => lenField(answerFieldFor(requestField), Buffer.alloc(0));
const refusal = () =>
  lenField(RESP_IMMEDIATE, Buffer.concat([
    lenField(IMMEDIATE_STATUS, varintField(HTTP_STATUS_CODE, 403)),
    lenField(IMMEDIATE_BODY, Buffer.from(REFUSAL_BODY)),
  ]));

async function startExtProc() {
  const sessions = new Set();
  const processor = {
    port: 0,
    /** One entry per Process stream: { headers: [names], bodies: [strings], refused }. */
    streams: [],
    reset() {
      this.streams = [];
    },
    async stop() {
      for (const s of sessions) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const server = http2.createServer();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    if (headers[":path"] !== PROCESS_PATH) {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    const seen = { headers: [], bodies: [], refused: false };
    processor.streams.push(seen);
    let refuse = false;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));

    const answer = (message) => {
      if (!stream.destroyed && !stream.writableEnded) stream.write(grpcFrame(message));
    };
    const onMessage = (message) => {
      const fields = decode(message);
      const part = fields.find((f) => f.field >= REQ.requestHeaders && f.field <= REQ.responseTrailers);
      if (!part) return;
      if (part.field === REQ.requestHeaders) {
        seen.headers = headerNames(part.value);
        refuse = seen.headers.includes(REFUSE_HEADER);
        answer(continueAnswer(part.field));
      } else if (part.field === REQ.requestBody) {
        const body = decode(part.value);
        seen.bodies.push(Buffer.from(first(body, HTTP_BODY_BODY) ?? Buffer.alloc(0)).toString("utf8"));
        if (refuse && first(body, HTTP_BODY_END) === 1) {
          seen.refused = true;
          answer(refusal());
          stream.end();
        } else answer(continueAnswer(part.field));
      } else answer(continueAnswer(part.field));
    };

    let pending = Buffer.alloc(0);
    stream.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const len = pending.readUInt32BE(1);
        if (pending.length < 5 + len) break;
        const message = pending.subarray(5, 5 + len);
        pending = pending.subarray(5 + len);
        onMessage(message);
      }
    });
    stream.on("end", () => {
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  processor.port = server.address().port;
  return processor;
}

/**
 * The ext_proc filter asking the processor through cluster `cluster` (an HTTP/2 cluster: a cluster
 * spec with http2: true): request headers, then the whole request body; no response parts.
 */
function extProcFilter(cluster = "ext-proc") {
  return {
    name: "envoy.filters.http.ext_proc",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
      grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: "5s" },
      processing_mode: { request_header_mode: "SEND", request_body_mode: "BUFFERED", response_header_mode: "SKIP" },
      message_timeout: "5s",
    },
  };
}

module.exports = { startExtProc, extProcFilter, REFUSE_HEADER, REFUSAL_BODY };
