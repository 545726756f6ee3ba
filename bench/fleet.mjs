// The Envoys a benchmark talks to: one fast upstream answering with direct_response, and front
// Envoys (plain, with the do-nothing module, with the filter) in front of it. All on 127.0.0.1,
// all stopped by stopFleet(), also after an error.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { startEnvoy, stopAllEnvoys, FILTER_WASM_PATH, NOOP_WASM_PATH } = require("../tests/e2e/support/envoy.js");
const { streamedBootstrap } = require("../scripts/streamed_config_lib.cjs");
const { primaryGuard } = require("../tests/e2e/support/http_filters.js");
export { FILTER_WASM_PATH, NOOP_WASM_PATH };

/** The dispatch fallback's floor (bench/floor/main.ts): a module doing only what the fallback needs. */
export const FLOOR_WASM_PATH = path.join(path.dirname(NOOP_WASM_PATH), "floor.wasm");

/** Builds build/floor.wasm (bench only: `npm run build` leaves it out). */
export function buildFloor() {
  const root = path.dirname(path.dirname(NOOP_WASM_PATH));
  const r = spawnSync(path.join(root, "node_modules", ".bin", "asc"), ["bench/floor/main.ts", "--target", "floor"],
    { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building ${FLOOR_WASM_PATH} failed:\n${r.stdout}${r.stderr}`);
  return FLOOR_WASM_PATH;
}

export const CHAT_PATH = "/v1/chat/completions";
/** The upstream answers 500 here: the primary of the fallback scenario. */
export const FAIL_PATH = "/v1/fail/chat/completions";
/** The upstream answers a short SSE stream here. */
export const STREAM_PATH = "/v1/stream/chat/completions";

export const COMPLETION = JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion", created: 1764300000, model: "gpt-4o",
  choices: [{ index: 0, message: { role: "assistant", content: "Proxies forward requests; fallbacks keep answers coming." }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
});
const ERROR = JSON.stringify({ error: { message: "the primary is down (benchmark)", type: "server_error" } });
const SSE = ['{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}', "[DONE]"]
  .map((d) => `data: ${d}\n\n`).join("");

// The filter configurations measured: a backup with a model override (the common case), the same
// with firstPacketTimeout on (adds the "stream": true check of every request body), and the fallback
// scenario's (the backup path is the one the upstream answers 200 on).
export const HAPPY_CONFIG = { backups: [{ service: "backup", model: "qwen-plus" }] };
export const FPT_CONFIG = { backups: [{ service: "backup", model: "qwen-plus" }], firstPacketTimeout: 30000 };
export const FALLBACK_CONFIG = { backups: [{ service: "backup", model: "qwen-plus", path: CHAT_PATH }] };
// The streamed mode (docs/streamed-mode.md): the same fallback configuration, turned into a route
// and clusters by scripts/streamed_config_lib.cjs; the client calls FAIL_PATH for a fallback.
export const STREAMED_CONFIG = FALLBACK_CONFIG;

const LOG = { logLevel: "warning", componentLogLevel: "wasm:warning" }; // the same for every Envoy
const live = [];

async function start(opts) {
  const e = await startEnvoy({ ...LOG, ...opts });
  live.push(e);
  return e;
}

const BUFFER_FILTER = {
  name: "envoy.filters.http.buffer",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", max_request_bytes: 4 * 1024 * 1024 },
};

/**
 * The upstream: Envoy with direct_response routes, behind a buffer filter so that it answers only
 * after the whole request body has arrived (an answer before the end of the request would close
 * keep-alive connections and cut bodies short).
 */
export function startUpstream({ concurrency = 1, alwaysOk = false } = {}) {
  const json = { "content-type": "application/json" };
  // alwaysOk: a second upstream that answers 200 on every path, FAIL_PATH included: the backup of a
  // fallback without any module, where nothing rewrites the path.
  if (alwaysOk) {
    return start({
      withFilter: false,
      concurrency,
      extraHttpFilters: [BUFFER_FILTER],
      routes: [{ name: "ok", prefix: "/", directResponse: { status: 200, body: COMPLETION }, responseHeaders: json }],
    });
  }
  return start({
    withFilter: false,
    concurrency,
    extraHttpFilters: [BUFFER_FILTER],
    routes: [
      { name: "fail", path: FAIL_PATH, directResponse: { status: 500, body: ERROR }, responseHeaders: json },
      { name: "stream", path: STREAM_PATH, directResponse: { status: 200, body: SSE }, responseHeaders: { "content-type": "text/event-stream" } },
      { name: "ok", prefix: "/", directResponse: { status: 200, body: COMPLETION }, responseHeaders: json },
    ],
  });
}

/**
 * A front Envoy (one worker) routing everything to the upstream as cluster "primary"; "backup" is
 * the same upstream. kind: "plain" (no wasm filter), "noop" (build/noop.wasm), "floor"
 * (build/floor.wasm, see buildFloor) or "filter" (`wasmPath`, build/ai_fallback.wasm by default);
 * `guard` adds the primary guard (the same module) on the primary's cluster.
 */
export function startFront(upstreamPort, kind, pluginConfig = {}, wasmPath = FILTER_WASM_PATH, { guard = false } = {}) {
  const clusters = { primary: upstreamPort, backup: upstreamPort };
  if (kind === "plain") return start({ withFilter: false, clusters });
  const paths = { noop: NOOP_WASM_PATH, floor: FLOOR_WASM_PATH };
  // The primary guard (docs/primary-guard.md) on the primary's cluster, in the filter's VM.
  if (guard) clusters.primary = { port: upstreamPort, upstreamFilters: [primaryGuard({}, { wasmPath })] };
  return start({ wasmPath: paths[kind] ?? wasmPath, pluginConfig, clusters });
}

/**
 * A front Envoy (one worker) with the streamed mode's generated configuration: clusters "primary"
 * and "backup" both point at the upstream (the backup at `backupPort` when given); every cluster
 * runs the module's upstream role. With `withModule: false` the upstream filters are left out (only
 * Envoy's priority groups and retry policy): the module's share of the cost. `primaryFilter: false`
 * is the generator's lean choice (no filter on the primary's cluster).
 */
export function startStreamedFront(upstreamPort, plugin = STREAMED_CONFIG, { withModule = true, backupPort = upstreamPort, primaryFilter = true, wasmPath = FILTER_WASM_PATH } = {}) {
  return start({
    bootstrap: ({ admin, listener }) => {
      const boot = streamedBootstrap(plugin, { primary: "primary", addresses: { primary: `127.0.0.1:${upstreamPort}`, backup: `127.0.0.1:${backupPort}` } },
        { wasmPath, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin, primaryFilter });
      if (!withModule) {
        for (const c of boot.static_resources.clusters) {
          const opts = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
          if (opts.http_filters) opts.http_filters = opts.http_filters.filter((f) => f.name !== "envoy.filters.http.wasm");
        }
      }
      return boot;
    },
  });
}

export async function stopFleet() {
  await Promise.allSettled(live.map((e) => e.stop()));
  live.length = 0;
  await stopAllEnvoys().catch(() => {});
}

const CLOCK_TICKS_PER_S = 100; // Linux USER_HZ

/** CPU time (user + system, all threads) a process has used so far, in ms. */
export function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
