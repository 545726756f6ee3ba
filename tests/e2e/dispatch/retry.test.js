// Issue 27, part 3, in the dispatch mode: a transient failure is retried on the same service before
// the next one (`retry`). A backup is called again by the filter after its back-off or its short
// Retry-After; the primary is resent by Envoy's router (the filter sets its retry headers), so the
// filters behind ai-fallback run for the primary's request as usual.
const { startEnvoy, counter } = require("../support/envoy");
const { request, abortAfter } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const RETRY = { attempts: 1, backoff: 50, maxRetryAfter: 2000, on: [500, 502, 503, 504, 429, "reset"] };

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port });

describe("retry on: the same service again before the next", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [
          { service: "backup-a", model: "qwen-plus", headers: { authorization: "Bearer sk-backup-a" } },
          { service: "backup-b" },
        ],
        retry: RETRY,
      },
      clusters: clusters(),
    });
  });

  test("retry: a primary's 500 then 200 gives the primary's 200, with no backup call", async () => {
    m.primary.behave([{ status: 500 }, {}]);
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("primary");
    expect(m.primary.requests.length).toBe(2);
    expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);
    expect(res.headers["x-ai-fallback-service"]).toBeUndefined();
    // The router takes its retry headers off before the request leaves.
    for (const r of m.primary.requests) expect(Object.keys(r.headers).filter((h) => h.startsWith("x-envoy-"))).toEqual([]);
  });

  test("retry: a client's own x-envoy-max-retries does not set how often the primary is tried (even where Envoy trusts the client's x-envoy headers)", async () => {
    // Envoy honours a client's x-envoy-* retry headers from an internal address: 127.0.0.1 is one here.
    const trusting = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a", model: "qwen-plus" }], retry: RETRY },
      clusters: clusters(),
      connectionManager: { use_remote_address: true, internal_address_config: { cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }] } },
    });
    m.primary.behave({ status: 503 });
    const res = await request(trusting.port, { body: CHAT, headers: { "x-envoy-max-retries": "5", "x-envoy-retry-on": "5xx" } });
    await trusting.stop();
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(m.primary.requests.length).toBe(2);
    // The router's first try of the primary is reported as retried (its status is the router's to know).
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=retry, primary;result=503, backup-a;model=qwen-plus;result=200");
  });

  test("retry: a backup's 500 then 200 is retried on that backup, with the same body, model override and only its own credential", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave([{ status: 500 }, {}]);
    const before = counter(await envoy.stats(), "wasmcustom.ai_fallback.retries") ?? 0;
    const res = await request(envoy.port, { body: CHAT, headers: { authorization: "Bearer sk-client" } });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=retry, primary;result=503, backup-a;model=qwen-plus;result=500, backup-a;model=qwen-plus;result=200");
    expect(m.backupB.requests.length).toBe(0);
    expect(m.backupA.requests.length).toBe(2);
    const [first, second] = m.backupA.requests;
    expect(second.body).toEqual(first.body);
    expect(JSON.parse(second.body).model).toBe("qwen-plus");
    for (const r of m.backupA.requests) {
      expect(r.headers.authorization).toBe("Bearer sk-backup-a");
      expect(r.rawHeaders.join("\n")).not.toMatch(/sk-client/);
    }
    const after = counter(await envoy.stats(), "wasmcustom.ai_fallback.retries");
    expect(after - before).toBe(2); // the router's retry of the primary, the filter's of backup-a
  });

  test("retry: a backup's 429 with Retry-After: 1 is waited for (~1 s), then the same backup answers", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave([{ status: 429, headers: { "retry-after": "1" } }, {}]);
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(m.backupA.requests.length).toBe(2);
    const waited = m.backupA.requests[1].receivedAt - m.backupA.requests[0].receivedAt;
    console.log(`retry (dispatch): a backup's Retry-After: 1 was waited for ${waited} ms`);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(1600);
    expect(m.backupB.requests.length).toBe(0);
  });

  test("retry: a backup's 429 with Retry-After: 5 (over maxRetryAfter) moves on to the next backup at once", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 429, headers: { "retry-after": "5" } });
    const started = Date.now();
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(Date.now() - started).toBeLessThan(900);
    expect(m.backupA.requests.length).toBe(1);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=retry, primary;result=503, backup-a;model=qwen-plus;result=429, backup-b;model=pass-through;result=200");
  });

  test("retry: a backup that fails again after its retry gives way to the next backup", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 502 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.json().served_by).toBe("backup-b");
    expect(m.backupA.requests.length).toBe(2);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=retry, primary;result=503, backup-a;model=qwen-plus;result=502, backup-a;model=qwen-plus;result=502, backup-b;model=pass-through;result=200");
  });

  test("retry: a client that leaves while a backup's retry waits (Retry-After: 1) gets no retry sent, and its copy and stream are given back", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 429, headers: { "retry-after": "1" } });
    const left = await abortAfter(envoy.port, { body: CHAT }, 400);
    expect(left.aborted).toBe(true);
    expect(m.backupA.requests.length).toBe(1); // the first call was made; its retry waits
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(m.backupA.requests.length).toBe(1);
    expect(m.backupB.requests.length).toBe(0);
    const stats = await envoy.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
  });

  test("retry: a status not in retry.on (400) is not retried: the next backup at once", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 400 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.json().served_by).toBe("backup-b");
    expect(m.backupA.requests.length).toBe(1);
  });
});

describe("retry off (the default)", () => {
  test("retry: without retry a primary's 500 falls back at once, and a backup's 500 moves on", async () => {
    const envoy = await startEnvoy({ pluginConfig: { backups: [{ service: "backup-a" }, { service: "backup-b" }] }, clusters: clusters() });
    m.primary.behave([{ status: 500 }, {}]);
    m.backupA.behave([{ status: 500 }, {}]);
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(m.primary.requests.length).toBe(1);
    expect(m.backupA.requests.length).toBe(1);
    await envoy.stop();
  });
});

describe("the primary's Retry-After, with the route's rate_limited_retry_back_off", () => {
  test("retry: a primary's 429 with Retry-After: 1 is waited for by the router (~1 s), then the primary answers", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], retry: RETRY },
      clusters: clusters(),
      routes: [{
        name: "primary-route", prefix: "/", cluster: "primary",
        routeExtra: {
          retry_policy: {
            rate_limited_retry_back_off: { reset_headers: [{ name: "retry-after", format: "SECONDS" }], max_interval: "2s" },
          },
        },
      }],
    });
    m.primary.behave([{ status: 429, headers: { "retry-after": "1" } }, {}]);
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("primary");
    expect(m.primary.requests.length).toBe(2);
    const waited = m.primary.requests[1].receivedAt - m.primary.requests[0].receivedAt;
    console.log(`retry (dispatch): the primary's Retry-After: 1 was waited for ${waited} ms by the router`);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(1700);
    expect(m.backupA.requests.length).toBe(0);
    await envoy.stop();
  });
});
