// Context registry: context id -> context, and http-call token -> the stream that dispatched it.
import { HttpContext, RootContext } from "./context";
import { streamEnded } from "./collector";
import { setEffectiveContext } from "./hostcalls";

let rootFactory: ((id: u32) => RootContext) | null = null;
const roots = new Map<u32, RootContext>();
const streams = new Map<u32, HttpContext>();
const callOwners = new Map<u32, u32>();

export function setRootContextFactory(factory: (id: u32) => RootContext): void {
  rootFactory = factory;
}

export function createContext(id: u32, parentId: u32): void {
  if (parentId == 0) {
    const factory = rootFactory;
    roots.set(id, factory == null ? new RootContext(id) : factory(id));
    return;
  }
  if (!roots.has(parentId)) return;
  streams.set(id, roots.get(parentId).createHttpContext(id));
}

export function rootContext(id: u32): RootContext | null {
  return roots.has(id) ? roots.get(id) : null;
}

export function httpContext(id: u32): HttpContext | null {
  return streams.has(id) ? streams.get(id) : null;
}

/**
 * A stream's end, whichever callback brings it first: proxy_on_log (Envoy logs a stream before
 * it destroys its filters; a context created only to log, after HTTP/3's deferred logging, gets
 * nothing else) or proxy_on_delete (the module exports no proxy_on_done: see exports.ts). The
 * registry forgets the stream and its teardown runs once. False when the id is no (longer a) stream.
 */
export function endStream(id: u32): bool {
  if (!streams.has(id)) return false;
  const stream = streams.get(id);
  streams.delete(id);
  stream.onDone();
  streamEnded();
  return true;
}

export function deleteContext(id: u32): void {
  if (endStream(id) || !roots.has(id)) return;
  const root = roots.get(id);
  roots.delete(id);
  root.onDelete();
}

/** Remembers which stream owns a dispatched call. */
export function recordCall(token: u32, streamId: u32): void {
  callOwners.set(token, streamId);
}

/** Forgets a call whose answer the stream no longer wants (the stream is ending). */
export function forgetCall(token: u32): void {
  if (callOwners.has(token)) callOwners.delete(token);
}

/**
 * Routes a call's answer: the entry is dropped first, the effective context becomes the owning
 * stream, and an answer whose stream is gone is ignored.
 */
export function deliverCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  if (!callOwners.has(token)) return;
  const streamId = callOwners.get(token);
  callOwners.delete(token);
  if (!streams.has(streamId)) return;
  setEffectiveContext(streamId);
  streams.get(streamId).onHttpCallResponse(token, headerCount, bodySize, trailerCount);
}
