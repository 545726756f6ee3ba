// Issue 27 in the dispatch mode: a service known to be down is skipped for its cooldown (shared data,
// core/cooldown.ts), then probed by one request; a Retry-After sets the cooldown. The primary is
// skipped by its guard (an upstream filter on its cluster, after every downstream filter), so a
// request some filter behind ai-fallback refuses never reaches a backup.
const { startEnvoy } = require("../support/envoy");
const { startAuthz, extAuthzFilter } = require("../support/mock_authz");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { CHAT, steadyRequests, expectOutageWithinProbes, expectBackWithinOneProbe } = require("../support/cooldown_checks");
const { primaryGuard } = require("../support/http_filters");


const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let authz;
beforeAll(async () => {
  authz = await startAuthz();
});
afterAll(async () => {
  if (authz) await authz.stop();
});
beforeEach(() => authz.reset());

const clusters = () => ({
  primary: { port: m.primary.port, upstreamFilters: [primaryGuard()] },
  "backup-a": m.backupA.port,
  "backup-b": m.backupB.port,
  authz: authz.port,
});

describe("an outage compressed in time: the primary gets its probes only, and is back within one probe interval", () => {
  const COOLDOWN = { failures: 2, window: 5000, duration: 500 };
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], cooldown: COOLDOWN },
      clusters: clusters(),
    });
  });

  test("a 3 s outage at a request every 50 ms (the primary failing after 100 ms): at most failures + one probe per duration reach the primary; every client gets the backup's answer", async () => {
    const skipped = await expectOutageWithinProbes({ envoy, mocks: m, cooldown: COOLDOWN, skippedAttempts: "primary;result=cooling, backup-a;model=pass-through;result=200", mode: "dispatch" });
    await expectBackWithinOneProbe({ envoy, mocks: m, cooldown: COOLDOWN, mode: "dispatch" });
  });
});

describe("Retry-After", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      // Failures alone would never start a cooldown here: only the Retry-After does.
      pluginConfig: { backups: [{ service: "backup-a" }], cooldown: { failures: 1000, duration: 60000, maxRetryAfter: 10000 } },
      clusters: clusters(),
    });
  });

  test("a 429 with Retry-After: 2 means no primary request for 2 s, then one probe, and the primary is used again", async () => {
    m.primary.behave([{ status: 429, headers: { "retry-after": "2" } }, {}]);
    const results = await steadyRequests(envoy.port, 50, 2600);
    expect(results[0].res.headers["x-ai-fallback-trigger"]).toBe("status=429");
    const times = m.primary.requests.map((r) => r.receivedAt);
    console.log(`Retry-After: 2 (dispatch): the primary's requests at ${times.map((t) => t - times[0]).join(", ")} ms`);
    expect(times.length).toBeGreaterThanOrEqual(2);
    // No request reached the primary in the 2 s it asked for; the next one is the probe.
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(1950);
    expect(times[1] - times[0]).toBeLessThan(2400);
    const skipped = results.filter(({ res }) => res.headers["x-ai-fallback-trigger"] === "cooling");
    expect(skipped.length).toBeGreaterThan(20);
    expect(results[results.length - 1].res.json().served_by).toBe("primary");
  });

  test("an HTTP-date Retry-After on a 503 counts too, capped by maxRetryAfter", async () => {
    const date = new Date(Date.now() + 3600_000).toUTCString();
    m.primary.behave([{ status: 503, headers: { "retry-after": date } }, {}]);
    await request(envoy.port, { body: CHAT });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=cooling, backup-a;model=pass-through;result=200");
    expect(envoy.logs()).toMatch(/cooldown: primary is skipped for (99\d\d|10000) ms, then probed by one request \(its Retry-After\)/);
  });
});

describe("a cooling primary behind a slow authorisation filter", () => {
  const AUTHZ_DELAY_MS = 300;
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], cooldown: { failures: 1, duration: 60000 } },
      clusters: clusters(),
      extraHttpFiltersAfter: [extAuthzFilter()],
    });
  });

  test("a denied request is never sent to a backup; an allowed one skips the primary", async () => {
    m.primary.behave({ status: 503 });
    const first = await request(envoy.port, { body: CHAT });
    expect(first.json().served_by).toBe("backup-a");
    expect(m.primary.requests).toHaveLength(1);
    m.backupA.reset();
    authz.delayMs = AUTHZ_DELAY_MS;
    const denied = await request(envoy.port, { path: "/v1/deny/chat/completions", body: CHAT });
    expect(denied.status).toBe(403);
    expect(denied.text).toBe("denied by authz");
    expect(m.backupA.requests).toHaveLength(0);
    expect(m.primary.requests).toHaveLength(1);
    const allowed = await request(envoy.port, { body: CHAT });
    expect(allowed.status).toBe(200);
    expect(allowed.json().served_by).toBe("backup-a");
    expect(allowed.headers["x-ai-fallback-attempts"]).toBe("primary;result=cooling, backup-a;model=pass-through;result=200");
    expect(m.primary.requests).toHaveLength(1);
    expect(authz.checks).toHaveLength(3);
  });
});

describe("the last service of the chain is always tried", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }, { service: "backup-b" }], cooldown: { failures: 1, duration: 60000 } },
      clusters: clusters(),
    });
  });

  test("every service cooling: the primary and backup-a are skipped, the last backup is called and answers", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 503 });
    m.backupB.behave({ status: 500 });
    const failed = await request(envoy.port, { body: CHAT });
    expect(failed.status).toBe(500);
    m.backupB.reset();
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=cooling, backup-a;model=pass-through;result=cooling, backup-b;model=pass-through;result=200");
    expect(m.primary.requests).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(1);
    expect(m.backupB.requests).toHaveLength(1);
  });
});
