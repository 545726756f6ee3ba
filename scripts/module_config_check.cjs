"use strict";
// The module's own configuration check, run in Node: the built filter (build/ai_fallback.wasm) is
// loaded with just enough of a proxy-wasm host to create a root context for a root_id and hand it a
// plugin configuration, exactly as Envoy does at load. What Envoy would refuse is refused here with
// the same message, so the generator (scripts/streamed-config.mjs) and the filter cannot disagree.
const fs = require("node:fs");

const LEVELS = ["trace", "debug", "info", "warn", "error", "critical"];
const OK = 0, NOT_FOUND = 1;
const PLUGIN_CONFIGURATION = 7;

class ModuleMissingError extends Error {}
/** A generated filter configuration the module refused (its message, as Envoy would log it). */
class ModuleRefusedError extends Error {}

/** Compiles the module once; `check(rootId, text)` runs one root context's on_configure on a fresh instance. */
function loadModuleCheck(wasmPath) {
  let bytes;
  try {
    bytes = fs.readFileSync(wasmPath);
  } catch (e) {
    throw new ModuleMissingError(`${wasmPath}: the built filter module is needed to check the configuration as the filter does; ` +
      "run `npm run build` first, or name a built module with --check-wasm PATH");
  }
  const mod = new WebAssembly.Module(bytes);
  return { check: (rootId, configuration) => checkWith(mod, rootId, configuration) };
}

/** { accepted, errors, warnings }: the module's verdict and its log lines ("invalid configuration: ..." etc.). */
function checkWith(mod, rootId, configuration) {
  const config = Buffer.from(configuration, "utf8");
  const logs = [];
  let memory, x;
  const view = () => new DataView(memory.buffer);
  const bytesAt = (ptr, len) => Buffer.from(memory.buffer, ptr, len);
  /** Hands `data` to the module as the host does: its malloc, then the pointer and size written back. */
  const give = (data, ptrPtr, sizePtr) => {
    const ptr = x.malloc(data.length);
    bytesAt(ptr, data.length).set(data);
    view().setUint32(ptrPtr, ptr, true);
    view().setUint32(sizePtr, data.length, true);
    return OK;
  };
  const env = {
    proxy_log: (level, ptr, len) => { logs.push({ level: LEVELS[level] ?? String(level), text: bytesAt(ptr, len).toString("utf8") }); return OK; },
    proxy_get_log_level: (ptr) => { view().setUint32(ptr, 2, true); return OK; },
    proxy_get_buffer_bytes: (type, start, length, ptrPtr, sizePtr) => {
      if (type !== PLUGIN_CONFIGURATION) return NOT_FOUND;
      return give(config.subarray(start, start + length), ptrPtr, sizePtr);
    },
    proxy_get_property: (pathPtr, pathLen, ptrPtr, sizePtr) => {
      const segments = bytesAt(pathPtr, pathLen).toString("utf8").split("\0").filter((s) => s !== "");
      if (segments.length === 1 && segments[0] === "plugin_root_id") return give(Buffer.from(rootId, "utf8"), ptrPtr, sizePtr);
      return NOT_FOUND;
    },
    proxy_define_metric: (type, namePtr, nameLen, idPtr) => { view().setUint32(idPtr, 1, true); return OK; },
    proxy_get_current_time_nanoseconds: (ptr) => { view().setBigUint64(ptr, BigInt(Date.now()) * 1000000n, true); return OK; },
  };
  // Nothing else runs at configuration time; any other call answers "ok" and does nothing.
  const imports = { env: {}, wasi_snapshot_preview1: {
    clock_time_get: (id, precision, ptr) => { view().setBigUint64(ptr, process.hrtime.bigint(), true); return 0; },
  } };
  for (const i of WebAssembly.Module.imports(mod)) {
    if (i.module === "env") imports.env[i.name] = env[i.name] ?? (() => OK);
  }
  const instance = new WebAssembly.Instance(mod, imports);
  x = instance.exports;
  memory = x.memory;
  x._initialize();
  const ROOT = 1;
  x.proxy_on_context_create(ROOT, 0);
  const accepted = x.proxy_on_configure(ROOT, config.length) !== 0;
  return {
    accepted,
    errors: logs.filter((l) => l.level === "error" || l.level === "critical").map((l) => l.text),
    warnings: logs.filter((l) => l.level === "warn").map((l) => l.text),
  };
}

/** Every wasm filter in an Envoy bootstrap: [{ rootId, configuration }] (the listeners' and the clusters' upstream ones). */
function wasmFilters(bootstrap) {
  const out = [];
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object") return;
    if (node.name === "envoy.filters.http.wasm" && node.typed_config?.config) {
      const config = node.typed_config.config;
      out.push({ rootId: config.root_id ?? "", configuration: config.configuration?.value ?? "" });
      return;
    }
    Object.values(node).forEach(visit);
  };
  visit(bootstrap);
  return out;
}

/** Checks each of `bootstrap`'s filter configurations with its root_id; throws ModuleRefusedError on the first refusal, else returns the warnings. */
function checkStreamed(moduleCheck, bootstrap) {
  const warnings = [];
  for (const { rootId, configuration } of wasmFilters(bootstrap)) {
    const verdict = moduleCheck.check(rootId, configuration);
    if (!verdict.accepted) throw new ModuleRefusedError(verdict.errors.join("\n") || `invalid configuration (${rootId}): refused without a message`);
    for (const w of verdict.warnings) if (!warnings.includes(w)) warnings.push(w);
  }
  return warnings;
}

module.exports = { loadModuleCheck, checkStreamed, wasmFilters, ModuleMissingError, ModuleRefusedError };
