// The cooldown with two workers (Envoy --concurrency 2), each with its own VM: the shared-data table
// (host/cooldown_store.ts, compare-and-swap) is the one truth. A burst that reaches both workers
// while the primary cools sends it nothing; when the cooldown is up, one probe in all (not one per
// worker) goes out, and the others keep skipping until its answer.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { primaryGuard } = require("../support/http_filters");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const DURATION = 1500;
const PROBE_ANSWER_MS = 400;
const BURST = 60;

const m = useMocks({ primary: "primary", backupA: "backup-a" });
let envoy;
beforeAll(async () => {
  envoy = await startEnvoy({
    concurrency: 2,
    pluginConfig: { backups: [{ service: "backup-a" }], cooldown: { failures: 1, window: 10000, duration: DURATION } },
    clusters: { primary: { port: m.primary.port, upstreamFilters: [primaryGuard()] }, "backup-a": m.backupA.port },
  });
});

/** `n` requests at once, each on its own connection (so Envoy spreads them over its workers). */
const burst = (n) => Promise.all(Array.from({ length: n }, () => request(envoy.port, { body: CHAT, timeoutMs: 10000 })));

/** Connections each worker accepted, from the listener's per-worker stats. */
async function connectionsPerWorker() {
  const stats = await envoy.stats();
  return [0, 1].map((w) => [...stats.matchAll(new RegExp(`^listener\\.[^\\n]*\\.worker_${w}\\.downstream_cx_total: (\\d+)$`, "gm"))]
    .reduce((sum, match) => sum + Number(match[1]), 0));
}

test("two workers share one cooldown: a burst while cooling sends the primary nothing; when it is up, one probe in all", async () => {
  m.primary.behave({ status: 503, delayHeadersMs: PROBE_ANSWER_MS });
  const first = await request(envoy.port, { body: CHAT });
  expect(first.json().served_by).toBe("backup-a");
  const cooledAt = Date.now();
  expect(m.primary.requests).toHaveLength(1);
  await sleep(300); // both workers' caches refresh (100 ms tick)

  const before = await connectionsPerWorker();
  const cooling = await burst(BURST);
  const during = (await connectionsPerWorker()).map((n, w) => n - before[w]);
  console.log(`cooldown, two workers: the burst's connections per worker ${during.join(" / ")}`);
  // The burst reached both workers, so both VMs decided from the shared table.
  expect(during[0]).toBeGreaterThan(0);
  expect(during[1]).toBeGreaterThan(0);
  for (const res of cooling) {
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=cooling, backup-a;model=pass-through;result=200");
  }
  expect(m.primary.requests).toHaveLength(1);

  // The cooldown is up: of a burst on both workers, exactly one request probes (the primary answers it
  // slowly, so the others arrive while it is out); the rest skip.
  await sleep(Math.max(0, cooledAt + DURATION + 300 - Date.now()));
  const probing = await burst(BURST);
  for (const res of probing) expect(res.json().served_by).toBe("backup-a");
  expect(m.primary.requests).toHaveLength(2);
  const probed = probing.filter((res) => res.headers["x-ai-fallback-attempts"] === "primary;result=503, backup-a;model=pass-through;result=200");
  expect(probed).toHaveLength(1);
  expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.cooldown.probes")).toBe(1);
}, 30000);
