// Issue 27 in the streamed mode: a service known to be down is skipped for its cooldown (the shared
// table, core/cooldown.ts). The downstream role, the last filter before the router, starts the
// request's chain past the cooling services (filter state + a new route choice); the router sends
// the request only after every filter ran, so a request a filter refuses reaches no backup.
const { startEnvoy } = require("../support/envoy");
const { startAuthz, extAuthzFilter } = require("../support/mock_authz");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { CHAT, steadyRequests, expectOutageWithinProbes, expectBackWithinOneProbe } = require("../support/cooldown_checks");
const { TWO_BACKUPS, streamedBootstrapFor } = require("../support/streamed_fixtures");


const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let authz;
beforeAll(async () => {
  authz = await startAuthz();
});
afterAll(async () => {
  if (authz) await authz.stop();
});
beforeEach(() => authz.reset());

const plugin = (cooldown) => ({ ...TWO_BACKUPS, cooldown });
const SKIPPED_PRIMARY = "primary;result=cooling, backup-a;model=backup-model-a;result=200";

describe("an outage compressed in time (streamed): the primary gets its probes only, and is back within one probe interval", () => {
  const COOLDOWN = { failures: 2, window: 5000, duration: 500 };
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin(COOLDOWN)) });
  });

  test("a 3 s outage at a request every 50 ms (the primary failing after 100 ms): at most failures + one probe per duration reach the primary, a skipped request goes to the backup at its first attempt", async () => {
    const skipped = await expectOutageWithinProbes({ envoy, mocks: m, cooldown: COOLDOWN, skippedAttempts: SKIPPED_PRIMARY, mode: "streamed" });
    // The backup was the request's first attempt: no retry was spent on the primary.
    expect(skipped[0].res.headers["x-envoy-attempt-count"]).toBe("1");
    await expectBackWithinOneProbe({ envoy, mocks: m, cooldown: COOLDOWN, mode: "streamed" });
  });
});

describe("Retry-After (streamed)", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin({ failures: 1000, duration: 60000, maxRetryAfter: 10000 })) });
  });

  test("a 429 with Retry-After: 2 means no primary request for 2 s, then one probe, and the primary is used again", async () => {
    m.primary.behave([{ status: 429, headers: { "retry-after": "2" } }, {}]);
    const results = await steadyRequests(envoy.port, 50, 2600);
    expect(results[0].res.headers["x-ai-fallback-trigger"]).toBe("status=429");
    const times = m.primary.requests.map((r) => r.receivedAt);
    console.log(`Retry-After: 2 (streamed): the primary's requests at ${times.map((t) => t - times[0]).join(", ")} ms`);
    expect(times.length).toBeGreaterThanOrEqual(2);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(1950);
    expect(times[1] - times[0]).toBeLessThan(2400);
    expect(results.filter(({ res }) => res.headers["x-ai-fallback-trigger"] === "cooling").length).toBeGreaterThan(20);
    expect(results[results.length - 1].res.json().served_by).toBe("primary");
  });
});

describe("a cooling primary behind a slow authorisation filter (streamed)", () => {
  const AUTHZ_DELAY_MS = 300;
  let envoy;
  beforeAll(async () => {
    const generated = streamedBootstrapFor(m, m.primary.port, plugin({ failures: 1, duration: 60000 }));
    envoy = await startEnvoy({
      bootstrap: (ports) => {
        const b = generated(ports);
        const hcm = b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
        // ext_authz behind the streamed role, just before the router.
        hcm.http_filters.splice(hcm.http_filters.length - 1, 0, extAuthzFilter());
        b.static_resources.clusters.push({
          name: "authz", type: "STATIC", connect_timeout: "1s",
          load_assignment: { cluster_name: "authz", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: authz.port } } } }] }] },
        });
        return b;
      },
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
    expect(m.backupA.requests).toHaveLength(0);
    expect(m.backupB.requests).toHaveLength(0);
    expect(m.primary.requests).toHaveLength(1);
    const allowed = await request(envoy.port, { body: CHAT });
    expect(allowed.status).toBe(200);
    expect(allowed.json().served_by).toBe("backup-a");
    expect(allowed.headers["x-ai-fallback-attempts"]).toBe(SKIPPED_PRIMARY);
    expect(m.primary.requests).toHaveLength(1);
  });
});

describe("the last service of the chain is always tried (streamed)", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin({ failures: 1, duration: 60000 })) });
  });

  test("every service cooling: the chain starts at the last backup, which is called and answers", async () => {
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
      "primary;result=cooling, backup-a;model=backup-model-a;result=cooling, backup-b;model=backup-model-b;result=200");
    expect(res.headers["x-envoy-attempt-count"]).toBe("1");
    expect(m.primary.requests).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(1);
    expect(m.backupB.requests).toHaveLength(1);
  });
});
