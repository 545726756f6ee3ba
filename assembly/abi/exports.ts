// The proxy_on_* functions the host calls, each a forward to the registry or a context, bracketed
// by enter()/leave() so that the garbage collector runs only between callbacks (collector.ts).
import { collectSoon, enter, leave } from "./collector";
import { DataAction, HeadersAction } from "./enums";
import { allocateForHost } from "./host_memory";
import * as registry from "./registry";

// ABI version markers. A host takes the version from the module's export names, so their ORDER
// matters (main.ts lists 0_2_100 first):
// - Higress's host (higress-group/proxy-wasm-cpp-host src/bytecode_util.cc, getAbiVersion) takes the
//   FIRST name it knows: proxy_abi_version_0_2_100. For such modules its src/context.cc
//   (convertVmCallResultToFilterHeadersStatus) passes a header StopIteration through instead of
//   turning it into StopAllIterationAndWatermark: what upstream Envoy does only with
//   allow_on_headers_stop_iteration, which Higress never sets. Everything else this module relies on
//   is the same as 0.2.1 there: src/wasm.cc registers the same host functions for both (since
//   cad2eb0, May 2024), and on_request_headers is called with the same arguments (context id,
//   header count, end of stream); on_response_headers, bodies, trailers, ticks and
//   on_http_call_response are untouched.
// - Upstream Envoy's host skips names it does not know and takes proxy_abi_version_0_2_1.
export function proxy_abi_version_0_2_100(): void {}
export function proxy_abi_version_0_2_1(): void {}

/** The host allocates the memory it hands to us through this (hostcalls.ts frees it, or it is a body copy's own space). */
export function malloc(size: usize): usize {
  return allocateForHost(size);
}

/** The same allocator under the name Higress's host falls back to when `malloc` is absent (src/wasm.cc). */
export function proxy_on_memory_allocate(size: usize): usize {
  return allocateForHost(size);
}

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  enter();
  registry.createContext(contextId, parentContextId);
  leave(0);
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): bool {
  enter();
  const root = registry.rootContext(rootContextId);
  return leave(root == null ? false : root.onVmStart(vmConfigurationSize));
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): bool {
  enter();
  const root = registry.rootContext(rootContextId);
  collectSoon();
  return leave(root == null ? false : root.onConfigure(pluginConfigurationSize));
}

export function proxy_on_tick(rootContextId: u32): void {
  enter();
  const root = registry.rootContext(rootContextId);
  if (root != null) root.onTick();
  leave(0);
}

export function proxy_on_request_headers(contextId: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? HeadersAction.Continue : stream.onRequestHeaders(headerCount, endOfStream));
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: bool): DataAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? DataAction.Continue : stream.onRequestBody(bodySize, endOfStream));
}

export function proxy_on_request_trailers(contextId: u32, trailerCount: u32): HeadersAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? HeadersAction.Continue : stream.onRequestTrailers(trailerCount));
}

export function proxy_on_response_headers(contextId: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? HeadersAction.Continue : stream.onResponseHeaders(headerCount, endOfStream));
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: bool): DataAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? DataAction.Continue : stream.onResponseBody(bodySize, endOfStream));
}

export function proxy_on_response_trailers(contextId: u32, trailerCount: u32): HeadersAction {
  enter();
  const stream = registry.httpContext(contextId);
  return leave(stream == null ? HeadersAction.Continue : stream.onResponseTrailers(trailerCount));
}

export function proxy_on_http_call_response(
  rootContextId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  enter();
  registry.deliverCallResponse(rootContextId, token, headerCount, bodySize, trailerCount);
  leave(0);
}

// No proxy_on_done: a host calls it right before proxy_on_delete (Envoy 1.40's Context::onDestroy,
// source/extensions/common/wasm/context.cc, calls onDone() then onDelete(); proxy-wasm-cpp-host's
// root contexts get onDelete() when an absent on_done counts as done), so it could only end a
// stream one synchronous step earlier, and each export costs every request a V8 entry (about
// 0.4 µs). A stream ends at proxy_on_log (Envoy logs before it destroys the filters) or at
// proxy_on_delete, whichever comes first; proxy_on_log stays for a context created only to log
// (HTTP/3 defers logging past onDestroy, and a request answered before this filter then gets its
// context at the log, with no proxy_on_delete after it).

export function proxy_on_log(contextId: u32): void {
  enter();
  registry.endStream(contextId);
  leave(0);
}

export function proxy_on_delete(contextId: u32): void {
  enter();
  registry.deleteContext(contextId);
  leave(0);
}
