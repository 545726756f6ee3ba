// The built filter module suits upstream Envoy and Higress: the ABI version each host picks from the
// export order, only env.proxy_* imports and WASI's clock_time_get, the exports the hosts look for,
// and no SIMD instructions (so V8, WAMR and Wasmtime all load it).
const fs = require("node:fs");
const path = require("node:path");

const WASM = path.join(__dirname, "..", "..", "..", "build", "ai_fallback.wasm");
const bytes = fs.readFileSync(WASM);
const mod = new WebAssembly.Module(bytes);

function readVarUint(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at.pos++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) == 0) return value;
    shift += 7;
  }
}

/** The module's function exports in export-section order, read from the bytes as a host does. */
function functionExportsInOrder(buf) {
  const at = { pos: 8 };
  while (at.pos < buf.length) {
    const section = buf[at.pos++];
    const size = readVarUint(buf, at);
    if (section != 7) {
      at.pos += size;
      continue;
    }
    const names = [];
    const count = readVarUint(buf, at);
    for (let i = 0; i < count; i++) {
      const length = readVarUint(buf, at);
      const name = buf.subarray(at.pos, at.pos + length).toString("utf8");
      at.pos += length;
      const kind = buf[at.pos++];
      readVarUint(buf, at);
      if (kind == 0) names.push(name);
    }
    return names;
  }
  return [];
}

/** A host's choice: the first export whose name it knows (proxy-wasm-cpp-host getAbiVersion). */
function abiChosenBy(knownNames, exportNames) {
  return exportNames.find((name) => knownNames.includes(name));
}
// Upstream Envoy's host (proxy-wasm/proxy-wasm-cpp-host src/bytecode_util.cc) knows these three.
const UPSTREAM_ABIS = ["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0", "proxy_abi_version_0_2_1"];
// Higress's fork (higress-group/proxy-wasm-cpp-host src/bytecode_util.cc) knows one more.
const HIGRESS_ABIS = UPSTREAM_ABIS.concat(["proxy_abi_version_0_2_100"]);

describe("filter module", () => {
  test("imports nothing but proxy-wasm host functions and WASI's clock_time_get (the monotonic clock)", () => {
    const imports = WebAssembly.Module.imports(mod);
    expect(imports.length).toBeGreaterThan(0);
    const wasi = imports.filter((i) => i.module !== "env");
    expect(wasi.map((i) => `${i.module}.${i.name}`)).toEqual(["wasi_snapshot_preview1.clock_time_get"]);
    for (const i of imports.filter((i) => i.module === "env")) {
      expect(i.name.startsWith("proxy_")).toBe(true);
    }
    // ABI 0.1.0-only functions would not resolve in Envoy's 0.2.1 host.
    const names = imports.map((i) => i.name);
    for (const old of ["proxy_get_configuration", "proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache"]) {
      expect(names).not.toContain(old);
    }
  });

  test("exports the ABI version, malloc, _initialize and the callbacks", () => {
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const name of ["proxy_abi_version_0_2_1", "malloc", "proxy_on_memory_allocate", "_initialize", "memory", "proxy_on_context_create",
      "proxy_on_configure", "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers",
      "proxy_on_response_body", "proxy_on_http_call_response", "proxy_on_tick", "proxy_on_log", "proxy_on_delete"]) {
      expect(exports).toContain(name);
    }
  });

  test("exports no proxy_on_done: Envoy calls proxy_on_delete right after it, and each export costs every request a V8 entry", () => {
    // Streams end at proxy_on_log or proxy_on_delete (abi/exports.ts); the e2e tests of "the client goes
    // away" and "nothing outlives its stream" check that they still do.
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    expect(exports).not.toContain("proxy_on_done");
  });

  test("Higress's host picks ABI 0.2.100 (header StopIteration honoured), upstream Envoy's picks 0.2.1", () => {
    const names = functionExportsInOrder(bytes);
    expect(names.filter((e) => e.startsWith("proxy_abi_version"))).toEqual(
      ["proxy_abi_version_0_2_100", "proxy_abi_version_0_2_1"]);
    expect(abiChosenBy(HIGRESS_ABIS, names)).toBe("proxy_abi_version_0_2_100");
    expect(abiChosenBy(UPSTREAM_ABIS, names)).toBe("proxy_abi_version_0_2_1");
    // The section reader agrees with V8's view of the same module.
    expect(names).toEqual(WebAssembly.Module.exports(mod).filter((e) => e.kind == "function").map((e) => e.name));
  });

  test("imports only what Higress's host gives a 0.2.100 module", () => {
    // higress-group/proxy-wasm-cpp-host: include/proxy-wasm/exports.h FOR_ALL_HOST_FUNCTIONS and
    // FOR_ALL_WASI_FUNCTIONS (registered for every ABI), plus what src/wasm.cc registerCallbacks adds for
    // 0_2_1 and 0_2_100 alike. Not for 0.2.100: get_configuration, continue_request/response, clear_route_cache.
    const hostFunctions = ["log", "get_status", "set_property", "get_property", "send_local_response",
      "get_shared_data", "set_shared_data", "register_shared_queue", "resolve_shared_queue", "dequeue_shared_queue",
      "enqueue_shared_queue", "get_header_map_value", "add_header_map_value", "replace_header_map_value",
      "remove_header_map_value", "get_header_map_pairs", "set_header_map_pairs", "get_header_map_size",
      "get_buffer_status", "get_buffer_bytes", "set_buffer_bytes", "http_call", "grpc_call", "grpc_stream",
      "grpc_close", "grpc_cancel", "grpc_send", "set_tick_period_milliseconds", "get_current_time_nanoseconds",
      "define_metric", "increment_metric", "record_metric", "get_metric", "set_effective_context", "done",
      "call_foreign_function", "redis_init", "redis_call", "get_upstream_hosts", "inject_encoded_data_to_filter_chain",
      "set_upstream_override_host", "continue_stream", "close_stream", "get_log_level"].map((f) => "env.proxy_" + f);
    const wasi = ["fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get", "environ_get", "environ_sizes_get",
      "args_get", "args_sizes_get", "clock_time_get", "clock_res_get", "random_get", "sched_yield", "poll_oneoff",
      "proc_exit"].map((f) => "wasi_snapshot_preview1." + f);
    for (const i of WebAssembly.Module.imports(mod)) {
      expect([...hostFunctions, ...wasi]).toContain(i.module + "." + i.name);
    }
  });

  test("uses no SIMD instructions", () => {
    // Compiling with SIMD disabled must succeed: the module validates without the feature.
    expect(WebAssembly.validate(bytes)).toBe(true);
    // The SIMD opcode prefix 0xfd followed by a v128 type (0x7b) in any local/type declaration is absent.
    const wat = path.join(__dirname, "..", "..", "..", "build", "ai_fallback.wat");
    const text = fs.readFileSync(wat, "utf8");
    expect(text).not.toMatch(/\bv128\b|\bi8x16\b|\bi32x4\b|\bf32x4\b|\bi64x2\b/);
  });
});

describe("filter module's context registry, driven as a host drives it", () => {
  /** The module with every host function answering Ok (0) and no property found: the dispatch role. */
  function instantiate() {
    const logs = [];
    let memory;
    const env = {};
    for (const i of WebAssembly.Module.imports(mod)) {
      if (i.module !== "env") continue;
      env[i.name] = () => 0;
    }
    env.proxy_get_property = () => 1; // NotFound
    env.proxy_log = (level, ptr, len) => { logs.push(Buffer.from(memory.buffer, ptr, len).toString("utf8")); return 0; };
    const instance = new WebAssembly.Instance(mod, { env, wasi_snapshot_preview1: { clock_time_get: () => 0 } });
    memory = instance.exports.memory;
    instance.exports._initialize();
    return { x: instance.exports, logs };
  }

  test("proxy_on_log after proxy_on_delete (HTTP/3 deferred logging), twice, or for an id never created is harmless", () => {
    const { x, logs } = instantiate();
    x.proxy_on_context_create(1, 0);
    x.proxy_on_context_create(2, 1);
    x.proxy_on_request_headers(2, 0, 1);
    x.proxy_on_delete(2);
    // Envoy's HTTP/3 codec may log a stream after its filters were destroyed: the context is gone.
    expect(() => x.proxy_on_log(2)).not.toThrow();
    expect(() => x.proxy_on_log(2)).not.toThrow();
    expect(() => x.proxy_on_log(99)).not.toThrow();
    expect(() => x.proxy_on_delete(2)).not.toThrow();
    // A context created only to log ends at its log, once.
    x.proxy_on_context_create(3, 1);
    expect(() => x.proxy_on_log(3)).not.toThrow();
    expect(() => x.proxy_on_delete(3)).not.toThrow();
    // The VM still works: a new stream on the same root.
    x.proxy_on_context_create(4, 1);
    expect(x.proxy_on_request_headers(4, 0, 1)).toBe(0);
    expect(logs.filter((l) => l.startsWith("abort"))).toEqual([]);
  });
});
