// Host calls per request, and the module's own time per request, without Envoy: build/ai_fallback.wasm
// driven in Node's V8 by a scripted host that answers every import the way Envoy does for one request
// (headers, a body, the primary's answer, a backup's answer) and counts the calls. The counts are
// exact and independent of machine load; the time is the wasm code alone (the scripted host does
// almost nothing), the part of the filter's cost that is not Envoy's work behind each host call.
// Not an end-to-end test: Envoy's own behaviour is measured by the throughput section.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { FILTER_WASM_PATH } from "./fleet.mjs";
import { chatBody, f, header, note, nowMs, table } from "./stats.mjs";

const OK = 0;
const NOT_FOUND = 1;
const WARN = 3; // LogLevel
const enc = new TextEncoder();
const dec = new TextDecoder();

function serializePairs(pairs) {
  const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + 8 * parts.length;
  for (const [k, v] of parts) size += k.length + v.length + 2;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, parts.length, true);
  let at = 4 + 8 * parts.length;
  parts.forEach(([k, v], i) => {
    view.setUint32(4 + 8 * i, k.length, true);
    view.setUint32(8 + 8 * i, v.length, true);
    out.set(k, at);
    at += k.length + 1;
    out.set(v, at);
    at += v.length + 1;
  });
  return out;
}

const EMPTY_MAP = serializePairs([]);

/** A header map as the scripted host keeps it: encoded once, so that the host's own work stays small. */
export function headerMap(pairs) {
  return { length: pairs.length, wire: serializePairs(pairs), values: new Map(pairs.map(([k, v]) => [k, enc.encode(v)])) };
}

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
// Built for the bench only (its tracing imports suit no proxy-wasm host), so kept out of build/.
export const RTRACE_WASM = path.join(os.tmpdir(), "ai-fallback-bench_rtrace.wasm");

/** The filter built as released, plus allocator tracing (AssemblyScript's rtrace hooks). */
export function buildTraced() {
  const asc = path.join(ROOT, "node_modules", ".bin", "asc");
  const r = spawnSync(asc, ["assembly/main.ts", "--target", "release", "--use", "ASC_RTRACE=1", "--outFile", RTRACE_WASM, "--textFile", ""],
    // asc prints the text form to stdout (--textFile ""): over spawnSync's default 1 MiB for this module.
    { cwd: ROOT, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`building ${RTRACE_WASM} failed:\n${r.error ?? ""}${r.stderr}`);
}

/**
 * A scripted host around one instance of the module. `roots`: the root contexts to configure, each
 * { id, rootId (the plugin's root_id, "" = the dispatch filter), config }; by default one dispatch root
 * (id 1) with `pluginConfig`. `properties`: extra property answers by dotted path (bytes).
 */
export function makeHost(wasmBytes, pluginConfig, { roots = [{ id: 1, rootId: "", config: pluginConfig }], properties = {} } = {}) {
  const counts = new Map();
  const count = (name) => counts.set(name, (counts.get(name) ?? 0) + 1);
  const state = { maps: {}, buffers: {}, calls: [], replies: [], nextToken: 1, logLevel: WARN, rootId: "", properties, filterState: {}, shared: new Map() };
  let x;
  const mem = () => new DataView(x.memory.buffer);
  const bytesAt = (ptr, len) => new Uint8Array(x.memory.buffer, ptr, len);
  const give = (bytes, retPtr, retSize) => {
    count("malloc (host -> module)");
    const ptr = x.malloc(bytes.length);
    bytesAt(ptr, bytes.length).set(bytes);
    mem().setUint32(retPtr, ptr, true);
    mem().setUint32(retSize, bytes.length, true);
    return OK;
  };
  const wrap = (name, fn) => (...args) => {
    count(name);
    return fn(...args);
  };
  const env = {
    proxy_log: wrap("proxy_log", () => OK),
    // As the bench's front Envoys run (log level warning): info lines are dropped.
    proxy_get_log_level: wrap("proxy_get_log_level", (ret) => {
      mem().setUint32(ret, state.logLevel, true);
      return OK;
    }),
    proxy_get_current_time_nanoseconds: wrap("proxy_get_current_time_nanoseconds", (ret) => {
      mem().setBigUint64(ret, BigInt(Date.now()) * 1000000n, true);
      return OK;
    }),
    proxy_set_tick_period_milliseconds: wrap("proxy_set_tick_period_milliseconds", () => OK),
    proxy_get_buffer_bytes: wrap("proxy_get_buffer_bytes", (type, start, length, retPtr, retSize) => {
      const b = state.buffers[type];
      if (!b) return NOT_FOUND;
      return give(b.subarray(start, start + length), retPtr, retSize);
    }),
    proxy_get_header_map_pairs: wrap("proxy_get_header_map_pairs", (type, retPtr, retSize) => give(state.maps[type]?.wire ?? EMPTY_MAP, retPtr, retSize)),
    proxy_get_header_map_value: wrap("proxy_get_header_map_value", (type, keyPtr, keySize, retPtr, retSize) => {
      const value = state.maps[type]?.values.get(dec.decode(bytesAt(keyPtr, keySize)));
      return value ? give(value, retPtr, retSize) : NOT_FOUND;
    }),
    proxy_replace_header_map_value: wrap("proxy_replace_header_map_value", () => OK),
    proxy_get_property: wrap("proxy_get_property", (pathPtr, pathSize, retPtr, retSize) => {
      const path = dec.decode(bytesAt(pathPtr, pathSize)).split("\0").join(".");
      if (path === "plugin_root_id") return state.rootId ? give(enc.encode(state.rootId), retPtr, retSize) : NOT_FOUND;
      if (state.filterState[path]) return give(state.filterState[path], retPtr, retSize);
      if (state.properties[path]) return give(state.properties[path], retPtr, retSize);
      if (path === "response.code_details") return give(enc.encode("via_upstream"), retPtr, retSize);
      // As in Envoy with no filter behind this one: the router picked the upstream at the headers.
      if (path === "upstream.address") return give(enc.encode("127.0.0.1:8000"), retPtr, retSize);
      // As in Envoy once the primary's whole answer came (the bench's primary answers at once): a duration in ns.
      if (path === "response.backend_latency") return give(new Uint8Array(new BigUint64Array([1000000n]).buffer), retPtr, retSize);
      return NOT_FOUND;
    }),
    // As Envoy keeps it: the request's filter state, which its later reads (and other filters) see.
    proxy_set_property: wrap("proxy_set_property", (pathPtr, pathSize, valuePtr, valueSize) => {
      state.filterState[dec.decode(bytesAt(pathPtr, pathSize)).split("\0").join(".")] = bytesAt(valuePtr, valueSize).slice();
      return OK;
    }),
    proxy_send_local_response: wrap("proxy_send_local_response", (status) => {
      state.replies.push(status);
      return OK;
    }),
    proxy_http_call: wrap("proxy_http_call", (...args) => {
      const token = state.nextToken++;
      mem().setUint32(args[args.length - 1], token, true);
      state.calls.push(token);
      return OK;
    }),
    proxy_set_effective_context: wrap("proxy_set_effective_context", () => OK),
    proxy_continue_stream: wrap("proxy_continue_stream", () => OK),
    proxy_define_metric: wrap("proxy_define_metric", (type, namePtr, nameSize, retId) => {
      mem().setUint32(retId, 1 + (counts.get("proxy_define_metric") ?? 0), true);
      return OK;
    }),
    proxy_increment_metric: wrap("proxy_increment_metric", () => OK),
    // Shared data (the cooldown table) and foreign functions: as in Envoy, a key with no value is NOT_FOUND.
    proxy_get_shared_data: wrap("proxy_get_shared_data", (keyPtr, keySize, retPtr, retSize, retCas) => {
      const entry = state.shared.get(dec.decode(bytesAt(keyPtr, keySize)));
      if (!entry) return NOT_FOUND;
      mem().setUint32(retCas, entry.cas, true);
      return give(entry.value, retPtr, retSize);
    }),
    proxy_set_shared_data: wrap("proxy_set_shared_data", (keyPtr, keySize, valuePtr, valueSize, cas) => {
      const key = dec.decode(bytesAt(keyPtr, keySize));
      const entry = state.shared.get(key);
      if (cas !== 0 && entry && entry.cas !== cas) return 8; // CAS_MISMATCH
      state.shared.set(key, { value: bytesAt(valuePtr, valueSize).slice(), cas: (entry?.cas ?? 0) + 1 });
      return OK;
    }),
    proxy_call_foreign_function: wrap("proxy_call_foreign_function", () => OK),
  };
  const wasi = {
    clock_time_get: wrap("clock_time_get", (id, precision, ret) => {
      mem().setBigUint64(ret, process.hrtime.bigint(), true);
      return 0;
    }),
  };
  // A module built with --use ASC_RTRACE=1 reports every allocator block: `live` counts their bytes.
  const heapBlock = (block) => (mem().getUint32(block, true) & ~3) + 4;
  const rtrace = {
    oninit: () => {},
    onalloc: (block) => {
      state.allocations++;
      state.live += heapBlock(block);
    },
    onresize: (block, oldSize) => (state.live += heapBlock(block) - oldSize),
    onmove: () => {},
    onfree: (block) => (state.live -= heapBlock(block)),
    onvisit: () => 1,
    oncollect: () => {},
    onstore: (ptr) => ptr,
  };
  state.live = 0;
  state.allocations = 0;
  const module = new WebAssembly.Module(wasmBytes);
  const imports = { env: { ...env }, wasi_snapshot_preview1: wasi, rtrace };
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    if (!(imp.name in imports[imp.module])) imports[imp.module][imp.name] = wrap(imp.name, () => OK);
  }
  x = new WebAssembly.Instance(module, imports).exports;
  x._initialize();
  for (const root of roots) {
    const config = enc.encode(JSON.stringify(root.config));
    state.buffers[7] = config; // PluginConfiguration
    state.rootId = root.rootId;
    x.proxy_on_context_create(root.id, 0);
    x.proxy_on_vm_start(root.id, 0);
    if (!x.proxy_on_configure(root.id, config.length)) throw new Error(`the module refused the configuration ${JSON.stringify(root.config)}`);
  }
  state.rootId = "";
  counts.clear();
  return { x, state, counts };
}

// ABI numbers: map types and buffer types (assembly/abi/enums.ts).
const REQUEST_HEADERS = 0;
const RESPONSE_HEADERS = 2;
const CALL_RESPONSE_HEADERS = 6;
const REQUEST_BODY = 0;
const RESPONSE_BODY = 1;
const CALL_RESPONSE_BODY = 4;

export const ANSWER = enc.encode('{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}');

/** One request through the module as Envoy drives it; `fallback`: the primary answers 500, the backup 200. */
export function setUp(h, body, fallback) {
  const { state } = h;
  state.maps[REQUEST_HEADERS] = headerMap([[":authority", "gateway.example.com"], [":path", "/v1/chat/completions"], [":method", "POST"],
    [":scheme", "http"], ["user-agent", "wrk"], ["content-type", "application/json"], ["content-length", String(body.length)],
    ["x-forwarded-proto", "http"], ["x-request-id", "5c1e6a0e-6b5e-4c4f-9b0b-1d2e3f405162"]]);
  state.buffers[REQUEST_BODY] = body;
  state.maps[RESPONSE_HEADERS] = headerMap([[":status", fallback ? "500" : "200"], ["content-type", "application/json"], ["content-length", String(ANSWER.length)],
    ["x-envoy-upstream-service-time", "1"], ["date", "Sat, 28 Nov 2026 05:00:00 GMT"], ["server", "envoy"]]);
  state.buffers[RESPONSE_BODY] = ANSWER;
  state.maps[CALL_RESPONSE_HEADERS] = headerMap([[":status", "200"], ["content-type", "application/json"], ["content-length", String(ANSWER.length)]]);
  state.buffers[CALL_RESPONSE_BODY] = ANSWER;
}

export function oneRequest(h, id, body, fallback) {
  const { x, state } = h;
  state.filterState = {}; // a new request
  x.proxy_on_context_create(id, 1);
  x.proxy_on_request_headers(id, state.maps[REQUEST_HEADERS].length, 0);
  // Envoy's HTTP/1 codec hands a body over as its data, then an empty chunk that ends the stream.
  x.proxy_on_request_body(id, body.length, 0);
  x.proxy_on_request_body(id, 0, 1);
  x.proxy_on_response_headers(id, state.maps[RESPONSE_HEADERS].length, 0);
  if (fallback) {
    const token = state.calls.pop();
    if (token === undefined) throw new Error("the module dispatched no backup call");
    const swapsBefore = h.counts.get("proxy_set_header_map_pairs") ?? 0;
    x.proxy_on_http_call_response(1, token, 3, ANSWER.length, 0);
    // The answer goes out as a local reply, or in place of the held primary response (its headers
    // swapped now, its body when Envoy passes the held body on).
    const replied = state.replies.pop() === 200;
    if (!replied) x.proxy_on_response_body(id, ANSWER.length, 1);
    if (!replied && (h.counts.get("proxy_set_header_map_pairs") ?? 0) === swapsBefore) {
      throw new Error("the module did not serve the backup's answer");
    }
  } else {
    x.proxy_on_response_body(id, ANSWER.length, 1);
  }
  // Envoy 1.40 logs a stream, then destroys its filters (proxy_on_done, if exported, then proxy_on_delete).
  x.proxy_on_log(id);
  x.proxy_on_done?.(id);
  x.proxy_on_delete(id);
}

export function benchHostCalls({ quick, wasmPath = FILTER_WASM_PATH, configs }) {
  header("Host calls per request and the module's own time (build/ai_fallback.wasm in Node's V8, scripted host)");
  const wasm = fs.readFileSync(wasmPath);
  buildTraced();
  const traced = fs.readFileSync(RTRACE_WASM);
  // Blocks the allocator hands out for one request on a busy worker (the rtrace build of the same source).
  const allocationsPerRequest = (config, body, fallback) => {
    const h = makeHost(traced, config);
    setUp(h, body, fallback);
    let id = 2;
    h.x.proxy_on_context_create(id, 1);
    h.x.proxy_on_request_headers(id++, h.state.maps[REQUEST_HEADERS].length, 0);
    for (let i = 0; i < 50; i++) oneRequest(h, id++, body, fallback);
    const before = h.state.allocations;
    oneRequest(h, id++, body, fallback);
    return h.state.allocations - before;
  };
  const cases = [
    ["happy path, 1 KB", configs.happy, 1024, false],
    ["happy path, 100 KB", configs.happy, 100 * 1024, false],
    ["happy path, firstPacketTimeout on, 100 KB", configs.fpt, 100 * 1024, false],
    ["fallback 500 -> 200, 1 KB", configs.fallback, 1024, true],
  ];
  // The cooldown on, nothing cooling: a healthy request must cost what it costs without it.
  if (configs.cooldown) cases.splice(1, 0, ["happy path, cooldown on, 1 KB", configs.cooldown, 1024, false]);
  const names = new Set();
  const results = [];
  for (const [label, config, size, fallback] of cases) {
    const h = makeHost(wasm, config);
    const body = chatBody(size);
    setUp(h, body, fallback);
    let id = 2;
    for (let i = 0; i < 200; i++) oneRequest(h, id++, body, fallback); // warm-up (V8 tiers up)
    // Alone on an idle worker, the in-flight gauges move 0 -> 1 -> 0 (host calls each way).
    h.counts.clear();
    oneRequest(h, id++, body, fallback);
    const idleTotal = [...h.counts.values()].reduce((a, b) => a + b, 0);
    // On a busy worker (here: one other request waiting for its answer), as under load.
    h.x.proxy_on_context_create(id, 1);
    h.x.proxy_on_request_headers(id++, h.state.maps[REQUEST_HEADERS].length, 0);
    oneRequest(h, id++, body, fallback);
    h.counts.clear();
    oneRequest(h, id++, body, fallback);
    const perRequest = new Map(h.counts);
    for (const k of perRequest.keys()) names.add(k);
    const n = quick ? 500 : 5000;
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t = nowMs();
      const batch = Math.max(1, Math.round(n / Math.max(1, size / 4096)));
      for (let i = 0; i < batch; i++) oneRequest(h, id++, body, fallback);
      best = Math.min(best, ((nowMs() - t) * 1000) / batch);
    }
    results.push({ label, perRequest, idleTotal, usPerRequest: best, allocations: allocationsPerRequest(config, body, fallback) });
  }
  const cols = [...names].sort();
  const rows = cols.map((name) => [name, ...results.map((r) => String(r.perRequest.get(name) ?? 0))]);
  rows.push(["total host calls", ...results.map((r) => String([...r.perRequest.values()].reduce((a, b) => a + b, 0)))]);
  rows.push(["total host calls, alone on an idle worker", ...results.map((r) => String(r.idleTotal))]);
  rows.push(["module + scripted host, µs/request (best of 5)", ...results.map((r) => f(r.usPerRequest, 1))]);
  rows.push(["allocations in the module's heap per request", ...results.map((r) => String(r.allocations))]);
  const markdown = table(["per request", ...results.map((r) => r.label)], rows);
  note("Counted with one other request in flight (a busy worker); alone, the in-flight gauges add their updates.");
  note("Every proxy_on_* callback Envoy makes (context create, request headers, request body twice, response headers, response body,");
  note("log, delete: 8 on the happy path, the module exports no proxy_on_done) comes on top;");
  note("the empty module gets the same callbacks. malloc (host -> module) is the host allocating the memory it returns.");
  note("The scripted host answers proxy_get_log_level with warning, as the bench's Envoys run; at Envoy's default (info) a fallback");
  note("also writes its decision line (one proxy_log more).");
  return { markdown, results };
}

/**
 * Bytes the module's allocator holds per in-flight request, exactly: `n` requests of `size` bytes
 * are opened (headers and body, no answer yet) in a build with allocator tracing, and the growth of
 * its live blocks (block headers included, uncollected garbage included) is divided by `n`.
 */
export function inFlightBytes(rtraceWasmPath, config, size, n) {
  const h = makeHost(fs.readFileSync(rtraceWasmPath), config);
  const body = chatBody(size);
  setUp(h, body, false);
  let id = 2;
  for (let i = 0; i < 100; i++) oneRequest(h, id++, body, false);
  const before = h.state.live;
  const { x } = h;
  for (let i = 0; i < n; i++, id++) {
    x.proxy_on_context_create(id, 1);
    x.proxy_on_request_headers(id, 9, 0);
    x.proxy_on_request_body(id, body.length, 0);
    x.proxy_on_request_body(id, 0, 1);
  }
  return (h.state.live - before) / n;
}
