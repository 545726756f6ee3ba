// The built filter module suits upstream Envoy: ABI 0.2.1, only env.proxy_* (or WASI) imports,
// the exports the host looks for, and no SIMD instructions (so V8, WAMR and Wasmtime all load it).
const fs = require("node:fs");
const path = require("node:path");

const WASM = path.join(__dirname, "..", "..", "build", "ai_fallback.wasm");
const bytes = fs.readFileSync(WASM);
const mod = new WebAssembly.Module(bytes);

describe("filter module", () => {
  test("imports nothing but proxy-wasm host functions", () => {
    const imports = WebAssembly.Module.imports(mod);
    expect(imports.length).toBeGreaterThan(0);
    for (const i of imports) {
      expect([i.module, i.name.startsWith("proxy_")]).toEqual(["env", true]);
    }
    // ABI 0.1.0-only functions would not resolve in Envoy's 0.2.1 host.
    const names = imports.map((i) => i.name);
    for (const old of ["proxy_get_configuration", "proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache"]) {
      expect(names).not.toContain(old);
    }
  });

  test("exports the ABI version, malloc, _initialize and the callbacks", () => {
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const name of ["proxy_abi_version_0_2_1", "malloc", "_initialize", "memory", "proxy_on_context_create",
      "proxy_on_configure", "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers",
      "proxy_on_response_body", "proxy_on_http_call_response", "proxy_on_tick", "proxy_on_done", "proxy_on_delete"]) {
      expect(exports).toContain(name);
    }
    expect(exports.filter((e) => e.startsWith("proxy_abi_version"))).toEqual(["proxy_abi_version_0_2_1"]);
  });

  test("uses no SIMD instructions", () => {
    // Compiling with SIMD disabled must succeed: the module validates without the feature.
    expect(WebAssembly.validate(bytes)).toBe(true);
    // The SIMD opcode prefix 0xfd followed by a v128 type (0x7b) in any local/type declaration is absent.
    const wat = path.join(__dirname, "..", "..", "build", "ai_fallback.wat");
    const text = fs.readFileSync(wat, "utf8");
    expect(text).not.toMatch(/\bv128\b|\bi8x16\b|\bi32x4\b|\bf32x4\b|\bi64x2\b/);
  });
});
