// Hedging (`hedge`): time to first token when the primary is slow, with and without hedging. A primary
// whose first event comes at 0.8x, 1.2x and 3x firstPacketTimeout, a backup whose first event comes 0.5x
// after its request; sequential streaming requests, timed at the client from sending to the first event.
import { createRequire } from "node:module";
import { f, header, note, summary, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { startEnvoy, WASM_PATH } = require("../tests/e2e/support/envoy.js");
const { startMock } = require("../tests/e2e/support/mock_model.js");
const { request, sseEventTimes } = require("../tests/e2e/support/client.js");
const { streamedBootstrap } = require("../scripts/streamed_config_lib.cjs");

const T = 500;
const FACTORS = [0.8, 1.2, 3];
const LOG_ARGS = { logLevel: "warning", componentLogLevel: "wasm:warning" };
const EVENTS = ['{"choices":[{"delta":{"content":"t0"}}]}', '{"choices":[{"delta":{"content":"t1"}}]}'];
const BODY = { model: "m", stream: true, messages: [{ role: "user", content: "hello" }] };
const started = { envoys: [], mocks: [] };

/** Stops whatever this section started (also after an error). */
export async function stopHedge() {
  await Promise.allSettled(started.envoys.map((e) => e.stop()));
  await Promise.allSettled(started.mocks.map((m) => m.stop()));
  started.envoys.length = 0;
  started.mocks.length = 0;
}

const plugin = (hedge) => ({
  backups: [{ service: "backup", model: "backup-model" }],
  triggerStatuses: ["5xx"],
  firstPacketTimeout: T,
  ...(hedge ? { hedge: { maxInFlight: 100 } } : {}),
});

/** The streamed mode's generated configuration, with or without `hedge`. */
function streamed(primary, backup, hedge) {
  return ({ admin, listener }) => streamedBootstrap(plugin(hedge), {
    primary: "primary", addresses: { primary: `127.0.0.1:${primary.port}`, backup: `127.0.0.1:${backup.port}` },
  }, { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin });
}

/** The dispatch mode (one filter before the router), with or without `hedge`. */
function dispatch(primary, backup, hedge) {
  return { ...LOG_ARGS, pluginConfig: plugin(hedge), clusters: { primary: primary.port, backup: backup.port }, routeTimeoutMs: 30000 };
}

const MODES = [
  { name: "streamed mode", envoy: (p, b, hedge) => ({ ...LOG_ARGS, bootstrap: streamed(p, b, hedge) }) },
  { name: "dispatch mode", envoy: dispatch },
];

export async function benchHedge({ n = 10 } = {}) {
  header("Hedging: time to first token with a slow primary");
  note(`firstPacketTimeout T = ${T} ms; the primary's first event at ${FACTORS.join("x, ")}x T, the backup's 0.5x T after its request;`);
  note(`${n} sequential streaming requests per case (+1 warm-up), time from sending to the first event at the client.`);
  const primary = await startMock("primary");
  const backup = await startMock("backup");
  started.mocks.push(primary, backup);
  backup.behave({ sse: { events: EVENTS, firstDelayMs: 0.5 * T } });
  const rows = [];
  const results = [];
  for (const mode of MODES) {
    for (const hedge of [false, true]) {
      let envoy;
      try {
        envoy = await startEnvoy(mode.envoy(primary, backup, hedge));
      } catch (e) {
        note(`${mode.name}${hedge ? " with hedge" : ""}: not measured (${String(e.message).split("\n")[0]})`);
        continue;
      }
      started.envoys.push(envoy);
      for (const factor of FACTORS) {
        primary.behave({ sse: { events: EVENTS, firstDelayMs: factor * T } });
        const ms = [];
        const servedBy = {};
        for (let i = 0; i <= n; i++) {
          const res = await request(envoy.port, { body: BODY, timeoutMs: 10 * T });
          const first = sseEventTimes(res)[0];
          if (i === 0 || res.status !== 200 || first === undefined) continue;
          ms.push(first);
          const who = res.headers["x-served-by"] ?? "?";
          servedBy[who] = (servedBy[who] ?? 0) + 1;
        }
        const s = summary(ms);
        const earlier = Math.min(factor * T, 1.5 * T);
        rows.push([mode.name, hedge ? "hedge" : "no hedge", `${factor}x (${factor * T} ms)`, `${earlier}`, f(s.p50, 0), f(s.max, 0),
          Object.entries(servedBy).map(([k, v]) => `${k} ${v}`).join(", ")]);
        results.push({ mode: mode.name, hedge, factor, ...s, servedBy });
      }
      await envoy.stop();
      started.envoys.splice(started.envoys.indexOf(envoy), 1);
    }
  }
  const markdown = table(["mode", "", "primary's first event", "earlier of the two, ms", "first event p50 ms", "max ms", "served by"], rows);
  return { markdown, results };
}
