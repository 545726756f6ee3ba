// A/B of streamed-mode variants by the front Envoy's CPU per request (BENCHMARKS.md "Third round on
// issue 13"): every variant's front Envoy behind the same upstreams, wrk -t1 -c32, rounds of a few
// seconds in a rotating order after a 1 s warm-up; median of the rounds. CPU per request, not req/s:
// the machine may be shared.
//
//   node bench/ab_streamed.mjs [--rounds 5] [--seconds 3] [--variants name,name,...] [--wasm name=path ...]
import { FAIL_PATH, startFront, startStreamedFront, startUpstream, stopFleet, FILTER_WASM_PATH } from "./fleet.mjs";
import { cleanupWrkFiles, ensureWrk } from "./wrk.mjs";
import { cpuRounds } from "./cpu_rounds.mjs";
import { chatBody, median } from "./stats.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const rounds = Number(opt("--rounds", "5"));
const seconds = Number(opt("--seconds", "3"));
const wasms = {};
args.forEach((a, i) => { if (a === "--wasm") { const [k, v] = args[i + 1].split("="); wasms[k] = v; } });

// Every fallback variant: the primary's cluster answers 500 (FAIL_PATH), the backup's is the
// always-200 upstream, so that a backup without `path` is answered 200 too.
const PASS = { backups: [{ service: "backup" }] };
const MODEL = { backups: [{ service: "backup", model: "qwen-plus" }] };
const PATH = { backups: [{ service: "backup", path: "/v1/chat/completions" }] };
const CRED = { backups: [{ service: "backup", headers: { authorization: "Bearer k" } }] };
const VARIANTS = {
  plain: { front: "plain", path: "/v1/chat/completions" },
  floor: { plugin: PASS, opts: { withModule: false }, path: FAIL_PATH },
  "lean pass-through": { plugin: PASS, opts: { primaryFilter: false }, path: FAIL_PATH },
  "lean model": { plugin: MODEL, opts: { primaryFilter: false }, path: FAIL_PATH },
  "lean path": { plugin: PATH, opts: { primaryFilter: false }, path: FAIL_PATH },
  "lean credential": { plugin: CRED, opts: { primaryFilter: false }, path: FAIL_PATH },
  "full pass-through": { plugin: PASS, opts: {}, path: FAIL_PATH },
  "full model": { plugin: MODEL, opts: {}, path: FAIL_PATH },
};
const names = (opt("--variants", null) ?? Object.keys(VARIANTS).join(",")).split(",");

ensureWrk();
try {
  const upstream = await startUpstream();
  const ok = await startUpstream({ alwaysOk: true });
  const list = [];
  for (const name of names) {
    const [base, wasmKey] = name.split("@");
    const v = VARIANTS[base];
    if (!v) throw new Error(`unknown variant ${base}`);
    const front = v.front === "plain" ? await startFront(upstream.port, "plain")
      : await startStreamedFront(upstream.port, v.plugin, { ...v.opts, backupPort: ok.port, wasmPath: wasmKey ? wasms[wasmKey] : FILTER_WASM_PATH });
    list.push({ name, front, path: v.path });
  }
  await cpuRounds(list, { body: chatBody(1024, {}), rounds, seconds });
  for (const s of list) if (s.errors) console.log(`  ${s.name}: ${s.errors} errors or non-2xx`);
  for (const s of list) console.log(`${s.name.padEnd(28)} ${median(s.cpu).toFixed(1).padStart(7)} µs/req  (${s.cpu.map((c) => c.toFixed(1)).join(" ")})`);
} finally {
  await stopFleet();
  cleanupWrkFiles();
}
