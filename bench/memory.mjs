// Memory per in-flight request: N requests with a B-byte body wait on a primary that never answers,
// through plain Envoy and through the filter; the filter's cost per request is the difference of the
// two Envoys' growth in resident memory, divided by N. Also the module's size.
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { FILTER_WASM_PATH, HAPPY_CONFIG, rssBytes } from "./fleet.mjs";
import { RTRACE_WASM, buildTraced, inFlightBytes } from "./host_calls.mjs";
import { bytes, chatBody, header, note, nowMs, sleep, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { startEnvoy } = require("../tests/e2e/support/envoy.js");
const { startMock } = require("../tests/e2e/support/mock_model.js");

const signed = (n) => (n < 0 ? `-${bytes(Math.round(-n))}` : `+${bytes(Math.round(n))}`);

const LOG = { logLevel: "warning", componentLogLevel: "wasm:warning" };

function openRequest(port, payload) {
  const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", agent: false,
    headers: { "content-type": "application/json", "content-length": String(payload.length) } });
  req.on("error", () => {});
  req.end(payload);
  return req;
}

async function waitFor(cond, ms) {
  const end = nowMs() + ms;
  while (!cond() && nowMs() < end) await sleep(20);
  return cond();
}

/** RSS growth of `envoy` while `n` requests of `payload` wait at `mock` (which hangs). */
async function growth(envoy, mock, n, payload) {
  // Warm-up: the VM, its first allocations and Envoy's per-connection state exist before the baseline.
  mock.reset();
  mock.behave({ status: 200, json: { ok: true } });
  for (let i = 0; i < 20; i++) {
    const req = openRequest(envoy.port, payload);
    await new Promise((resolve) => req.on("response", (res) => { res.resume(); res.on("end", resolve); }).on("error", resolve));
  }
  mock.reset();
  mock.behave({ hang: true });
  await sleep(300);
  const before = rssBytes(envoy.pid);
  const reqs = [];
  for (let i = 0; i < n; i++) reqs.push(openRequest(envoy.port, payload));
  const all = await waitFor(() => mock.requests.length >= n, 20000);
  await sleep(300);
  const after = rssBytes(envoy.pid);
  for (const r of reqs) r.destroy();
  mock.reset();
  return { delta: after - before, complete: all };
}

export async function benchMemory({ quick }) {
  header("Memory per in-flight request (a primary that never answers; resident memory of the front Envoy)");
  const cases = quick ? [[100 * 1024, 32]] : [[1024, 64], [100 * 1024, 64], [1024 * 1024, 16]];
  buildTraced();
  const rows = [];
  const results = [];
  for (const [size, n] of cases) {
    const payload = chatBody(size);
    const mock = await startMock("hanging-primary");
    const plain = await startEnvoy({ ...LOG, withFilter: false, clusters: { primary: mock.port, backup: mock.port } });
    const filter = await startEnvoy({ ...LOG, pluginConfig: HAPPY_CONFIG, clusters: { primary: mock.port, backup: mock.port } });
    try {
      const p = await growth(plain, mock, n, payload);
      const w = await growth(filter, mock, n, payload);
      const perRequest = (w.delta - p.delta) / n;
      const exact = inFlightBytes(RTRACE_WASM, HAPPY_CONFIG, size, n);
      results.push({ size, n, perRequest, exact });
      rows.push([bytes(size), String(n), bytes(exact), signed(exact - size), bytes(p.delta), bytes(w.delta), signed(perRequest - size),
        p.complete && w.complete ? "" : "(not every request arrived)"]);
    } finally {
      await Promise.allSettled([plain.stop(), filter.stop(), mock.stop()]);
    }
  }
  const markdown = table(["body", "in flight", "module heap per request", "minus the body", "plain Envoy RSS +", "with filter RSS +", "RSS difference per request - body", ""], rows);
  note("module heap per request: exact, the allocator's live blocks (headers included) in the release build with AssemblyScript's");
  note("allocation tracing, driven by the scripted host (host_calls.mjs). The RSS columns are the same in a real Envoy, but");
  note("Envoy's own buffers and V8's page handling move them by tens of KiB per request between runs: a cross-check only.");
  const size = fs.statSync(FILTER_WASM_PATH).size;
  note("");
  note(`build/ai_fallback.wasm: ${size} bytes (${bytes(size)})`);
  return { markdown, results, wasmBytes: size };
}
