// Side by side in one run: plain Envoy, Envoy with the do-nothing module, the filter's happy path,
// its fallback path, each driven by wrk in rounds (scenarios in a rotating order), with the front
// Envoy's CPU time per request as a load-independent second view.
import {
  CHAT_PATH, FAIL_PATH, FALLBACK_CONFIG, FPT_CONFIG, HAPPY_CONFIG, STREAM_PATH, buildFloor, cpuMs, startFront, startStreamedFront, startUpstream,
} from "./fleet.mjs";
import { runWrk } from "./wrk.mjs";
import { chatBody, f, header, median, note, spread, table } from "./stats.mjs";

const KB = 1024;

/**
 * The scenarios; `baseline` names the plain-Envoy scenario a ratio is taken against, `floor` the
 * scenario that is the path's floor (what no module doing this path's work can beat: the empty module,
 * the same filter without the feature, the minimal dispatch module, Envoy's own retry route), with the
 * same body; `wanted`: the most over the floor the project aims at (issue 29), as a fraction.
 */
export function scenarios({ quick, match = null }) {
  const list = [
    { name: "plain Envoy", front: "plain", size: 1 * KB },
    { name: "empty wasm module", front: "noop", size: 1 * KB, baseline: "plain Envoy" },
    { name: "filter, happy path", front: "filter", size: 1 * KB, baseline: "plain Envoy", floor: "empty wasm module" },
    { name: "filter, firstPacketTimeout on", front: "fpt", size: 1 * KB, baseline: "plain Envoy", floor: "filter, happy path", wanted: 0.10 },
    { name: "filter, fallback 500 -> 200", front: "fallback", size: 1 * KB, path: FAIL_PATH, baseline: "plain Envoy", floor: "dispatch floor: minimal module, fallback", wanted: 0.10 },
    { name: "dispatch floor: minimal module, fallback", front: "floor", size: 1 * KB, path: FAIL_PATH, baseline: "plain Envoy" },
    { name: "filter + primary guard, happy path", front: "guard", size: 1 * KB, baseline: "plain Envoy", floor: "filter, firstPacketTimeout on" },
    { name: "streamed mode, Envoy only", front: "streamedEnvoy", size: 1 * KB, baseline: "plain Envoy" },
    // The floor of any retry-based fallback: the primary's cluster answers 500, the backup's (another
    // upstream, answering 200 on every path) 200, no module anywhere.
    { name: "streamed mode, Envoy only, fallback", front: "streamedEnvoySplit", size: 1 * KB, path: FAIL_PATH, baseline: "plain Envoy" },
    { name: "streamed mode, happy path", front: "streamed", size: 1 * KB, baseline: "plain Envoy", floor: "streamed mode, Envoy only", wanted: 0.25 },
    { name: "streamed mode, fallback 500 -> 200", front: "streamed", size: 1 * KB, path: FAIL_PATH, baseline: "plain Envoy", floor: "streamed mode, Envoy only, fallback", wanted: 0.25 },
    { name: "lean streamed mode, happy path", front: "streamedLean", size: 1 * KB, baseline: "plain Envoy", floor: "streamed mode, Envoy only", wanted: 0.25 },
    { name: "lean streamed mode, fallback 500 -> 200", front: "streamedLean", size: 1 * KB, path: FAIL_PATH, baseline: "plain Envoy", floor: "streamed mode, Envoy only, fallback", wanted: 0.15 },
    { name: "plain Envoy, stream:true", front: "plain", size: 1 * KB, stream: true, path: STREAM_PATH },
    { name: "filter, stream:true (fpt on)", front: "fpt", size: 1 * KB, stream: true, path: STREAM_PATH, baseline: "plain Envoy, stream:true" },
    { name: "plain Envoy", front: "plain", size: 100 * KB },
    { name: "empty wasm module", front: "noop", size: 100 * KB, baseline: "plain Envoy" },
    { name: "filter, happy path", front: "filter", size: 100 * KB, baseline: "plain Envoy", floor: "empty wasm module" },
    { name: "filter, firstPacketTimeout on", front: "fpt", size: 100 * KB, baseline: "plain Envoy", floor: "filter, happy path", wanted: 0.10 },
    { name: "filter + primary guard, happy path", front: "guard", size: 100 * KB, baseline: "plain Envoy", floor: "filter, firstPacketTimeout on" },
    { name: "plain Envoy", front: "plain", size: 1024 * KB },
    { name: "filter, happy path", front: "filter", size: 1024 * KB, baseline: "plain Envoy" },
  ];
  let out = quick ? list.filter((s) => s.size <= 100 * KB) : list;
  if (match) {
    // The rows asked for, and the plain-Envoy rows their ratios need.
    const picked = out.filter((s) => s.name.includes(match));
    const baselines = new Set(picked.flatMap((s) => [`${s.baseline}@${s.size}`, `${s.floor}@${s.size}`]));
    out = out.filter((s) => picked.includes(s) || baselines.has(`${s.name}@${s.size}`));
  }
  return out;
}

const sizeLabel = (n) => (n >= 1024 * KB ? `${n / (1024 * KB)} MB` : `${n / KB} KB`);

/** Starts the front Envoys the scenarios need (one per kind); returns kind -> Envoy. */
export async function startFronts(upstreamPort, list) {
  const configs = { plain: null, noop: {}, filter: HAPPY_CONFIG, fpt: FPT_CONFIG, fallback: FALLBACK_CONFIG };
  const streamed = {
    streamed: {},
    streamedLean: { primaryFilter: false },
    streamedEnvoy: { withModule: false },
    streamedEnvoySplit: { withModule: false, alwaysOkBackup: true },
  };
  const fronts = {};
  for (const kind of new Set(list.map((s) => s.front))) {
    if (streamed[kind]) {
      const { alwaysOkBackup, ...opts } = streamed[kind];
      if (alwaysOkBackup) opts.backupPort = (await startUpstream({ alwaysOk: true })).port;
      fronts[kind] = await startStreamedFront(upstreamPort, undefined, opts);
      continue;
    }
    // The guard's rows: firstPacketTimeout on (what the guard is for), the guard on the primary's cluster.
    if (kind === "guard") {
      fronts[kind] = await startFront(upstreamPort, "filter", FPT_CONFIG, undefined, { guard: true });
      continue;
    }
    if (kind === "floor") buildFloor();
    fronts[kind] = await startFront(upstreamPort, ["plain", "noop", "floor"].includes(kind) ? kind : "filter", configs[kind] ?? {});
  }
  return fronts;
}

/**
 * Runs every scenario `rounds` times for `seconds` each (after one short warm-up each) and prints
 * the table. Returns { rows, markdown, results } for BENCHMARKS.md and the target check.
 */
export async function benchThroughput({ upstream, fronts, list, rounds, seconds, connections }) {
  header(`Throughput side by side: wrk -t1 -c${connections}, ${rounds} round(s) of ${seconds} s per scenario`);
  note(`upstream: Envoy direct_response (pid ${upstream.pid}); every front Envoy runs one worker (--concurrency 1).`);
  note("Scenarios run one after another in each round, in a rotating order; ratios are taken within a round.");
  for (const s of list) {
    s.body = chatBody(s.size, { stream: !!s.stream });
    s.key = `${s.name}@${s.size}`;
    s.runs = [];
  }
  for (const s of list) {
    const e = fronts[s.front];
    await runWrk({ port: e.port, urlPath: s.path ?? CHAT_PATH, body: s.body, seconds: 1, connections });
  }
  for (let r = 0; r < rounds; r++) {
    const order = list.map((_, i) => list[(i + r) % list.length]);
    for (const s of order) {
      const e = fronts[s.front];
      const cpu0 = cpuMs(e.pid);
      const up0 = cpuMs(upstream.pid);
      const w = await runWrk({ port: e.port, urlPath: s.path ?? CHAT_PATH, body: s.body, seconds, connections });
      const cpu = cpuMs(e.pid) - cpu0;
      const up = cpuMs(upstream.pid) - up0;
      s.runs.push({ ...w, cpuUsPerReq: (cpu * 1000) / w.requests, upstreamCpuUsPerReq: (up * 1000) / w.requests });
      process.stdout.write(".");
    }
  }
  process.stdout.write("\n");
  const byKey = new Map(list.map((s) => [s.key, s]));
  const rows = [];
  for (const s of list) {
    const base = s.baseline ? byKey.get(`${s.baseline}@${s.size}`) : null;
    const ratios = base ? s.runs.map((run, i) => run.rps / base.runs[i].rps) : [];
    const cpuRatios = base ? s.runs.map((run, i) => base.runs[i].cpuUsPerReq / run.cpuUsPerReq) : [];
    s.ratio = median(ratios);
    s.cpuRatio = median(cpuRatios);
    const errors = s.runs.reduce((a, r) => a + r.errors + r.non2xx, 0);
    rows.push([
      s.name, sizeLabel(s.size),
      spread(s.runs.map((r) => r.rps), 0) + (errors ? ` (${errors} err)` : ""),
      spread(s.runs.map((r) => r.p50Ms), 2),
      spread(s.runs.map((r) => r.p99Ms), 2),
      base ? spread(ratios, 3) : "1",
      f(median(s.runs.map((r) => r.cpuUsPerReq)), 1),
      base ? spread(cpuRatios, 3) : "1",
    ]);
  }
  const markdown = table(
    ["scenario", "body", "req/s", "p50 ms", "p99 ms", "ratio to plain", "front CPU µs/req", "CPU ratio"], rows,
    ["l", "r", "r", "r", "r", "r", "r", "r"]);
  note("");
  note("Values: median over rounds (min-max). ratio to plain = req/s / plain Envoy's req/s in the same round, same body.");
  note("front CPU µs/req = the front Envoy's user+system CPU time during the run / requests (10 ms clock ticks);");
  note("CPU ratio = plain Envoy's CPU per request / this one's: what the ratio would be if the front alone limited");
  note("throughput. On a shared 2-core machine the upstream and wrk take CPU too, which dilutes the throughput ratio.");
  return { rows, markdown, floors: { markdown: floorTable(list, byKey) }, results: list };
}

/**
 * Each path against its floor by the front's CPU per request: the ratio is taken within a round
 * (the path's CPU / its floor's), the median of the rounds reported with their spread.
 */
function floorTable(list, byKey) {
  const rows = [];
  for (const s of list) {
    const floor = s.floor ? byKey.get(`${s.floor}@${s.size}`) : null;
    if (!floor) continue;
    const ratios = s.runs.map((run, i) => run.cpuUsPerReq / floor.runs[i].cpuUsPerReq);
    s.floorRatio = median(ratios);
    const wanted = s.wanted === undefined ? "" : `<= ${f(1 + s.wanted, 2)}`;
    const verdict = s.wanted === undefined ? "" : s.floorRatio <= 1 + s.wanted ? "met" : "missed";
    rows.push([s.name, sizeLabel(s.size), s.floor, f(median(s.runs.map((r) => r.cpuUsPerReq)), 1),
      f(median(floor.runs.map((r) => r.cpuUsPerReq)), 1), spread(ratios, 3), wanted, verdict]);
  }
  if (rows.length === 0) return null;
  header("Each path against its floor (front CPU per request)");
  const md = table(["path", "body", "its floor", "path µs/req", "floor µs/req", "ratio to floor", "wanted", ""], rows,
    ["l", "r", "l", "r", "r", "r", "r", "l"]);
  note("ratio to floor = the path's front CPU per request / its floor's, in the same round; median (min-max) of the rounds.");
  return md;
}
