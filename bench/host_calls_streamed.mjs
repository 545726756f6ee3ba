// Host calls per request of the streamed mode's upstream filters (assembly/upstream/upstream_stream.ts),
// counted as bench/host_calls.mjs counts the dispatch filter's: build/ai_fallback.wasm in Node's V8,
// a scripted host answering as Envoy does for one fallback (the primary's attempt answered 500, the
// router retrying on the backup's cluster, answered 200), with the roots the generator configures
// (scripts/streamed_config_lib.cjs: one per cluster, in one VM). Exact and load-independent.
//
//   node bench/host_calls_streamed.mjs [--wasm build/ai_fallback.wasm]
import fs from "node:fs";
import { createRequire } from "node:module";
import { ANSWER, headerMap, makeHost } from "./host_calls.mjs";
import { FILTER_WASM_PATH, STREAMED_CONFIG } from "./fleet.mjs";
import { chatBody, f, header, note, nowMs, table } from "./stats.mjs";

const require = createRequire(import.meta.url);
const { streamedBootstrap } = require("../scripts/streamed_config_lib.cjs");

const REQUEST_HEADERS = 0;
const RESPONSE_HEADERS = 2;
const REQUEST_BODY = 0;
const RESPONSE_BODY = 1;
const PRIMARY_ROOT = 1;
const BACKUP_ROOT = 2;
const u64 = (n) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

/** The upstream filters' configurations the generator writes for `plugin`, by cluster ("primary", "backup"). */
function upstreamConfigs(plugin, primaryFilter) {
  const boot = streamedBootstrap(plugin, { primary: "primary", addresses: { primary: "127.0.0.1:1", backup: "127.0.0.1:2" } },
    { wasmPath: "/x.wasm", listenAddress: "127.0.0.1", listenPort: 3, adminPort: 4, primaryFilter });
  const out = {};
  for (const c of boot.static_resources.clusters) {
    const filters = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters ?? [];
    const wasm = filters.find((x) => x.name === "envoy.filters.http.wasm");
    if (wasm) out[c.name] = JSON.parse(wasm.typed_config.config.configuration.value);
  }
  return out;
}

/** A VM with the primary's (unless lean) and the backup's upstream roots, as one Envoy worker has them. */
function streamedHost(wasm, plugin, primaryFilter) {
  const configs = upstreamConfigs(plugin, primaryFilter);
  const roots = [];
  if (configs.primary) roots.push({ id: PRIMARY_ROOT, rootId: "ai-fallback-upstream", config: configs.primary });
  roots.push({ id: BACKUP_ROOT, rootId: "ai-fallback-upstream", config: configs.backup });
  const h = makeHost(wasm, null, { roots, properties: { "response.flags": u64(0) } });
  h.primaryFilter = !!configs.primary;
  return h;
}

/** The maps a fallback's attempts see, encoded once (the scripted host's own work stays small). */
function fallbackMaps(body) {
  return {
    request: headerMap([[":authority", "gateway.example.com"], [":path", "/v1/fail/chat/completions"], [":method", "POST"],
      [":scheme", "http"], ["user-agent", "wrk"], ["content-type", "application/json"], ["content-length", String(body.length)],
      ["x-forwarded-proto", "http"], ["x-request-id", "5c1e6a0e-6b5e-4c4f-9b0b-1d2e3f405162"], ["x-envoy-expected-rq-timeout-ms", "15000"]]),
    failed: headerMap([[":status", "500"], ["content-type", "application/json"], ["content-length", "60"]]),
    answered: headerMap([[":status", "200"], ["content-type", "application/json"], ["content-length", String(ANSWER.length)],
      ["x-envoy-upstream-service-time", "1"], ["date", "Sat, 28 Nov 2026 05:00:00 GMT"], ["server", "envoy"]]),
  };
}

/** The happy path: the primary's attempt answered 200 (only the primary's filter takes part). */
function oneHappy(h, id, body, maps) {
  const { x, state } = h;
  state.filterState = {}; // a new request
  state.maps[REQUEST_HEADERS] = maps.request;
  state.buffers[REQUEST_BODY] = body;
  x.proxy_on_context_create(id, PRIMARY_ROOT);
  x.proxy_on_request_headers(id, maps.request.length, 0);
  x.proxy_on_request_body(id, body.length, 0);
  x.proxy_on_request_body(id, 0, 1);
  state.maps[RESPONSE_HEADERS] = maps.answered;
  state.buffers[RESPONSE_BODY] = ANSWER;
  x.proxy_on_response_headers(id, maps.answered.length, 0);
  x.proxy_on_response_body(id, ANSWER.length, 1);
  x.proxy_on_log(id);
  x.proxy_on_delete(id);
}

/** One fallback: the primary's attempt (if it has a filter) answered 500, then the backup's answered 200. */
function oneFallback(h, id, body, maps) {
  const { x, state } = h;
  state.filterState = {}; // a new request
  state.maps[REQUEST_HEADERS] = maps.request;
  state.buffers[REQUEST_BODY] = body;
  if (h.primaryFilter) {
    x.proxy_on_context_create(id, PRIMARY_ROOT);
    x.proxy_on_request_headers(id, maps.request.length, 0);
    x.proxy_on_request_body(id, body.length, 0);
    x.proxy_on_request_body(id, 0, 1);
    state.maps[RESPONSE_HEADERS] = maps.failed;
    x.proxy_on_response_headers(id, maps.failed.length, 0);
    x.proxy_on_log(id);
    x.proxy_on_delete(id);
  }
  const b = id + 1;
  x.proxy_on_context_create(b, BACKUP_ROOT);
  x.proxy_on_request_headers(b, maps.request.length, 0);
  // The router replays the buffered body to the retry in one piece.
  x.proxy_on_request_body(b, body.length, 1);
  state.maps[RESPONSE_HEADERS] = maps.answered;
  state.buffers[RESPONSE_BODY] = ANSWER;
  x.proxy_on_response_headers(b, maps.answered.length, 0);
  x.proxy_on_response_body(b, ANSWER.length, 1);
  x.proxy_on_log(b);
  x.proxy_on_delete(b);
}

const PASS = { backups: [{ service: "backup" }] };

export function benchStreamedHostCalls({ quick = false, wasmPath = FILTER_WASM_PATH } = {}) {
  header("Host calls per request, streamed mode's upstream filters (scripted host)");
  const wasm = fs.readFileSync(wasmPath);
  const cases = [
    ["happy path (the primary's filter)", STREAMED_CONFIG, true, oneHappy],
    ["fallback, model + path (the bench's)", STREAMED_CONFIG, true, oneFallback],
    ["lean fallback, model + path", STREAMED_CONFIG, false, oneFallback],
    ["lean fallback, no override", PASS, false, oneFallback],
  ];
  const body = chatBody(1024);
  const maps = fallbackMaps(body);
  const names = new Set();
  const results = [];
  for (const [label, plugin, primaryFilter, one] of cases) {
    const h = streamedHost(wasm, plugin, primaryFilter);
    let id = 10;
    for (let i = 0; i < 200; i++, id += 2) one(h, id, body, maps);
    h.counts.clear();
    one(h, id, body, maps);
    id += 2;
    const perRequest = new Map(h.counts);
    for (const k of perRequest.keys()) names.add(k);
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const n = quick ? 500 : 5000;
      const t = nowMs();
      for (let i = 0; i < n; i++, id += 2) one(h, id, body, maps);
      best = Math.min(best, ((nowMs() - t) * 1000) / n);
    }
    results.push({ label, perRequest, usPerRequest: best });
  }
  const cols = [...names].sort();
  const rows = cols.map((name) => [name, ...results.map((r) => String(r.perRequest.get(name) ?? 0))]);
  rows.push(["total host calls", ...results.map((r) => String([...r.perRequest.values()].reduce((a, b) => a + b, 0)))]);
  rows.push(["module + scripted host, µs/request (best of 5)", ...results.map((r) => f(r.usPerRequest, 1))]);
  const markdown = table(["per request, 1 KB", ...results.map((r) => r.label)], rows);
  note("Both attempts' upstream filters (the primary's only in the full mode); Envoy's proxy_on_* callbacks come on top.");
  return { markdown, results };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf("--wasm");
  benchStreamedHostCalls({ wasmPath: i > 0 ? process.argv[i + 1] : FILTER_WASM_PATH });
}
