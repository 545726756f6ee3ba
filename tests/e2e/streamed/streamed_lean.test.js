// The lean streamed mode (docs/streamed-mode.md, `--no-primary-filter`): the primary's cluster has
// no filter at all, so a healthy request never enters the module. The backups' filters still rewrite
// their attempts and report; what only the primary's filter knew (why it was left) is "retry", and
// Envoy's own cluster stats tell the rest.
const { startEnvoy, counter, growth } = require("../support/envoy");
const { request, sseEventTimes: eventTimes } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, sseEvents, TWO_BACKUPS: PLUGIN, streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

const EVENTS = sseEvents(2);
const shortStream = { sse: { events: EVENTS, intervalMs: 100 } };

function leanBootstrap(primaryPort, plugin = PLUGIN) {
  return streamedBootstrapFor(m, primaryPort, plugin, { primaryFilter: false });
}

beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: leanBootstrap(m.primary.port) });
}, 30000);

beforeEach(() => {
  m.backupA.behave(shortStream);
  m.backupB.behave(shortStream);
});

describe("lean streamed mode (no filter on the primary's cluster)", () => {
  test("after a primary 503 the backup streams, rewritten for it; the report says the router retried, not why", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client", cookie: "s=1" }, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(eventTimes(res)).toHaveLength(EVENTS.length);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-model"]).toBe("backup-model-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("retry");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=retry, backup-a;model=backup-model-a;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("2");
    // The backup sees its own path, authority, credential and model, and none of the client's credentials.
    const seen = m.backupA.requests[0];
    expect(seen.path).toBe("/a/chat");
    expect(seen.headers.host).toBe("a.example");
    expect(seen.headers.authorization).toBe("Bearer key-a");
    expect(seen.headers.cookie).toBeUndefined();
    expect(JSON.parse(seen.body.toString()).model).toBe("backup-model-a");
    // The primary got the client's request untouched.
    expect(m.primary.requests[0].headers.authorization).toBe("Bearer client");
    expect(JSON.parse(m.primary.requests[0].body.toString()).model).toBe("gpt-4o");
  }, 20000);

  test("a primary that resets falls back the same way (trigger retry)", async () => {
    m.primary.behave({ reset: true });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("retry");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=retry, backup-a;model=backup-model-a;result=200");
  }, 20000);

  test("the second backup gets only its own credential and model, and the first backup's result is reported", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 429 });
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client", cookie: "s=1" }, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("retry");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=retry, backup-a;model=backup-model-a;result=429, backup-b;model=backup-model-b;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("3");
    const seen = m.backupB.requests[0];
    expect(seen.path).toBe("/b/chat");
    expect(seen.headers.host).toBe("b.example");
    expect(seen.headers["x-api-key"]).toBe("key-b");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(JSON.parse(seen.body.toString()).model).toBe("backup-model-b");
  }, 20000);

  test("[pass-through] a request whose method is not in `methods` is the primary's alone: no backup is asked", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { method: "GET", path: "/v1/models", headers: { authorization: "Bearer client" }, timeoutMs: 15000 });
    expect(res.status).toBe(503);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.primary.requests).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(0);
    expect(m.backupB.requests).toHaveLength(0);
  }, 20000);

  test("counters: the backups count as in the full mode but trigger.*; Envoy's cluster stats tell the primary's side", async () => {
    // Envoy creates a cluster stat when it first counts: absent before = 0 (but it must exist after).
    const grewSince = (before, after) => (name) => counter(after, name) - (new RegExp(`^${name.replace(/\./g, "\\.")}: `, "m").test(before) ? counter(before, name) : 0);
    const before = await envoy.stats();
    m.primary.behave({});
    const healthy = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(healthy.status).toBe(200);
    expect(Object.keys(healthy.headers).filter((h) => h.startsWith("x-ai-fallback"))).toEqual([]);
    const afterHealthy = await envoy.stats();
    for (const name of ["started", "backup_calls", "served_by_backup", "exhausted"]) expect(growth(before, afterHealthy)(`wasmcustom.ai_fallback.${name}`)).toBe(0);
    expect(grewSince(before, afterHealthy)("cluster.primary.upstream_rq_200")).toBe(1);
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 503 });
    expect((await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 })).status).toBe(200);
    m.primary.behave({ reset: true });
    m.backupA.behave(shortStream);
    expect((await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 })).status).toBe(200);
    const after = await envoy.stats();
    const grew = growth(afterHealthy, after);
    expect(grew("wasmcustom.ai_fallback.started")).toBe(2);
    expect(grew("wasmcustom.ai_fallback.backup_calls")).toBe(3);
    expect(grew("wasmcustom.ai_fallback.backup.backup-a.failed")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.backup.backup-a.answered")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.backup.backup-b.answered")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.served_by_backup")).toBe(2);
    // Only the primary's filter knew the trigger: not counted in this mode.
    for (const t of ["status", "upstream_failure", "first_packet_timeout"]) expect(grew(`wasmcustom.ai_fallback.trigger.${t}`)).toBe(0);
    // Envoy's own stats (docs/streamed-mode.md) have the primary's side. A retried answer is counted
    // under the cluster's retry. prefix (trigger.status), a reset as a remote close with a request in
    // flight (trigger.upstream_failure); upstream_rq_retry counts the retries that went to a cluster
    // (on the first backup: started), upstream_rq_retry_success the retries it answered.
    const envoyGrew = grewSince(afterHealthy, after);
    expect(envoyGrew("cluster.primary.retry.upstream_rq_500")).toBe(1);
    expect(envoyGrew("cluster.primary.retry.upstream_rq_5xx")).toBe(1);
    expect(envoyGrew("cluster.primary.upstream_cx_destroy_remote_with_active_rq")).toBe(1);
    expect(envoyGrew("cluster.backup-a.upstream_rq_retry")).toBe(2);
    expect(envoyGrew("cluster.backup-a.retry.upstream_rq_503")).toBe(1);
    expect(envoyGrew("cluster.backup-a.upstream_rq_retry_success")).toBe(1);
    expect(envoyGrew("cluster.backup-b.upstream_rq_retry")).toBe(1);
    expect(envoyGrew("cluster.backup-b.upstream_rq_retry_success")).toBe(1);
    expect(counter(after, "cluster.primary.upstream_rq_retry_overflow")).toBe(0);
  }, 30000);
});

describe("lean streamed mode, one backup, primary refusing connections", () => {
  test("the backup answers (trigger retry); Envoy counts the primary's connect failure; the info line names the x-request-id", async () => {
    const probe = require("node:net").createServer();
    await new Promise((r) => probe.listen(0, "127.0.0.1", r));
    const refusedPort = probe.address().port;
    await new Promise((r) => probe.close(r));
    // One backup: no attempt record to take or leave, so its filter reads x-request-id only for the log line.
    const refusing = await startEnvoy({ bootstrap: leanBootstrap(refusedPort, { ...PLUGIN, backups: [PLUGIN.backups[0]] }) });
    try {
      const res = await request(refusing.port, { body: STREAM_CHAT, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-trigger"]).toBe("retry");
      expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
      const stats = await refusing.stats();
      expect(counter(stats, "cluster.primary.upstream_cx_connect_fail")).toBe(1);
      expect(counter(stats, "cluster.backup-a.upstream_rq_retry_success")).toBe(1);
      const logs = await refusing.logsWhen(/fallback: served by backup-a/);
      expect(logs).toMatch(/fallback: served by backup-a \(model backup-model-a\); trigger retry; attempts primary;result=retry, backup-a;model=backup-model-a;result=200 x-request-id=[0-9a-f-]{36}/);
    } finally {
      await refusing.stop();
    }
  }, 30000);
});
