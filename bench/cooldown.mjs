// Cooldown (`cooldown`, docs/cooldown.md): the fallback's latency while the primary cools (it is
// skipped) beside the latency when the primary's failure comes first, both modes. The primary
// answers 503 after PRIMARY_FAILS_AFTER_MS; the backup answers at once. Sequential requests, timed at
// the client; "the backup alone" is the backup's own latency through plain routing (the floor a
// skipped primary should come near).
import { createRequire } from "node:module";
import { f, header, note, summary, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { startEnvoy, WASM_PATH } = require("../tests/e2e/support/envoy.js");
const { startMock } = require("../tests/e2e/support/mock_model.js");
const { request } = require("../tests/e2e/support/client.js");
const { primaryGuard } = require("../tests/e2e/support/http_filters.js");
const { streamedBootstrap } = require("../scripts/streamed_config_lib.cjs");

const PRIMARY_FAILS_AFTER_MS = 100;
const LOG_ARGS = { logLevel: "warning", componentLogLevel: "wasm:warning" };
const BODY = { model: "m", messages: [{ role: "user", content: "hello" }] };
// The primary, once failed, cools for the whole run; without cooldown each request pays its failure.
const COOLDOWN = { failures: 1, duration: 600000 };
const started = { envoys: [], mocks: [] };

/** Stops whatever this section started (also after an error). */
export async function stopCooldown() {
  await Promise.allSettled(started.envoys.map((e) => e.stop()));
  await Promise.allSettled(started.mocks.map((m) => m.stop()));
  started.envoys.length = 0;
  started.mocks.length = 0;
}

const plugin = (cooldown) => ({ backups: [{ service: "backup" }], triggerStatuses: ["5xx"], ...(cooldown ? { cooldown: COOLDOWN } : {}) });

const MODES = [
  {
    name: "streamed mode",
    envoy: (primary, backup, cooldown) => ({ ...LOG_ARGS, bootstrap: ({ admin, listener }) => streamedBootstrap(plugin(cooldown), {
      primary: "primary", addresses: { primary: `127.0.0.1:${primary.port}`, backup: `127.0.0.1:${backup.port}` },
    }, { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin }) }),
  },
  {
    name: "dispatch mode",
    // The primary's cooldown needs the primary guard on its cluster (docs/cooldown.md).
    envoy: (primary, backup, cooldown) => ({ ...LOG_ARGS, pluginConfig: plugin(cooldown), routeTimeoutMs: 30000,
      clusters: { primary: { port: primary.port, upstreamFilters: [primaryGuard()] }, backup: backup.port } }),
  },
];

/** `n` sequential requests (+1 warm-up that is not timed); their latencies in ms and who served them. */
async function timed(port, n) {
  const ms = [];
  const servedBy = {};
  for (let i = 0; i <= n; i++) {
    const t0 = performance.now();
    const res = await request(port, { body: BODY, timeoutMs: 10000 });
    const took = performance.now() - t0;
    if (i === 0 || res.status !== 200) continue;
    ms.push(took);
    const who = res.json()?.served_by ?? "?";
    servedBy[who] = (servedBy[who] ?? 0) + 1;
  }
  return { ...summary(ms), servedBy };
}

export async function benchCooldown({ n = 30 } = {}) {
  header("Cooldown: fallback latency with a cooling primary");
  note(`The primary answers 503 after ${PRIMARY_FAILS_AFTER_MS} ms, the backup at once; ${n} sequential requests per case (+1 warm-up),`);
  note(`timed at the client. "primary's failure first": no cooldown, each request pays it; "primary cooling": cooldown ${JSON.stringify(COOLDOWN)},`);
  note("the primary failed once and is skipped. \"the backup alone\": the backup as the route's only cluster (plain Envoy, no module).");
  const primary = await startMock("primary");
  const backup = await startMock("backup");
  started.mocks.push(primary, backup);
  primary.behave({ status: 503, delayHeadersMs: PRIMARY_FAILS_AFTER_MS });
  const rows = [];
  const results = [];
  const measure = async (mode, label, options, n) => {
    let envoy;
    try {
      envoy = await startEnvoy(options);
    } catch (e) {
      note(`${mode} ${label}: not measured (${String(e.message).split("\n")[0]})`);
      return;
    }
    started.envoys.push(envoy);
    const before = primary.requests.length;
    const s = await timed(envoy.port, n);
    // The warm-up included: with a cooling primary, only it reaches the primary.
    const reachedPrimary = primary.requests.length - before;
    rows.push([mode, label, f(s.p50, 1), f(s.p95, 1), f(s.max, 1), Object.entries(s.servedBy).map(([k, v]) => `${k} ${v}`).join(", "), String(reachedPrimary)]);
    results.push({ mode, case: label, ...s, reachedPrimary });
    await envoy.stop();
    started.envoys.splice(started.envoys.indexOf(envoy), 1);
  };
  await measure("plain Envoy", "the backup alone", { ...LOG_ARGS, withFilter: false, routeTimeoutMs: 30000, clusters: { primary: backup.port } }, n);
  for (const mode of MODES) {
    await measure(mode.name, "primary's failure first", mode.envoy(primary, backup, false), n);
    await measure(mode.name, "primary cooling", mode.envoy(primary, backup, true), n);
  }
  const markdown = table(["mode", "case", "p50 ms", "p95 ms", "max ms", "served by", "requests at the primary (warm-up included)"], rows,
    ["l", "l", "r", "r", "r", "l", "r"]);
  return { markdown, results };
}
