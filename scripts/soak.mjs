// npm run soak: at least 100,000 fallbacks through one Envoy worker, then checks that the filter held
// steady: every request answered 200 by the backup, no VM failure, the filter's gauges back to 0, and
// Envoy's heap and resident memory flat between the end of the warm-up and the end of the run.
//
//   SOAK_FALLBACKS=100000 SOAK_CONCURRENCY=100 npm run soak
//
// Then, in each mode (dispatch, streamed, lean streamed), SOAK_ABORTS (100,000) streaming requests whose
// primary fails (503) and whose client leaves while the first backup holds them (there a streamed
// attempt would leave its result for the second backup): Envoy's RSS and `ai_fallback.kept_bytes` flat, and the
// module's tables empty at the end (kept_bytes 0 covers the streamed attempt table, whose every entry
// is counted; the dispatch mode's streams and pending backup calls 0).
//
// Bodies vary (200 B to 512 KiB, some chunked without content-length, some model overrides) so that
// the budget, the allocator and the garbage collector see sizes come and go.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { startEnvoy, counter, WASM_PATH } = require("../tests/e2e/support/envoy.js");
const { startMock, stopAllMocks } = require("../tests/e2e/support/mock_model.js");
const { sendCancelled } = require("../tests/e2e/support/cancelled_requests.js");
const { streamedBootstrap } = require("./streamed_config_lib.cjs");

const TOTAL = Number(process.env.SOAK_FALLBACKS ?? 100000);
const ABORTS = Number(process.env.SOAK_ABORTS ?? 100000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 100);
const WARMUP = Math.min(10000, Math.ceil(TOTAL / 10));
const SAMPLES = 5;
// Flat: Envoy's heap and RSS may move by allocator noise, not by a leak. 100,000 requests leaking even
// 200 bytes each would add 20 MB.
const FLAT_BYTES = 16 * 1024 * 1024;
/** Client aborts: the most the process may grow through the second half of the run. */
const SECOND_HALF_RSS_BYTES = 4 * 1024 * 1024;

const MiB = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]) * 1024;
}

function adminJson(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve(JSON.parse(text)));
    }).on("error", reject);
  });
}

async function sample(envoy, label, done, unit = "fallbacks") {
  const mem = await adminJson(envoy.adminPort, "/memory");
  const s = { label, done, heapAllocated: Number(mem.allocated), heapSize: Number(mem.heap_size), rss: rss(envoy.pid) };
  console.log(`${label.padEnd(12)} ${String(done).padStart(7)} ${unit}  Envoy heap allocated ${MiB(s.heapAllocated)}, heap size ${MiB(s.heapSize)}, RSS ${MiB(s.rss)}`);
  return s;
}

function body(i) {
  const r = (i * 2654435761) % 1000;
  const size = r < 850 ? 200 : r < 950 ? 4096 : r < 995 ? 65536 : 524288;
  const head = `{"model":"m","stream":false,"messages":[{"role":"user","content":"`;
  return Buffer.from(head + "x".repeat(Math.max(0, size - head.length - 4)) + '"}]}');
}

async function run(envoy, from, to, failures) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = from;
  const one = (i) => new Promise((resolve) => {
    const payload = body(i);
    const chunked = i % 7 === 0;
    const headers = { "content-type": "application/json", "x-request-id": `soak-${i}`, ...(i % 3 === 0 ? { "x-override": "1" } : {}) };
    if (!chunked) headers["content-length"] = String(payload.length);
    const req = http.request({ host: "127.0.0.1", port: envoy.port, method: "POST", path: i % 3 === 0 ? "/override" : "/v1/chat/completions", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => {
        if (res.statusCode !== 200 || res.headers["x-ai-fallback-service"] !== "backup") failures.push({ i, status: res.statusCode });
        resolve();
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error("timeout")));
    req.on("error", (err) => {
      failures.push({ i, error: err.message });
      resolve();
    });
    if (chunked) {
      req.write(payload.subarray(0, payload.length >> 1));
      req.end(payload.subarray(payload.length >> 1));
    } else {
      req.end(payload);
    }
  });
  const worker = async () => {
    while (next < to) await one(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
}

const primary = await startMock("primary", { recordBodies: false });
const backup = await startMock("backup", { recordBodies: false });
primary.behave((req) => ({ status: req.headers["x-request-id"]?.endsWith("7") ? 429 : 503 }));
const envoy = await startEnvoy({
  pluginConfig: {
    backups: [{ service: "backup" }],
    _rules_: [{ _match_route_: ["override"], backups: [{ service: "backup", model: "soak-model" }] }],
  },
  clusters: { primary: primary.port, backup: backup.port },
  routes: [{ name: "override", prefix: "/override" }, { name: "primary-route", prefix: "/" }],
  routeTimeoutMs: 30000,
  logLevel: "warning",
  componentLogLevel: "wasm:warning",
});
const failures = [];
const started = Date.now();
let ok = false;
try {
  console.log(`soak: ${TOTAL} fallbacks, ${CONCURRENCY} at a time, one Envoy worker; ${os.cpus().length} x ${os.cpus()[0].model}, ${MiB(os.totalmem())}`);
  await run(envoy, 0, WARMUP, failures);
  primary.requests.length = 0;
  backup.requests.length = 0;
  const samples = [await sample(envoy, "after warm-up", WARMUP)];
  const step = Math.ceil(TOTAL / SAMPLES);
  for (let done = 0; done < TOTAL; done += step) {
    const to = Math.min(TOTAL, done + step);
    await run(envoy, WARMUP + done, WARMUP + to, failures);
    primary.requests.length = 0;
    backup.requests.length = 0;
    samples.push(await sample(envoy, "", to));
  }
  const seconds = (Date.now() - started) / 1000;
  const stats = await envoy.stats();
  const first = samples[0];
  const last = samples[samples.length - 1];
  const vmFailed = /Function: proxy_on_\w+ failed|wasm trap|RuntimeError/.test(envoy.logs());
  console.log(`done in ${seconds.toFixed(0)} s (${((WARMUP + TOTAL) / seconds).toFixed(0)} fallbacks/s)`);
  console.log(`served_by_backup ${counter(stats, "wasmcustom.ai_fallback.served_by_backup")}, over_budget ${counter(stats, "wasmcustom.ai_fallback.over_budget")}, ` +
    `streams ${counter(stats, "wasmcustom.ai_fallback.streams")}, kept_bytes ${counter(stats, "wasmcustom.ai_fallback.kept_bytes")}, ` +
    `pending_backup_calls ${counter(stats, "wasmcustom.ai_fallback.pending_backup_calls")}, failed requests ${failures.length}, VM failure ${vmFailed ? "YES" : "none"}`);
  console.log(`Envoy heap allocated ${MiB(first.heapAllocated)} -> ${MiB(last.heapAllocated)}, RSS ${MiB(first.rss)} -> ${MiB(last.rss)}`);
  ok = failures.length === 0 && !vmFailed &&
    counter(stats, "wasmcustom.ai_fallback.served_by_backup") === WARMUP + TOTAL &&
    counter(stats, "wasmcustom.ai_fallback.streams") === 0 && counter(stats, "wasmcustom.ai_fallback.kept_bytes") === 0 &&
    last.heapAllocated - first.heapAllocated < FLAT_BYTES && last.rss - first.rss < FLAT_BYTES;
  if (failures.length) console.log("first failures:", JSON.stringify(failures.slice(0, 5)));
  console.log(ok ? "soak (fallbacks): PASS" : "soak (fallbacks): FAIL");
} finally {
  await envoy.stop();
}

/**
 * `count` streaming requests, CONCURRENCY at a time, each closed by its client as soon as `holder`
 * (which never answers) has it. Returns how many reached it.
 */
function aborts(envoy, holder, from, count) {
  return sendCancelled({ port: envoy.port, mock: holder, from, count, concurrency: CONCURRENCY, requestId: (n) => `abort-${n}-${"i".repeat(1000)}` });
}

/** Gauges read after Envoy has handled the last closes (they settle within a second). */
async function settledStats(envoy, names) {
  let stats = await envoy.stats();
  for (let i = 0; i < 50 && names.some((n) => counter(stats, n) !== 0); i++) {
    await new Promise((r) => setTimeout(r, 100));
    stats = await envoy.stats();
  }
  return stats;
}

async function abortSoak(mode, startOptions, gauges) {
  const target = await startEnvoy({ ...startOptions, logLevel: "warning", componentLogLevel: "wasm:warning" });
  const started = Date.now();
  try {
    const warmup = Math.min(10000, Math.ceil(ABORTS / 10));
    let reached = await aborts(target, backup, 0, warmup);
    await settledStats(target, gauges);
    const samples = [{ ...(await sample(target, `${mode} after warm-up`, warmup, "aborts")) }];
    const step = Math.ceil(ABORTS / SAMPLES);
    for (let done = 0; done < ABORTS; done += step) {
      const to = Math.min(ABORTS, done + step);
      reached += await aborts(target, backup, warmup + done, to - done);
      samples.push(await sample(target, mode, to, "aborts"));
    }
    const stats = await settledStats(target, gauges);
    // While clients leave, Envoy holds the calls and connections still in flight (in dispatch mode a
    // backup call outlives its client up to its timeout: as many as leave in that time). Flat means:
    // once they are done, Envoy's heap is back where it was after the warm-up; and the process does
    // not keep growing through the second half (a per-abort leak would).
    const settled = await sample(target, `${mode} settled`, warmup + ABORTS, "aborts");
    const first = samples[0];
    const middle = samples[Math.floor(samples.length / 2)];
    const last = samples[samples.length - 1];
    const vmFailed = /Function: proxy_on_\w+ failed|wasm trap|RuntimeError/.test(target.logs());
    const values = gauges.map((n) => `${n.replace("wasmcustom.", "")} ${counter(stats, n)}`).join(", ");
    console.log(`${mode}: ${warmup + ABORTS} client aborts in ${((Date.now() - started) / 1000).toFixed(0)} s, ${reached} reached the first backup; ` +
      `${values}; VM failure ${vmFailed ? "YES" : "none"}; Envoy heap allocated ${MiB(first.heapAllocated)} -> ${MiB(last.heapAllocated)} ` +
      `(${MiB(settled.heapAllocated)} once settled), RSS ${MiB(first.rss)} -> ${MiB(middle.rss)} at half-way -> ${MiB(last.rss)}`);
    const pass = reached === warmup + ABORTS && !vmFailed && gauges.every((n) => counter(stats, n) === 0) &&
      settled.heapAllocated - first.heapAllocated < FLAT_BYTES && last.rss - middle.rss < SECOND_HALF_RSS_BYTES;
    console.log(pass ? `soak (${mode} aborts): PASS` : `soak (${mode} aborts): FAIL`);
    return pass;
  } finally {
    await target.stop();
  }
}

try {
  primary.behave({ status: 503 });
  const secondBackup = await startMock("backup-2", { recordBodies: false });
  const plugin = { backups: [{ service: "backup" }, { service: "backup-2" }] };
  const streamedFor = (generatorOptions) => ({ admin, listener }) => streamedBootstrap(plugin,
    { primary: "primary", addresses: { primary: `127.0.0.1:${primary.port}`, backup: `127.0.0.1:${backup.port}`, "backup-2": `127.0.0.1:${secondBackup.port}` } },
    { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin, ...generatorOptions });
  // The dispatch mode's backup call outlives its client (Envoy does not cancel it): a 1 s timeout ends it.
  const dispatch = await abortSoak("dispatch", {
    pluginConfig: { backups: [{ service: "backup", timeout: 1000 }, { service: "backup-2" }] },
    clusters: { primary: primary.port, backup: backup.port, "backup-2": secondBackup.port },
    routeTimeoutMs: 0,
  }, ["wasmcustom.ai_fallback.kept_bytes", "wasmcustom.ai_fallback.streams", "wasmcustom.ai_fallback.pending_backup_calls"]);
  const streamed = await abortSoak("streamed", { bootstrap: streamedFor({}) }, ["wasmcustom.ai_fallback.kept_bytes"]);
  const lean = await abortSoak("lean", { bootstrap: streamedFor({ primaryFilter: false }) }, ["wasmcustom.ai_fallback.kept_bytes"]);
  ok = ok && dispatch && streamed && lean;
} finally {
  await stopAllMocks();
}
console.log(ok ? "soak: PASS" : "soak: FAIL");
process.exit(ok ? 0 : 1);
