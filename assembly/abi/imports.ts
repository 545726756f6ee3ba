// Raw host functions of proxy-wasm ABI 0.2.1 (and the one WASI function the filter needs). Use the
// typed wrappers in hostcalls.ts instead. Pointers and sizes are 32-bit in wasm32; every proxy_*
// function returns a WasmResult.

@external("env", "proxy_log")
export declare function proxy_log(level: u32, messagePtr: usize, messageSize: usize): u32;

@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(returnLevel: usize): u32;

@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(returnTime: usize): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(
  bufferType: u32, start: u32, maxSize: u32, returnPtr: usize, returnSize: usize): u32;

@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(
  bufferType: u32, start: u32, length: u32, dataPtr: usize, dataSize: usize): u32;

@external("env", "proxy_set_header_map_pairs")
export declare function proxy_set_header_map_pairs(mapType: u32, pairsPtr: usize, pairsSize: usize): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, returnPtr: usize, returnSize: usize): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(
  mapType: u32, keyPtr: usize, keySize: usize, returnPtr: usize, returnSize: usize): u32;

@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(
  mapType: u32, keyPtr: usize, keySize: usize, valuePtr: usize, valueSize: usize): u32;

@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(mapType: u32, keyPtr: usize, keySize: usize): u32;

@external("env", "proxy_get_property")
export declare function proxy_get_property(
  pathPtr: usize, pathSize: usize, returnPtr: usize, returnSize: usize): u32;

@external("env", "proxy_set_property")
export declare function proxy_set_property(pathPtr: usize, pathSize: usize, valuePtr: usize, valueSize: usize): u32;

@external("env", "proxy_call_foreign_function")
export declare function proxy_call_foreign_function(
  namePtr: usize, nameSize: usize, argsPtr: usize, argsSize: usize, returnPtr: usize, returnSize: usize): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  statusCode: u32, detailsPtr: usize, detailsSize: usize, bodyPtr: usize, bodySize: usize,
  headersPtr: usize, headersSize: usize, grpcStatus: i32): u32;

@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upstreamPtr: usize, upstreamSize: usize, headersPtr: usize, headersSize: usize,
  bodyPtr: usize, bodySize: usize, trailersPtr: usize, trailersSize: usize,
  timeoutMs: u32, returnToken: usize): u32;

@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;

@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;

@external("env", "proxy_close_stream")
export declare function proxy_close_stream(streamType: u32): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(
  metricType: u32, namePtr: usize, nameSize: usize, returnId: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;

// WASI (wasi_snapshot_preview1), which Envoy provides beside proxy-wasm: the only way to read a
// monotonic clock (proxy_get_current_time_nanoseconds is wall-clock time). Returns a WASI errno.
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clockId: u32, precision: u64, returnTime: usize): u16;

// Shared data: one key-value store all VMs of a vm_id share (so every worker of the gateway), with a
// compare-and-swap token per key.
@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(
  keyPtr: usize, keySize: usize, returnValuePtr: usize, returnValueSize: usize, returnCas: usize): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(keyPtr: usize, keySize: usize, valuePtr: usize, valueSize: usize, cas: u32): u32;
