// Same-service retry in the streamed mode (`retry`, docs/configuration.md#same-service-retry-retry,
// docs/streamed-mode.md): a failure in retry.on is tried again on the same service before the next
// one; the route picks each try's cluster by what the failed try's filter named.
const { startEnvoy, growth } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, TWO_BACKUPS, streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const RETRY = { attempts: 1, backoff: 10, maxRetryAfter: 2000, on: [500, 502, 503, 504, 429, "reset"] };
const PLUGIN = { ...TWO_BACKUPS, triggerStatuses: ["5xx", 429, 400], retry: RETRY };
const FIRST_PACKET_TIMEOUT_MS = 600;
let envoy;
let plain;
let timed;

beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, PLUGIN) });
  plain = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, { ...TWO_BACKUPS, triggerStatuses: ["5xx", 429, 400] }) });
  timed = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, { ...PLUGIN, firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS }) });
}, 60000);

const CLIENT_HEADERS = { authorization: "Bearer client", cookie: "s=1" };

describe("streamed mode: same-service retry", () => {
  test("a primary 500 then 200 is retried on the primary: the client gets its 200 and no backup is called", async () => {
    m.primary.behave([{ status: 500 }, {}]);
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: CLIENT_HEADERS, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.headers["x-ai-fallback-attempts"]).toBeUndefined();
    expect(res.headers["x-envoy-attempt-count"]).toBe("2");
    expect(m.primary.requests).toHaveLength(2);
    expect(m.primary.requests[1].headers.authorization).toBe("Bearer client");
    expect(JSON.parse(m.primary.requests[1].body.toString()).model).toBe("gpt-4o");
    expect(m.backupA.requests).toHaveLength(0);
    expect(m.backupB.requests).toHaveLength(0);
  }, 20000);

  test("without retry (the default) the same 500 goes to the backup at once", async () => {
    m.primary.behave([{ status: 500 }, {}]);
    const res = await request(plain.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(m.primary.requests).toHaveLength(1);
  }, 20000);

  test("a 400 (a trigger, not in retry.on) goes to the backup at once: the primary sees one request", async () => {
    m.primary.behave({ status: 400 });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, backup-a;model=backup-model-a;result=200");
    expect(m.primary.requests).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(1);
  }, 20000);

  test("a primary 429 with Retry-After: 1 is retried on the primary after about 1 s", async () => {
    m.primary.behave([{ status: 429, headers: { "retry-after": "1" } }, {}]);
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(m.primary.requests).toHaveLength(2);
    const waited = m.primary.requests[1].receivedAt - m.primary.requests[0].receivedAt;
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(2000);
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);

  test("a backup's 500 then 200 is retried on that backup, with its model and only its credential", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave([{ status: 500 }, {}]);
    const before = await envoy.stats();
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: CLIENT_HEADERS, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, primary;result=503, backup-a;model=backup-model-a;result=500, backup-a;model=backup-model-a;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("4");
    expect(m.primary.requests).toHaveLength(2);
    expect(m.backupA.requests).toHaveLength(2);
    for (const seen of m.backupA.requests) {
      expect(seen.path).toBe("/a/chat");
      expect(seen.headers.authorization).toBe("Bearer key-a");
      expect(seen.headers.cookie).toBeUndefined();
      expect(JSON.parse(seen.body.toString()).model).toBe("backup-model-a");
    }
    expect(m.backupB.requests).toHaveLength(0);
    // One fallback, two calls of the backup (its retry is not a new start), one of them failed.
    const grew = growth(before, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.started")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.backup_calls")).toBe(2);
    expect(grew("wasmcustom.ai_fallback.backup.backup-a.failed")).toBe(1);
  }, 20000);

  test("a late first packet (firstPacketTimeout) is not retried on the same service", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    const res = await request(timed.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=first_packet_timeout, backup-a;model=backup-model-a;result=200");
    expect(m.primary.requests).toHaveLength(1);
  }, 20000);

  test("a primary silent past firstPacketTimeout counts as no answer: with reset in retry.on it is tried once more", async () => {
    m.primary.behave({ hang: true });
    const res = await request(timed.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=no_response, primary;result=no_response, backup-a;model=backup-model-a;result=200");
    expect(m.primary.requests).toHaveLength(2);
  }, 20000);

  test("when every try fails, the last backup's own answer reaches the client, tried twice", async () => {
    // The primary's 400 is not retried: the route has a retry left after the last backup's last try, and must not use it.
    m.primary.behave({ status: 400 });
    m.backupA.behave({ status: 502 });
    m.backupB.behave({ status: 500 });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(500);
    expect(res.headers["x-served-by"]).toBe("backup-b");
    expect(res.headers["x-ai-fallback-retry"]).toBeUndefined();
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, backup-a;model=backup-model-a;result=502, " +
      "backup-a;model=backup-model-a;result=502, backup-b;model=backup-model-b;result=500, backup-b;model=backup-model-b;result=500");
    expect([m.primary.requests.length, m.backupA.requests.length, m.backupB.requests.length]).toEqual([1, 2, 2]);
  }, 20000);

  test("a Retry-After over maxRetryAfter moves on at once, and the backup's answer does not wait for it", async () => {
    m.primary.behave({ status: 429, headers: { "retry-after": "5" } });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=429, backup-a;model=backup-model-a;result=200");
    expect(Date.now() - started).toBeLessThan(900);
    expect(m.primary.requests).toHaveLength(1);
  }, 20000);

  test("a short Retry-After on a service's last try does not delay the next service", async () => {
    m.primary.behave({ status: 429, headers: { "retry-after": "1" } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=429, primary;result=429, backup-a;model=backup-model-a;result=200");
    // The retry waited the Retry-After; the move to the backup did not.
    expect(m.primary.requests[1].receivedAt - m.primary.requests[0].receivedAt).toBeGreaterThanOrEqual(950);
    expect(m.backupA.requests[0].receivedAt - m.primary.requests[1].receivedAt).toBeLessThan(700);
  }, 20000);

  test("a reset is retried on the same service; when the last backup's last try resets, the client gets the JSON error", async () => {
    // The primary's 400 is not retried: one try fewer than the route's retries allow, none of them left to a service.
    m.primary.behave({ status: 400 });
    m.backupA.behave({ reset: true });
    m.backupB.behave({ reset: true });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(503);
    const error = JSON.parse(res.body.toString()).error;
    expect(error.type).toBe("ai_fallback_exhausted");
    // The route's sink (no endpoint) ended the chain; `last` names the last service tried.
    expect(error.last).toBe("backup-b");
    expect(error.envoy).toBe("UH no_healthy_upstream");
    expect([m.primary.requests.length, m.backupA.requests.length, m.backupB.requests.length]).toEqual([1, 2, 2]);
  }, 20000);
});
