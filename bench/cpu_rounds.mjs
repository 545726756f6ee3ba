// The A/B measurement both bench/ab.mjs and bench/ab_streamed.mjs run: every variant (its front
// Envoy already started) gets a 1 s warm-up, then `rounds` runs of wrk -t1 for `seconds` each, in a
// rotating order so that no variant always runs first; each run's front-Envoy CPU per request is kept.
import { cpuMs } from "./fleet.mjs";
import { runWrk } from "./wrk.mjs";

/**
 * `variants`: [{ front: { port, pid }, path }]. Each gets `cpu` (µs per request, one per round) and
 * `errors` (transport errors and non-2xx answers over the rounds).
 */
export async function cpuRounds(variants, { body, rounds, seconds, connections = 32 }) {
  for (const v of variants) {
    v.cpu = [];
    v.errors = 0;
    await runWrk({ port: v.front.port, urlPath: v.path, body, seconds: 1, connections });
  }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length];
      const cpu0 = cpuMs(v.front.pid);
      const w = await runWrk({ port: v.front.port, urlPath: v.path, body, seconds, connections });
      v.cpu.push(((cpuMs(v.front.pid) - cpu0) * 1000) / w.requests);
      v.errors += w.errors + w.non2xx;
    }
    process.stderr.write(".");
  }
  process.stderr.write("\n");
}
