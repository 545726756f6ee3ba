// How late a first-packet fallback fires: Envoy + the filter, a hanging primary mock and a quick SSE
// backup mock; the client's and the mocks' view of the lateness after the deadline T.
import { createRequire } from "node:module";
import { f, header, note, nowMs, summary, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { startEnvoy } = require("../tests/e2e/support/envoy.js");
const { startMock } = require("../tests/e2e/support/mock_model.js");
const { request } = require("../tests/e2e/support/client.js");

const FPT_VALUES_MS = [100, 250, 1000];
const FPT_WARMUP = 1;
const LOG_ARGS = { logLevel: "warning", componentLogLevel: "wasm:warning" };
const started = { envoys: [], mocks: [] };

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
async function stopOne(e) {
  const i = started.envoys.indexOf(e);
  if (i >= 0) started.envoys.splice(i, 1);
  await e.stop();
}

/** Stops whatever this section started (also after an error). */
export async function stopLateness() {
  await Promise.allSettled(started.envoys.map((e) => e.stop()));
  await Promise.allSettled(started.mocks.map((m) => m.stop()));
  started.envoys.length = 0;
  started.mocks.length = 0;
}

export async function benchFirstPacket({ n = 20 } = {}) {
  const FPT_N = n;
  header("First packet timeout lateness");
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
  const markdown = table(cols, late);
  note("");
  note("mock-measured timer lateness = backup received the replay - primary received the request - T");
  note("(Date.now() in the mocks: 1 ms resolution; excludes the client<->Envoy legs and the backup's answer):");
  table(cols, gaps);
  note("");
  note("Timer: one root tick every 10 ms (TICK_PERIOD_MS), started when a deadline is armed, so a deadline is");
  note("seen up to ~10 ms late (plus tick jitter). The backup's answer reaches the client only once it is complete");
  note("(dispatch_http_call buffers it), hence the 'whole answer' baseline rather than 'headers' is the one to add.");
  return { markdown };
}
