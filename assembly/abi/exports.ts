// The proxy_on_* functions the host calls, each a forward to the registry or a context.
import { DataAction, HeadersAction } from "./enums";
import * as registry from "./registry";

export function proxy_abi_version_0_2_1(): void {}

/** The host allocates the memory it hands to us through this (hostcalls.ts frees it). */
export function malloc(size: usize): usize {
  return heap.alloc(size);
}

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  registry.createContext(contextId, parentContextId);
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): bool {
  const root = registry.rootContext(rootContextId);
  return root == null ? false : root.onVmStart(vmConfigurationSize);
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): bool {
  const root = registry.rootContext(rootContextId);
  return root == null ? false : root.onConfigure(pluginConfigurationSize);
}

export function proxy_on_tick(rootContextId: u32): void {
  const root = registry.rootContext(rootContextId);
  if (root != null) root.onTick();
}

export function proxy_on_request_headers(contextId: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? HeadersAction.Continue : stream.onRequestHeaders(headerCount, endOfStream);
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: bool): DataAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? DataAction.Continue : stream.onRequestBody(bodySize, endOfStream);
}

export function proxy_on_request_trailers(contextId: u32, trailerCount: u32): HeadersAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? HeadersAction.Continue : stream.onRequestTrailers(trailerCount);
}

export function proxy_on_response_headers(contextId: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? HeadersAction.Continue : stream.onResponseHeaders(headerCount, endOfStream);
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: bool): DataAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? DataAction.Continue : stream.onResponseBody(bodySize, endOfStream);
}

export function proxy_on_response_trailers(contextId: u32, trailerCount: u32): HeadersAction {
  const stream = registry.httpContext(contextId);
  return stream == null ? HeadersAction.Continue : stream.onResponseTrailers(trailerCount);
}

export function proxy_on_http_call_response(
  rootContextId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  registry.deliverCallResponse(token, headerCount, bodySize, trailerCount);
}

export function proxy_on_done(contextId: u32): bool {
  const stream = registry.httpContext(contextId);
  if (stream != null) {
    stream.onDone();
    return true;
  }
  const root = registry.rootContext(contextId);
  return root == null ? true : root.onDone();
}

export function proxy_on_log(contextId: u32): void {}

export function proxy_on_delete(contextId: u32): void {
  registry.deleteContext(contextId);
}
