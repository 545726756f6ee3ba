// Issue 27 in the dispatch mode: a service known to be down is skipped for its cooldown (shared data,
// core/cooldown.ts), then probed by one request; a Retry-After sets the cooldown. The primary is
// skipped by its guard (an upstream filter on its cluster, after every downstream filter), so a
// request some filter behind ai-fallback refuses never reaches a backup.
const { startEnvoy, counter } = require("../support/envoy");
const { startAuthz, extAuthzFilter } = require("../support/mock_authz");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { primaryGuard } = require("../support/http_filters");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

/** Requests one after another every `everyMs` for `forMs`; each result with the time it was sent. */
async function steadyRequests(port, everyMs, forMs, headers = {}) {
  const out = [];
  const start = Date.now();
  while (Date.now() - start < forMs) {
    const sentAt = Date.now();
    const res = await request(port, { body: CHAT, headers });
    out.push({ sentAt, res, took: Date.now() - sentAt });
    const wait = everyMs - (Date.now() - sentAt);
    if (wait > 0) await sleep(wait);
  }
  return out;
}

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
    // The primary takes 100 ms to fail: a request that pays for it shows.
    const PRIMARY_FAILS_AFTER_MS = 100;
    m.primary.behave({ status: 503, delayHeadersMs: PRIMARY_FAILS_AFTER_MS });
    const OUTAGE_MS = 3000;
    const outage = await steadyRequests(envoy.port, 50, OUTAGE_MS);
    for (const { res } of outage) {
      expect(res.status).toBe(200);
      expect(res.json().served_by).toBe("backup-a");
    }
    const probesAllowed = COOLDOWN.failures + Math.ceil(OUTAGE_MS / COOLDOWN.duration) + 1;
    console.log(`cooldown (dispatch): ${outage.length} requests in a ${OUTAGE_MS} ms outage, ${m.primary.requests.length} reached the primary (allowed ${probesAllowed})`);
    expect(m.primary.requests.length).toBeLessThanOrEqual(probesAllowed);
    expect(outage.length).toBeGreaterThan(probesAllowed * 2);
    const skipped = outage.filter(({ res }) => res.headers["x-ai-fallback-attempts"] === "primary;result=cooling, backup-a;model=pass-through;result=200");
    expect(skipped.length).toBeGreaterThan(outage.length / 2);
    expect(skipped[0].res.headers["x-ai-fallback-trigger"]).toBe("cooling");
    const median = (list) => list.map((r) => r.took).sort((a, b) => a - b)[Math.floor(list.length / 2)];
    const paid = outage.filter((r) => !skipped.includes(r));
    console.log(`cooldown: fallback latency, median: ${median(skipped)} ms with the primary cooling (skipped), ${median(paid)} ms when the primary's 100 ms failure came first`);
    expect(median(skipped)).toBeLessThan(PRIMARY_FAILS_AFTER_MS);
    const stats = await envoy.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.cooldown.skipped")).toBe(skipped.length);
    expect(counter(stats, "wasmcustom.ai_fallback.cooldown.probes")).toBeGreaterThanOrEqual(1);
    expect(counter(stats, "wasmcustom.ai_fallback.cooldown.cooling_services")).toBe(1);
    expect(envoy.logs()).toMatch(/cooldown: primary is skipped for 500 ms, then probed by one request \(2 failures\)/);

    // The primary recovers: within one probe interval (plus the refresh and scheduling slack) it answers again.
    m.primary.reset();
    const recoveredAt = Date.now();
    const after = await steadyRequests(envoy.port, 50, COOLDOWN.duration + 700);
    const firstByPrimary = after.find(({ res }) => res.json().served_by === "primary");
    expect(firstByPrimary).toBeDefined();
    console.log(`cooldown (dispatch): the recovered primary answered again ${firstByPrimary.sentAt - recoveredAt} ms after its recovery (duration ${COOLDOWN.duration} ms)`);
    expect(firstByPrimary.sentAt - recoveredAt).toBeLessThanOrEqual(COOLDOWN.duration + 250);
    // ... and from then on every request is the primary's.
    const rest = after.slice(after.indexOf(firstByPrimary));
    for (const { res } of rest) expect(res.json().served_by).toBe("primary");
    expect(await envoy.logsWhen(/cooldown: primary answered and is used again/)).toMatch(/cooldown: primary answered and is used again/);
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.cooldown.cooling_services")).toBe(0);
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
