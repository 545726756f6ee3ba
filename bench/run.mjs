// Benchmarks of ai-fallback: `npm run bench` (setup, build, then this file). Prints numbers, asserts
// nothing. Everything it starts (Envoys, mock model services) listens on 127.0.0.1 and is stopped at the
// end, also on error. Every loop is bounded by a count and by a time budget.
//
//   1. first packet timeout lateness (Envoy + filter, hanging primary, quick SSE backup)
//   2. happy-path overhead: Envoy with the filter vs the same Envoy without it (keep-alive client)
//   3. pure core throughput in Node (build/unit_debug.wasm through tests/unit/wasm.js)
//   4. memory: Envoy admin /memory and RSS of both Envoys, size of build/ai_fallback.wasm
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { startEnvoy, stopAllEnvoys, WASM_PATH } = require("../tests/e2e/envoy.js");
const { startMock, stopAllMocks } = require("../tests/e2e/mock_model.js");
const { request } = require("../tests/e2e/client.js");
const { load } = require("../tests/unit/wasm.js");

// ---------------------------------------------------------------- parameters
const FPT_VALUES_MS = [100, 250, 1000];
const FPT_N = 20;
const FPT_WARMUP = 1;
const OVERHEAD_M = 1000; // small bodies, per Envoy
const OVERHEAD_M_BIG = 1000; // 64 KiB bodies, per Envoy
const OVERHEAD_BLOCK = 100; // the two Envoys alternate in blocks of this many requests
const OVERHEAD_WARMUP = 100;
const BIG_BODY_BYTES = 64 * 1024;
const WATCHDOG_MS = 150000; // hard stop: everything is killed and the process exits
const LOG_ARGS = { logLevel: "info", componentLogLevel: "wasm:info" }; // same for both Envoys

// ---------------------------------------------------------------- helpers
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const started = { envoys: [], mocks: [] };
const t0 = nowMs();

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { n: s.length, min: s[0], p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1], mean: sum / (s.length || 1), sum };
}
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const bytes = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

function table(headers, rows, align) {
  const cells = [headers, ...rows].map((r) => r.map(String));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) =>
    "  " + r.map((c, i) => ((align ? align[i] : i === 0 ? "l" : "r") === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(cells[0]));
  console.log("  " + widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
}
function header(title) {
  console.log(`\n== ${title} ${"=".repeat(Math.max(0, 96 - title.length))}`);
}
const note = (s) => console.log(`  ${s}`);

function adminGet(port, path, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
  });
}

function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function mock(name) {
  const m = await startMock(name);
  started.mocks.push(m);
  return m;
}
async function filterEnvoy(opts) {
  const e = await startEnvoy({ ...LOG_ARGS, ...opts });
  started.envoys.push(e);
  return e;
}
async function plainEnvoy(opts) {
  const e = await startEnvoy({ ...LOG_ARGS, ...opts, withFilter: false });
  started.envoys.push(e);
  return e;
}
async function stopOne(e) {
  const i = started.envoys.indexOf(e);
  if (i >= 0) started.envoys.splice(i, 1);
  await e.stop();
}
async function cleanup() {
  await Promise.allSettled(started.envoys.map((e) => e.stop()));
  await Promise.allSettled(started.mocks.map((m) => m.stop()));
  started.envoys.length = 0;
  started.mocks.length = 0;
  await stopAllEnvoys().catch(() => {});
  await stopAllMocks().catch(() => {});
}

// One request on a keep-alive agent; resolves with { status, ms } (status 0 on error/timeout).
function keepAliveRequest(agent, port, payload, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const start = nowMs();
    let done = false;
    const settle = (status) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ status, ms: nowMs() - start });
    };
    const req = http.request(
      {
        agent,
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json", "content-length": String(payload.length) },
      },
      (res) => {
        res.on("data", () => {});
        res.on("end", () => settle(res.statusCode));
        res.on("error", () => settle(0));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      settle(0);
    }, timeoutMs);
    req.on("error", () => settle(0));
    req.end(payload);
  });
}

function chatBody(targetBytes, { stream = false } = {}) {
  // A chat request of exactly targetBytes bytes (when targetBytes is not tiny): model first, a long
  // user message with some escaped quotes and non-ASCII text.
  const base = { model: "gpt-4o", stream, messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "" }], temperature: 0.7 };
  const filler = 'Tell me about "proxies", Envoy filters and fallbacks, s\u2019il vous pla\u00eet. ';
  const emptyLen = Buffer.byteLength(JSON.stringify(base));
  const unit = Buffer.byteLength(JSON.stringify(filler)) - 2;
  const reps = Math.max(0, Math.floor((targetBytes - emptyLen) / unit));
  base.messages[1].content = filler.repeat(reps);
  const len = Buffer.byteLength(JSON.stringify(base));
  if (len < targetBytes) base.messages[1].content += " ".repeat(targetBytes - len);
  return Buffer.from(JSON.stringify(base));
}

// ---------------------------------------------------------------- 1. first packet timeout
async function benchFirstPacket() {
  header("1. First packet timeout lateness");
  note(`primary hangs, backup answers a 1-event SSE stream at once; ${FPT_N} sequential streaming requests per T`);
  note(`(+${FPT_WARMUP} warm-up each, not counted), a new client connection per request, one Envoy per T.`);
  const primary = await mock("primary");
  const backup = await mock("backup");
  const body = { model: "m", stream: true, messages: [{ role: "user", content: "hello" }] };
  const backupSse = { sse: { events: ['{"choices":[{"delta":{"content":"from backup"}}]}'] } };
  backup.behave(backupSse);
  const row = (label, served, s) => [label, served, `${s.n}/${FPT_N}`, f(s.min), f(s.p50), f(s.p95), f(s.max)];

  const base = [];
  const late = [];
  const gaps = [];
  // Baseline A: straight to the backup mock, headers and whole answer.
  {
    const h = [];
    const done = [];
    for (let i = 0; i < FPT_WARMUP + FPT_N; i++) {
      const r = await request(backup.port, { body, timeoutMs: 5000 });
      if (i < FPT_WARMUP || r.headersAt === undefined) continue;
      h.push(r.headersAt);
      if (r.chunks.length) done.push(r.chunks[r.chunks.length - 1].at);
    }
    base.push(row("backup mock direct: headers", "-", summary(h)));
    base.push(row("backup mock direct: whole answer", "-", summary(done)));
  }
  let viaEnvoy = null;
  for (const T of FPT_VALUES_MS) {
    const envoy = await filterEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], firstPacketTimeout: T },
      clusters: { primary: primary.port, backup: backup.port },
    });
    try {
      if (viaEnvoy === null) {
        // Baseline B: through Envoy and the filter, the primary answering that SSE at once (no fallback).
        primary.reset();
        primary.behave(backupSse);
        const v = [];
        for (let i = 0; i < FPT_WARMUP + FPT_N; i++) {
          const r = await request(envoy.port, { body, timeoutMs: 5000 });
          if (i >= FPT_WARMUP && r.headersAt !== undefined && r.status === 200) v.push(r.headersAt);
        }
        viaEnvoy = summary(v);
        base.push(row(`via Envoy+filter (T=${T}), primary answers: headers`, "-", viaEnvoy));
      }
      primary.reset();
      primary.behave({ hang: true });
      backup.reset();
      backup.behave(backupSse);
      const lat = [];
      const gap = [];
      let served = 0;
      let bad = 0;
      const deadline = nowMs() + (FPT_WARMUP + FPT_N) * (T + 1500);
      for (let i = 0; i < FPT_WARMUP + FPT_N && nowMs() < deadline; i++) {
        const r = await request(envoy.port, { body, timeoutMs: T + 5000 });
        if (i < FPT_WARMUP) continue;
        const ok = r.status === 200 && r.headers["x-served-by"] === "backup" && r.headers["x-ai-fallback-trigger"] === "first_packet_timeout";
        if (ok) served++;
        else bad++;
        if (r.headersAt !== undefined) lat.push(r.headersAt - T);
        const p = primary.requests[i];
        const b = backup.requests[i];
        if (p && b && primary.requests.length === backup.requests.length) gap.push(b.receivedAt - p.receivedAt - T);
      }
      const servedText = served === FPT_N ? "all" : `${served} (other ${bad})`;
      late.push(row(`T=${T} ms`, servedText, summary(lat)));
      gaps.push(row(`T=${T} ms`, servedText, summary(gap)));
      primary.reset();
      backup.reset();
      backup.behave(backupSse);
    } finally {
      await stopOne(envoy);
    }
  }
  const cols = ["case", "by backup", "n", "min ms", "p50 ms", "p95 ms", "max ms"];
  note("");
  note("baselines (no timeout involved), client-measured:");
  table(cols, base);
  note("");
  note("client-measured lateness = response headers at - T  (the filter's timer + backup call + reply):");
  table(cols, late);
  note("");
  note("mock-measured timer lateness = backup received the replay - primary received the request - T");
  note("(Date.now() in the mocks: 1 ms resolution; excludes the client<->Envoy legs and the backup's answer):");
  table(cols, gaps);
  note("");
  note("Timer: one root tick every 10 ms (TICK_PERIOD_MS), started when a deadline is armed, so a deadline is");
  note("seen up to ~10 ms late (plus tick jitter). The backup's answer reaches the client only once it is complete");
  note("(dispatch_http_call buffers it), hence the 'whole answer' baseline rather than 'headers' is the one to add.");
}

// ---------------------------------------------------------------- 2. happy-path overhead
async function runAlternating(targets, payload, total, label) {
  // targets: [{ name, port, agent }]; returns Map name -> latencies
  const res = new Map(targets.map((t) => [t.name, { lat: [], errors: 0 }]));
  const budgetEnd = nowMs() + 25000;
  // warm-up: also opens the kept-alive connection
  for (const t of targets) for (let i = 0; i < Math.min(OVERHEAD_WARMUP, total); i++) await keepAliveRequest(t.agent, t.port, payload);
  const blocks = Math.ceil(total / OVERHEAD_BLOCK);
  let truncated = false;
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const r = res.get(t.name);
      for (let i = 0; i < OVERHEAD_BLOCK && r.lat.length + r.errors < total; i++) {
        const { status, ms } = await keepAliveRequest(t.agent, t.port, payload);
        if (status === 200) r.lat.push(ms);
        else r.errors++;
      }
      t.mock.reset(); // drop the recorded request bodies
    }
    if (nowMs() > budgetEnd) {
      truncated = true;
      break;
    }
  }
  if (truncated) note(`(${label}: time budget reached, fewer requests than planned)`);
  return res;
}

async function benchOverhead() {
  header("2. Happy-path overhead (primary answers 200 JSON; filter vs no filter)");
  note(`sequential POSTs on one kept-alive connection per Envoy (http.Agent keepAlive, maxSockets 1);`);
  note(`the two Envoys alternate in blocks of ${OVERHEAD_BLOCK} after ${OVERHEAD_WARMUP} warm-up requests each; --concurrency 1, same log levels`);
  const primaryF = await mock("primary-f");
  const primaryP = await mock("primary-p");
  // firstPacketTimeout is on, so "stream": true requests take the streaming path (deadline armed,
  // body scanned, 2xx headers held until the first body chunk); the others do not notice it.
  const withFilter = await filterEnvoy({ pluginConfig: { backups: [{ service: "backup" }], firstPacketTimeout: 5000 }, clusters: { primary: primaryF.port, backup: primaryF.port } });
  const plain = await plainEnvoy({ clusters: { primary: primaryP.port, backup: primaryP.port } });
  const agents = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })];
  const targets = [
    { name: "with filter", port: withFilter.port, agent: agents[0], mock: primaryF },
    { name: "without filter", port: plain.port, agent: agents[1], mock: primaryP },
  ];
  try {
    const small = chatBody(200);
    const big = chatBody(BIG_BODY_BYTES);
    const streamed = chatBody(200, { stream: true });
    const rows = [];
    for (const [label, payload, total] of [
      [`${small.length} B body`, small, OVERHEAD_M],
      [`${bytes(big.length)} body`, big, OVERHEAD_M_BIG],
      [`${streamed.length} B, stream:true`, streamed, OVERHEAD_M],
    ]) {
      const res = await runAlternating(targets, payload, total, label);
      const stats = {};
      for (const t of targets) {
        const { lat, errors } = res.get(t.name);
        const s = summary(lat);
        stats[t.name] = s;
        rows.push([label, t.name, `${s.n}${errors ? ` (+${errors} err)` : ""}`, f(s.p50, 3), f(s.p95, 3), f(s.p99, 3), f(s.mean, 3), f(s.n / (s.sum / 1000), 0)]);
      }
      const a = stats["with filter"];
      const b = stats["without filter"];
      rows.push([label, "difference", "", f(a.p50 - b.p50, 3), f(a.p95 - b.p95, 3), f(a.p99 - b.p99, 3), f(a.mean - b.mean, 3), f(a.n / (a.sum / 1000) - b.n / (b.sum / 1000), 0)]);
    }
    table(["body", "envoy", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms", "req/s"], rows, ["l", "l", "r", "r", "r", "r", "r", "r"]);
    note("req/s = completed requests / summed latency of that Envoy's sequential requests (one client, one connection).");
    return { withFilter, plain };
  } catch (err) {
    await stopOne(withFilter);
    await stopOne(plain);
    throw err;
  } finally {
    for (const a of agents) a.destroy();
  }
}

// ---------------------------------------------------------------- 3. pure core throughput
function timeLoop(iterations, budgetMs, fn) {
  const start = nowMs();
  let i = 0;
  for (; i < iterations; i++) {
    fn();
    if (nowMs() - start > budgetMs) {
      i++;
      break;
    }
  }
  return { iterations: i, ms: nowMs() - start };
}

function benchCore() {
  header("3. Pure core throughput (Node, build/unit_debug.wasm via tests/unit/wasm.js)");
  note("Every call copies the input into wasm memory and the result back to JS (wasm.js buf()/readBuf()/readStr()),");
  note("and unit_debug.wasm is built with optimizeLevel 1 (the filter: 3), so these are lower bounds for the filter's own code.");
  const w = load();
  const small = chatBody(2048);
  const large = chatBody(1024 * 1024);
  const rows = [];
  for (const [label, body, iters] of [
    ["2 KiB", small, 200],
    ["1 MiB", large, 5],
  ]) {
    // warm-up: lets V8 tier the wasm code up (the first few hundred calls run slower), bounded in time
    const rw = w.rewrite(body, "qwen-plus");
    const sc = w.scan(body);
    timeLoop(Math.max(2, 400000 / body.length), 500, () => {
      w.rewrite(body, "qwen-plus");
      w.scan(body);
      w.firstPacket(body);
    });
    const r1 = timeLoop(iters, 10000, () => w.rewrite(body, "qwen-plus"));
    const r2 = timeLoop(iters, 10000, () => w.scan(body));
    const mbps = (r) => (body.length * r.iterations) / 1048576 / (r.ms / 1000);
    rows.push([`model rewrite, ${label} (${body.length} B -> ${rw.body.length} B, outcome ${rw.outcome})`, r1.iterations, f(r1.ms / r1.iterations, 4), f(mbps(r1), 1), "-"]);
    rows.push([`JSON scan, ${label} (valid=${sc.valid}, model spans ${sc.modelValues.length})`, r2.iterations, f(r2.ms / r2.iterations, 4), f(mbps(r2), 1), "-"]);
    const r0 = timeLoop(iters, 10000, () => w.firstPacket(body));
    rows.push([`  reference: copy-in + call only (firstPacket), ${label}`, r0.iterations, f(r0.ms / r0.iterations, 4), f(mbps(r0), 1), "-"]);
  }
  const cfg = JSON.stringify({
    backups: [
      { service: "outbound|443||qwen.dns", model: "qwen-plus", timeout: 60000, authority: "dashscope.aliyuncs.com", path: "/compatible-mode/v1/chat/completions", headers: { authorization: "Bearer sk-backup" } },
      { service: "backup-openai", model: "gpt-4o-mini", timeout: 30000 },
      { service: "backup-local" },
    ],
    firstPacketTimeout: 3000,
    triggerStatuses: ["5xx", 429],
    fallbackDeadline: 120000,
  });
  const parsed = w.configSummary(cfg);
  timeLoop(500, 300, () => w.configSummary(cfg));
  const r3 = timeLoop(5000, 3000, () => w.configSummary(cfg));
  rows.push([`configSummary, 3 backups (${cfg.length} B${parsed.error ? `, ERROR ${parsed.error}` : ""})`, r3.iterations, f(r3.ms / r3.iterations, 4), "-", f(r3.iterations / (r3.ms / 1000), 0)]);
  table(["operation", "iters", "ms/op", "MB/s", "ops/s"], rows);
  note("configSummary also serialises the parsed config back to JSON (entry.ts) and JSON.parses it in JS.");
}

// ---------------------------------------------------------------- 4. memory
async function benchMemory(envoys) {
  header("4. Memory (after the overhead runs)");
  const rows = [];
  const vals = {};
  for (const [name, e] of [
    ["with filter", envoys.withFilter],
    ["without filter", envoys.plain],
  ]) {
    let m = {};
    try {
      const r = await adminGet(e.adminPort, "/memory");
      m = JSON.parse(r.text);
    } catch (err) {
      note(`(${name}: /memory failed: ${err.message})`);
    }
    const v = { allocated: Number(m.allocated), heap: Number(m.heap_size), physical: Number(m.total_physical_bytes), rss: rssBytes(e.pid) };
    vals[name] = v;
    rows.push([name, bytes(v.allocated), bytes(v.heap), Number.isFinite(v.physical) ? bytes(v.physical) : "-", Number.isFinite(v.rss) ? bytes(v.rss) : "-"]);
  }
  const a = vals["with filter"];
  const b = vals["without filter"];
  const d = (x, y) => (Number.isFinite(x) && Number.isFinite(y) ? `${x >= y ? "+" : "-"}${bytes(Math.abs(x - y))}` : "-");
  rows.push(["difference", d(a.allocated, b.allocated), d(a.heap, b.heap), d(a.physical, b.physical), d(a.rss, b.rss)]);
  table(["envoy", "allocated", "heap_size", "physical", "VmRSS"], rows);
  note("allocated/heap_size/physical: admin /memory (tcmalloc); V8's own heap pages are mapped outside it, VmRSS includes them.");
  const size = fs.statSync(WASM_PATH).size;
  note("");
  note(`build/ai_fallback.wasm: ${size} bytes (${bytes(size)})`);
}

// ---------------------------------------------------------------- main
async function main() {
  console.log(`ai-fallback benchmarks  (node ${process.version}, ${new Date().toISOString()})`);
  await benchFirstPacket();
  const envoys = await benchOverhead();
  try {
    benchCore(); // Node only; the two Envoys sit idle meanwhile
    await benchMemory(envoys);
  } finally {
    await stopOne(envoys.withFilter);
    await stopOne(envoys.plain);
  }
  console.log(`\ntotal ${((nowMs() - t0) / 1000).toFixed(1)} s`);
}

let aborting = false;
const watchdog = setTimeout(() => {
  aborting = true;
  console.error(`bench: watchdog after ${WATCHDOG_MS} ms, stopping everything`);
  cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    aborting = true;
    console.error(`bench: ${sig}, stopping everything`);
    cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  if (!aborting) console.error(err); // after a signal, requests to the stopped servers fail: no news
  process.exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
