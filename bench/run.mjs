// `npm run bench`: ai-fallback measured side by side with plain Envoy. Prints numbers and a target
// check; asserts nothing. Everything it starts listens on 127.0.0.1 and is stopped at the end, also
// on error or Ctrl-C.
//
//   npm run bench                      full run (about 10 minutes)
//   npm run bench -- --quick           development: 1 round of 2 s, no 1 MB bodies, shorter sections
//   npm run bench -- --compare         also LiteLLM's proxy and Portkey's gateway (installed on first use)
//   npm run bench -- --instructions    also each path against its floor by instructions (valgrind's callgrind, ~15 min)
//   npm run bench -- --only throughput,core --rounds 5 --seconds 10 --connections 32 --markdown out.md
//   npm run bench -- --only throughput --match streamed    throughput rows whose name contains the text (and their baselines)
//
// Sections: throughput (wrk against plain Envoy, the empty module, the filter's happy and fallback
// paths, the streamed mode's happy and fallback paths), ttfb (streaming time to first byte), hostcalls (host calls per request, counted by a
// scripted host), core (model rewrite and scans in V8), memory (per in-flight request, module size),
// lateness (first-packet timeout), hedge (time to first token with a slow primary, with and without
// `hedge`), cooldown (fallback latency with a cooling primary, both modes), compare (with --compare),
// instructions (with --instructions: each path against its floor by instruction count, under callgrind).
import fs from "node:fs";
import os from "node:os";
import { spawnSync } from "node:child_process";
import { benchCompare, stopCompare } from "./compare.mjs";
import { benchCore } from "./core.mjs";
import { benchCooldown, stopCooldown } from "./cooldown.mjs";
import { FALLBACK_CONFIG, FPT_CONFIG, HAPPY_CONFIG, startFront, startUpstream, stopFleet } from "./fleet.mjs";
import { benchHostCalls } from "./host_calls.mjs";
import { benchInstructions } from "./instructions.mjs";
import { benchStreamedHostCalls } from "./host_calls_streamed.mjs";
import { benchFirstPacket, stopLateness } from "./lateness.mjs";
import { benchHedge, stopHedge } from "./hedge.mjs";
import { benchMemory } from "./memory.mjs";
import { benchThroughput, scenarios, startFronts } from "./throughput.mjs";
import { benchTtfb } from "./ttfb.mjs";
import { cleanupWrkFiles, ensureWrk } from "./wrk.mjs";
import { f, header, nowMs, table } from "./stats.mjs";

const SECTIONS = ["throughput", "ttfb", "hostcalls", "core", "memory", "lateness", "hedge", "cooldown"];
/** Sections that run only when asked for (--compare, --instructions, or --only). */
const OPT_IN = ["compare", "instructions"];

function parseArgs(argv) {
  const opts = { quick: false, compare: false, instructions: false, rounds: 3, seconds: 5, connections: 32, only: null, markdown: null, match: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") opts.quick = true;
    else if (a === "--compare") opts.compare = true;
    else if (a === "--instructions") opts.instructions = true;
    else if (a === "--rounds") opts.rounds = Number(value());
    else if (a === "--seconds") opts.seconds = Number(value());
    else if (a === "--connections") opts.connections = Number(value());
    else if (a === "--only") opts.only = value().split(",");
    else if (a === "--markdown") opts.markdown = value();
    else if (a === "--match") opts.match = value();
    else throw new Error(`unknown option ${a} (see the head of bench/run.mjs)`);
  }
  if (opts.quick) {
    if (!argv.includes("--rounds")) opts.rounds = 1;
    if (!argv.includes("--seconds")) opts.seconds = 2;
  }
  for (const s of opts.only ?? []) {
    if (![...SECTIONS, ...OPT_IN].includes(s)) throw new Error(`unknown section ${s}; sections: ${SECTIONS.join(", ")}, ${OPT_IN.join(", ")}`);
  }
  return opts;
}

function machine() {
  const cpus = os.cpus();
  const envoy = spawnSync(".venv/bin/envoy", ["--version"], { encoding: "utf8" });
  const envoyLine = `${envoy.stdout}${envoy.stderr}`.split("\n").find((l) => l.includes("version:")) ?? "";
  return {
    date: new Date().toISOString(),
    cpu: `${cpus.length} x ${cpus[0]?.model ?? "?"}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    envoy: (/version: (\S+)/.exec(envoyLine) ?? [])[1] ?? "?",
    load: os.loadavg().map((l) => l.toFixed(2)).join(" "),
  };
}

/** The targets against what this run measured. */
function targetCheck(out) {
  header("Targets");
  const rows = [];
  const find = (name, size) => out.throughput?.results.find((s) => s.name === name && s.size === size);
  const ratioRow = (label, s, min) => {
    if (!s) return;
    rows.push([label, `>= ${min}`, `${f(s.ratio, 3)} (CPU ratio ${f(s.cpuRatio, 3)})`, s.ratio >= min ? "met" : "missed"]);
  };
  ratioRow("happy path, 1 KB, throughput / plain Envoy", find("filter, happy path", 1024), 0.95);
  ratioRow("happy path, 100 KB, throughput / plain Envoy", find("filter, happy path", 100 * 1024), 0.92);
  ratioRow("fallback path, throughput / plain Envoy", find("filter, fallback 500 -> 200", 1024), 0.45);
  if (out.memory) {
    rows.push(["release .wasm", "<= 100 KB", `${(out.memory.wasmBytes / 1000).toFixed(1)} KB (${out.memory.wasmBytes} B)`, out.memory.wasmBytes <= 100 * 1000 ? "met" : "missed"]);
    for (const m of out.memory.results) {
      const over = m.exact - m.size;
      rows.push([`memory per in-flight request, ${m.size / 1024} KB body`, "<= body + 8 KB", `body ${over < 0 ? "-" : "+"} ${(Math.abs(over) / 1024).toFixed(1)} KiB`, over <= 8 * 1024 ? "met" : "missed"]);
    }
  }
  if (out.core) {
    const ms = out.core.results["1 MB"].rewrite;
    rows.push(["model rewrite of 1 MB", "<= 2 ms", `${f(ms, 3)} ms`, ms <= 2 ? "met" : "missed"]);
  }
  return table(["target", "wanted", "measured", ""], rows, ["l", "r", "r", "l"]);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = nowMs();
  const m = machine();
  const wrk = ensureWrk();
  console.log(`ai-fallback benchmarks, ${m.date}`);
  console.log(`  machine: ${m.cpu}, ${m.memory}, ${m.kernel}; load average at start ${m.load}`);
  console.log(`  Envoy ${m.envoy}, ${wrk}, Node ${m.node}${opts.quick ? "; QUICK mode (numbers for development only)" : ""}`);
  const want = (s) => (opts.only ? opts.only.includes(s) : !OPT_IN.includes(s) || opts[s]);
  const out = { machine: m, wrk, opts };
  if (want("throughput") || want("ttfb") || want("compare")) {
    const upstream = await startUpstream();
    if (want("throughput")) {
      const list = scenarios(opts);
      const fronts = await startFronts(upstream.port, list);
      out.throughput = await benchThroughput({ upstream, fronts, list, rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections });
    }
    if (want("ttfb")) {
      const plain = await startFront(upstream.port, "plain");
      const filter = await startFront(upstream.port, "filter", FPT_CONFIG);
      out.ttfb = await benchTtfb({
        n: opts.quick ? 100 : 500,
        targets: [
          { name: "upstream directly", port: upstream.port },
          { name: "plain Envoy", port: plain.port },
          { name: "Envoy + filter (firstPacketTimeout on)", port: filter.port },
        ],
      });
    }
    if (want("compare")) out.compare = await benchCompare({ upstream, opts, baseline: out.throughput });
    await stopFleet();
  }
  if (want("hostcalls")) {
    out.hostCalls = benchHostCalls({ quick: opts.quick, configs: { happy: HAPPY_CONFIG, fpt: FPT_CONFIG, fallback: FALLBACK_CONFIG, cooldown: { ...HAPPY_CONFIG, cooldown: {} } } });
    out.hostCallsStreamed = benchStreamedHostCalls({ quick: opts.quick });
  }
  if (want("core")) out.core = benchCore(opts);
  if (want("memory")) out.memory = await benchMemory(opts);
  if (want("lateness")) out.lateness = await benchFirstPacket({ n: opts.quick ? 5 : 20 });
  if (want("hedge")) out.hedge = await benchHedge({ n: opts.quick ? 3 : 10 });
  if (want("cooldown")) out.cooldown = await benchCooldown({ n: opts.quick ? 10 : 30 });
  if (want("instructions")) out.instructions = await benchInstructions({ quick: opts.quick });
  out.targets = targetCheck(out);
  console.log(`\ntotal ${((nowMs() - t0) / 1000).toFixed(1)} s; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (opts.markdown) writeMarkdown(opts.markdown, out);
}

function writeMarkdown(file, out) {
  const parts = [];
  parts.push(`Run \`npm run bench -- ${process.argv.slice(2).join(" ")}\` on ${out.machine.date}: ${out.machine.cpu}, ${out.machine.memory}, ` +
    `${out.machine.kernel}; Envoy ${out.machine.envoy}; ${out.wrk}; Node ${out.machine.node}. Load average (1, 5, 15 min) at the ` +
    `start ${out.machine.load}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}.`);
  for (const [title, section] of [["Throughput", out.throughput], ["Each path against its floor", out.throughput?.floors],
    ["Streaming time to first byte", out.ttfb], ["Compared with other gateways", out.compare],
    ["Host calls per request", out.hostCalls], ["Host calls per fallback, streamed mode", out.hostCallsStreamed],
    ["Pure core in V8", out.core], ["Memory", out.memory], ["First packet timeout lateness", out.lateness], ["Hedging: time to first token with a slow primary", out.hedge],
    ["Cooldown: fallback latency with a cooling primary", out.cooldown], ["Each path against its floor by instructions", out.instructions]]) {
    if (section?.markdown) parts.push(`### ${title}\n\n${section.markdown}`);
  }
  parts.push(`### Targets\n\n${out.targets}`);
  fs.writeFileSync(file, parts.join("\n\n") + "\n");
  console.log(`markdown written to ${file}`);
}

let aborting = false;
async function cleanup() {
  await Promise.allSettled([stopFleet(), stopLateness(), stopHedge(), stopCooldown(), stopCompare()]);
  cleanupWrkFiles();
}
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
  if (!aborting) console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
