// Issue 10 end to end: a backup's answer is a normal response, so the filters around ai-fallback
// see it. One Envoy with CORS first (route policy), a header mutation and gzip before the filter,
// and local_reply_config turning local replies into JSON.
const zlib = require("node:zlib");
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { CORS_ORIGIN, cors, corsRoutePolicy, responseHeaderMutation, gzipCompressor, jsonLocalReplies, seenByFilters, SEEN, UNSEEN } = require("../support/http_filters");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const STREAM = { ...CHAT, stream: true };
const FROM_BROWSER = { origin: CORS_ORIGIN };
const SSE_EVENTS = ['{"choices":[{"delta":{"content":"hi"}}]}', '{"choices":[{"delta":{},"finish_reason":"stop"}]}'];
const SSE_BYTES = SSE_EVENTS.map((e) => `data: ${e}\n\n`).join("") + "data: [DONE]\n\n";
const FIVE_MIB = Buffer.alloc(5 * 1024 * 1024 + 123, "abcdefghijklmnopqrstuvwxyz0123456789\n");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup-a" }, { service: "backup-b" }], firstPacketTimeout: 300 },
    clusters: { primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port },
    routes: [{ name: "chat", prefix: "/", typedPerFilterConfig: corsRoutePolicy }],
    extraHttpFilters: [cors, responseHeaderMutation("x-mutated", "yes"), gzipCompressor],
    connectionManager: jsonLocalReplies,
  });
});

describe("a held primary error: the answer is swapped in place", () => {
  test("status fallback: the backup's answer carries CORS and the header mutation", async () => {
    m.primary.behave({ status: 503, json: { error: "down" } });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(seenByFilters(res)).toEqual(SEEN);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-served-by"]).toBe("backup-a");
  });

  test("exhausted chain: the last error is the client's answer, with CORS, untouched by local_reply_config", async () => {
    m.primary.behave({ status: 500, body: "primary down" });
    m.backupA.behave({ status: 503, body: "a down" });
    m.backupB.behave({ status: 429, headers: { "content-type": "application/json", "retry-after": "7" }, body: '{"error":"b busy"}' });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(429);
    expect(res.text).toBe('{"error":"b busy"}');
    expect(res.headers["retry-after"]).toBe("7");
    expect(seenByFilters(res)).toEqual(SEEN);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=500, backup-a;model=pass-through;result=503, backup-b;model=pass-through;result=429");
  });

  test("a backup's SSE stream arrives byte-exact as text/event-stream despite a JSON body_format", async () => {
    m.primary.behave({ status: 429, json: { error: "slow down" } });
    m.backupA.behave({ sse: { events: SSE_EVENTS } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/event-stream");
    expect(res.text).toBe(SSE_BYTES);
    expect(seenByFilters(res)).toEqual(SEEN);
  });

  test("the compressor before this filter gzips the backup's answer for a client that accepts gzip", async () => {
    m.primary.behave({ status: 502 });
    const res = await request(envoy.port, { body: CHAT, headers: { "accept-encoding": "gzip" } });
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(zlib.gunzipSync(res.body).toString("utf8")).served_by).toBe("backup-a");
  });

  test("a 5 MiB backup answer passes whole: no buffer limit, no 500, no reset", async () => {
    m.primary.behave({ status: 503, json: { error: "down" } });
    m.backupA.behave({ body: FIVE_MIB, headers: { "content-type": "application/octet-stream" } });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect([res.status, res.error ?? "complete"]).toEqual([200, "complete"]);
    expect(res.body.length).toBe(FIVE_MIB.length);
    expect(res.body.equals(FIVE_MIB)).toBe(true);
    expect(seenByFilters(res)).toEqual(SEEN);
  });

  test("a large primary error body is held under flow control and dropped for the answer", async () => {
    m.primary.behave({ status: 500, body: FIVE_MIB });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
  });
});

describe("no primary response yet (first packet timeout before any header): a local reply through the chain", () => {
  test("the backup's SSE answer carries CORS and arrives byte-exact, not rewritten to JSON", async () => {
    m.primary.behave({ hang: true });
    m.backupA.behave({ sse: { events: SSE_EVENTS } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/event-stream");
    expect(res.text).toBe(SSE_BYTES);
    expect(seenByFilters(res)).toEqual(SEEN);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
  });

  test("a 5 MiB answer passes whole", async () => {
    m.primary.behave({ hang: true });
    m.backupA.behave({ body: FIVE_MIB, headers: { "content-type": "application/octet-stream" } });
    const res = await request(envoy.port, { body: STREAM });
    expect([res.status, res.error ?? "complete"]).toEqual([200, "complete"]);
    expect(res.body.equals(FIVE_MIB)).toBe(true);
  });

  test("an exhausted chain: the last error (Envoy's 503 for a reset call) arrives as it was, with CORS", async () => {
    m.primary.behave({ hang: true });
    m.backupA.behave({ reset: true });
    m.backupB.behave({ reset: true });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(503);
    expect(seenByFilters(res)).toEqual(SEEN);
    expect(res.text).not.toMatch(/^\{"code"/);
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-b;model=pass-through;result=no_response$/);
  });
});

describe("held primary headers that no body can follow: Envoy sends the answer straight to the client", () => {
  // Envoy gives a filter no way to add a body to a response whose body callbacks will not come, and
  // a local reply sent while response headers are held skips every encoder filter.
  test("a headers-only primary error: the client gets the backup's answer; the filters before this one do not see it", async () => {
    m.primary.behave({ status: 503, body: "" });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(seenByFilters(res)).toEqual(UNSEEN);
    expect(JSON.parse(res.json().error).served_by).toBe("backup-a"); // local_reply_config wrapped it
  });

  test("a first packet timeout after 2xx headers: the same", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(seenByFilters(res)).toEqual(UNSEEN);
    expect(JSON.parse(res.json().error).served_by).toBe("backup-a");
  });
});
