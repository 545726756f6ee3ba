// Issue 12 end to end: the streamed mode (docs/streamed-mode.md). Envoy's router retries on the
// next priority group's cluster; the module's upstream role rewrites each backup attempt; the
// backup's SSE reaches the client as the backup writes it.
const { startEnvoy, counter, growth } = require("../support/envoy");
const { request, sseEventTimes: eventTimes } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, sseEvents, TWO_BACKUPS: PLUGIN, streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;
let refusedPort;

// The backup writes its first event 300 ms after the request, then one a second: ~4.3 s.
const FIRST_DELAY_MS = 300;
const INTERVAL_MS = 1000;
const EVENTS = sseEvents(5);
const backupStream = { sse: { events: EVENTS, firstDelayMs: FIRST_DELAY_MS, intervalMs: INTERVAL_MS } };
// Tests about who answers, not when, use a short stream.
const SHORT = EVENTS.slice(0, 2);
const shortStream = { sse: { events: SHORT, intervalMs: 200 } };
// Allowance for a loaded 2-core machine shared with other test runs (Envoy's retry back-off is at most 1-5 ms).
const MARGIN_MS = 400;

function bootstrapFor(primaryPort, plugin = PLUGIN) {
  return streamedBootstrapFor(m, primaryPort, plugin);
}

beforeAll(async () => {
  // A port nothing listens on: the second Envoy's primary refuses connections.
  const probe = require("node:net").createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  refusedPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  envoy = await startEnvoy({ bootstrap: bootstrapFor(m.primary.port) });
}, 30000);

beforeEach(() => {
  m.backupA.behave(shortStream);
  m.backupB.behave(shortStream);
});

describe("streamed mode", () => {
  test("after a primary 503 the backup's events reach the client as the backup writes them, rewritten for the backup", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave(backupStream);
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client" }, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-model"]).toBe("backup-model-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=backup-model-a;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("2");
    expect(res.text).toContain("t0");
    expect(res.text).toContain("t4");
    const times = eventTimes(res); // ms after the request was sent
    expect(times).toHaveLength(EVENTS.length);
    // The first event comes as soon as the backup writes it (the primary's 503 and the retry cost little).
    expect(times[0]).toBeLessThan(FIRST_DELAY_MS + MARGIN_MS);
    // Not buffered: each event arrives about a backup interval after the one before.
    for (let i = 1; i < times.length; i++) {
      expect(times[i] - times[i - 1]).toBeGreaterThan(INTERVAL_MS - MARGIN_MS);
      expect(times[i] - times[i - 1]).toBeLessThan(INTERVAL_MS + MARGIN_MS);
    }
    const seen = m.backupA.requests[0];
    expect(seen.path).toBe("/a/chat");
    expect(seen.headers.host).toBe("a.example");
    expect(seen.headers.authorization).toBe("Bearer key-a");
    expect(JSON.parse(seen.body.toString()).model).toBe("backup-model-a");
    expect(m.primary.requests[0].headers.authorization).toBe("Bearer client");
    expect(m.backupB.requests).toHaveLength(0);
  }, 20000);

  test("a primary that resets the connection falls back to the streamed backup", async () => {
    m.primary.behave({ reset: true });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    // No response headers: the filter cannot tell a reset from a connect failure or a per-try timeout.
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=no_response, backup-a;model=backup-model-a;result=200");
    expect(eventTimes(res)).toHaveLength(SHORT.length);
    expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
  }, 20000);

  test("the second backup gets only its own credential and model, after the first fails too", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 429 });
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client", cookie: "s=1" }, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=500");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=500, backup-a;model=backup-model-a;result=429, backup-b;model=backup-model-b;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("3");
    expect(eventTimes(res)).toHaveLength(SHORT.length);
    const seen = m.backupB.requests[0];
    expect(seen.path).toBe("/b/chat");
    expect(seen.headers.host).toBe("b.example");
    expect(seen.headers["x-api-key"]).toBe("key-b");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(JSON.parse(seen.body.toString()).model).toBe("backup-model-b");
  }, 20000);

  test("a 2 MB request body is retried on the backup whole, with its model rewritten", async () => {
    m.primary.behave({ status: 503 });
    const big = { ...STREAM_CHAT, messages: [{ role: "user", content: "x".repeat(2 * 1024 * 1024) }] };
    const res = await request(envoy.port, { body: big, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(eventTimes(res)).toHaveLength(SHORT.length);
    const received = JSON.parse(m.backupA.requests[0].body.toString());
    expect(received.model).toBe("backup-model-a");
    expect(received.messages[0].content).toHaveLength(2 * 1024 * 1024);
  }, 20000);

  test("every cluster answering an error gives the client the last backup's answer, with what was tried", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 503 });
    m.backupB.behave({ status: 502 });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).served_by).toBe("backup-b"); // the mock's own error body
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=backup-model-a;result=503, backup-b;model=backup-model-b;result=502");
    expect(m.backupB.requests).toHaveLength(1);
    expect(JSON.parse(m.backupB.requests[0].body.toString()).model).toBe("backup-model-b");
  }, 20000);

  test("every cluster failing without an answer gives the client a JSON error instead of Envoy's plain text", async () => {
    m.primary.behave({ reset: true });
    m.backupA.behave({ reset: true });
    m.backupB.behave({ reset: true });
    const before = await envoy.stats();
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(503);
    expect(res.headers["content-type"]).toBe("application/json");
    const error = JSON.parse(res.text).error;
    expect(error).toMatchObject({ type: "ai_fallback_exhausted", code: 503, message: "every model service failed", attempts: "3", last: "backup-b" });
    expect(error.envoy).toMatch(/^URX,UC upstream_reset_before_response_started/);
    expect(m.backupB.requests).toHaveLength(1);
    // The router answered, so no filter added headers; the log line and the counters still tell.
    const grew = growth(before, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.exhausted")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.upstream_failure")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.backup.backup-b.failed")).toBe(1);
    const logs = await envoy.logsWhen(/every model service failed; trigger upstream_failure; attempts primary;result=no_response, backup-a;model=backup-model-a;result=no_response, backup-b;model=backup-model-b;result=no_response/);
    expect(logs).toMatch(/\[info\]\[wasm\].* fallback: every model service failed; trigger upstream_failure; attempts .* x-request-id=[0-9a-f-]+$/m);
  }, 20000);

  test("counters: per backup answered and failed, and the dispatch mode's fallback counters; a healthy primary counts nothing", async () => {
    const before = await envoy.stats();
    m.primary.behave({});
    const healthy = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(healthy.status).toBe(200);
    expect(Object.keys(healthy.headers).filter((h) => h.startsWith("x-ai-fallback"))).toEqual([]);
    const afterHealthy = await envoy.stats();
    for (const name of ["started", "backup_calls", "served_by_backup", "exhausted"]) expect(growth(before, afterHealthy)(`wasmcustom.ai_fallback.${name}`)).toBe(0);
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 503 });
    expect((await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 })).status).toBe(200);
    const grew = growth(afterHealthy, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.started")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.status")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.upstream_failure")).toBe(0);
    expect(grew("wasmcustom.ai_fallback.backup_calls")).toBe(2);
    expect(grew("wasmcustom.ai_fallback.backup.backup-a.failed")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.backup.backup-a.answered")).toBe(0);
    expect(grew("wasmcustom.ai_fallback.backup.backup-b.answered")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.served_by_backup")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.exhausted")).toBe(0);
  }, 20000);

  test("[pass-through] a request whose method is not in `methods` (POST by default) is the primary's alone, as in the dispatch mode", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { method: "GET", path: "/v1/models", headers: { authorization: "Bearer client" }, timeoutMs: 15000 });
    expect(res.status).toBe(503);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.primary.requests).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(0); // never asked with its key
  }, 20000);

  test("[pass-through] a primary answer outside triggerStatuses is the client's, without fallback headers", async () => {
    m.primary.behave({ status: 404 });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(404);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(res.headers["x-envoy-attempt-count"]).toBe("1");
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);

  test("50 concurrent streams all fall back without retry overflow", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 3), firstDelayMs: FIRST_DELAY_MS, intervalMs: 500 } });
    const results = await Promise.all(Array.from({ length: 50 }, () => request(envoy.port, { body: STREAM_CHAT, timeoutMs: 20000 })));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(results.every((r) => eventTimes(r).length === 3)).toBe(true);
    expect(m.backupA.requests.every((r) => JSON.parse(r.body.toString()).model === "backup-model-a")).toBe(true);
    expect(counter(await envoy.stats(), "cluster.primary.upstream_rq_retry_overflow")).toBe(0);
  }, 30000);
});

describe("streamed mode, primary refusing connections, hideTopology on", () => {
  let refusing;
  beforeAll(async () => {
    refusing = await startEnvoy({ bootstrap: bootstrapFor(refusedPort, { ...PLUGIN, hideTopology: true }) });
  }, 30000);
  afterAll(() => refusing.stop());

  test("a primary that refuses the connection falls back to the streamed backup; hideTopology reports only trigger and model", async () => {
    const res = await request(refusing.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    expect(res.headers["x-ai-fallback-model"]).toBe("backup-model-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBeUndefined();
    expect(res.headers["x-ai-fallback-service"]).toBeUndefined();
    expect(eventTimes(res)).toHaveLength(SHORT.length);
    expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
  }, 20000);
});
