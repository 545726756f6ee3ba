// Base classes for the two kinds of proxy-wasm context. The filter extends them; the registry
// creates them and routes each host callback to the right instance.
import { DataAction, HeadersAction } from "./enums";

export class RootContext {
  constructor(public readonly id: u32) {}
  onVmStart(vmConfigurationSize: u32): bool { return true; }
  onConfigure(pluginConfigurationSize: u32): bool { return true; }
  onTick(): void {}
  /** The host deletes the root context (its plugin configuration was removed or replaced). */
  onDelete(): void {}
  createHttpContext(id: u32): HttpContext { return new HttpContext(id, this); }
}

export class HttpContext {
  constructor(public readonly id: u32, public readonly root: RootContext) {}
  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction { return HeadersAction.Continue; }
  onRequestBody(bodySize: u32, endOfStream: bool): DataAction { return DataAction.Continue; }
  onRequestTrailers(trailerCount: u32): HeadersAction { return HeadersAction.Continue; }
  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction { return HeadersAction.Continue; }
  onResponseBody(bodySize: u32, endOfStream: bool): DataAction { return DataAction.Continue; }
  onResponseTrailers(trailerCount: u32): HeadersAction { return HeadersAction.Continue; }
  /** The answer to a call this stream dispatched; the effective context is already this stream. */
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {}
  /** A deadline its root context keeps for this stream has passed; the effective context is this stream. */
  onDeadline(nowMs: u64): void {}
  /** The stream is finished (completed or reset); pending work must be released here. */
  onDone(): void {}
}
