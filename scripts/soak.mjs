// npm run soak: at least 100,000 fallbacks through one Envoy worker, then checks that the filter held
// steady: every request answered 200 by the backup, no VM failure, the filter's gauges back to 0, and
// Envoy's heap and resident memory flat between the end of the warm-up and the end of the run.
//
//   SOAK_FALLBACKS=100000 SOAK_CONCURRENCY=100 npm run soak
//
// Bodies vary (200 B to 512 KiB, some chunked without content-length, some model overrides) so that
// the budget, the allocator and the garbage collector see sizes come and go.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { startEnvoy, counter } = require("../tests/e2e/envoy.js");
const { startMock, stopAllMocks } = require("../tests/e2e/mock_model.js");

const TOTAL = Number(process.env.SOAK_FALLBACKS ?? 100000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 100);
const WARMUP = Math.min(10000, Math.ceil(TOTAL / 10));
const SAMPLES = 5;
// Flat: Envoy's heap and RSS may move by allocator noise, not by a leak. 100,000 requests leaking even
// 200 bytes each would add 20 MB.
const FLAT_BYTES = 16 * 1024 * 1024;

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

async function sample(envoy, label, done) {
  const mem = await adminJson(envoy.adminPort, "/memory");
  const s = { label, done, heapAllocated: Number(mem.allocated), heapSize: Number(mem.heap_size), rss: rss(envoy.pid) };
  console.log(`${label.padEnd(12)} ${String(done).padStart(7)} fallbacks  Envoy heap allocated ${MiB(s.heapAllocated)}, heap size ${MiB(s.heapSize)}, RSS ${MiB(s.rss)}`);
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
  console.log(ok ? "soak: PASS" : "soak: FAIL");
} finally {
  await envoy.stop();
  await stopAllMocks();
}
process.exit(ok ? 0 : 1);
