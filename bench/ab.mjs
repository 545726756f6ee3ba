// Side-by-side A/B of module builds by the front Envoy's CPU per request (the figure that stays
// steady on a machine other work shares; req/s does not). Two front Envoys running the same build
// still differ by up to 2-3 µs: give a variant twice (an A/A pair) to see it. Every variant gets its
// own front Envoy (one worker) behind the same upstream; wrk -t1 -c32 runs each for `--seconds`,
// in a rotating order, `--rounds` times after a 1 s warm-up; the median of the rounds is printed.
//
//   node bench/ab.mjs [--rounds 5] [--seconds 3] [--size 1024] [--stream] VARIANT...
//
// VARIANT: plain | noop | floor | happy=<wasm> | fallback=<wasm> | fpt=<wasm> | guard=<wasm>
// (happy, fallback and fpt use the bench's HAPPY_CONFIG, FALLBACK_CONFIG and FPT_CONFIG; guard is fpt
// with the primary guard of the same module on the primary's cluster; a label may be given as
// label:VARIANT). --stream: "stream": true bodies, and the filter variants call the upstream's SSE
// path (a streaming request's first packet timed, the guard holding its 2xx until the first byte). Build the
// variants' .wasm files first (e.g. `asc assembly/main.ts --target release --outFile /tmp/a.wasm`).
import os from "node:os";
import { CHAT_PATH, FAIL_PATH, STREAM_PATH, FALLBACK_CONFIG, FPT_CONFIG, HAPPY_CONFIG, buildFloor, startFront, startUpstream, stopFleet } from "./fleet.mjs";
import { cpuRounds } from "./cpu_rounds.mjs";
import { chatBody, f, median } from "./stats.mjs";

function parse(argv) {
  const opts = { rounds: 5, seconds: 3, size: 1024, connections: 32, stream: false, variants: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") opts.rounds = Number(argv[++i]);
    else if (a === "--seconds") opts.seconds = Number(argv[++i]);
    else if (a === "--size") opts.size = Number(argv[++i]);
    else if (a === "--connections") opts.connections = Number(argv[++i]);
    else if (a === "--stream") opts.stream = true;
    else opts.variants.push(variant(a));
  }
  if (opts.variants.length === 0) throw new Error("no variants (see the head of bench/ab.mjs)");
  return opts;
}

function variant(spec) {
  const labelled = /^([^:=]+):(.*)$/.exec(spec);
  const label = labelled ? labelled[1] : spec;
  const body = labelled ? labelled[2] : spec;
  const [kind, wasm] = body.split("=");
  if (kind === "plain" || kind === "noop") return { label, kind, path: CHAT_PATH };
  if (kind === "floor") return { label, kind, path: FAIL_PATH };
  if (kind === "happy" && wasm) return { label, kind: "filter", wasm, config: HAPPY_CONFIG, path: CHAT_PATH };
  if (kind === "fallback" && wasm) return { label, kind: "filter", wasm, config: FALLBACK_CONFIG, path: FAIL_PATH };
  if (kind === "fpt" && wasm) return { label, kind: "filter", wasm, config: FPT_CONFIG, path: CHAT_PATH };
  if (kind === "guard" && wasm) return { label, kind: "filter", wasm, config: FPT_CONFIG, path: CHAT_PATH, guard: true };
  throw new Error(`unknown variant ${spec}`);
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const load0 = os.loadavg()[0].toFixed(1);
  const upstream = await startUpstream();
  const body = chatBody(opts.size, { stream: opts.stream });
  if (opts.stream) for (const v of opts.variants) if (v.path === CHAT_PATH) v.path = STREAM_PATH;
  for (const v of opts.variants) {
    if (v.kind === "floor") buildFloor();
    v.front = await startFront(upstream.port, v.kind, v.config ?? {}, v.wasm, { guard: !!v.guard });
  }
  await cpuRounds(opts.variants, { body, rounds: opts.rounds, seconds: opts.seconds, connections: opts.connections });
  console.log(`front CPU µs/request, ${opts.size} B bodies, median of ${opts.rounds} rounds of ${opts.seconds} s (load average ${load0} -> ${os.loadavg()[0].toFixed(1)})`);
  for (const v of opts.variants) {
    console.log(`  ${v.label.padEnd(28)} ${f(median(v.cpu), 1).padStart(7)}   rounds: ${v.cpu.map((c) => f(c, 1)).join(" ")}${v.errors ? `  (${v.errors} errors or non-2xx)` : ""}`);
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await stopFleet();
}
