// Context registry: context id -> context, and http-call token -> the stream that dispatched it.
import { HttpContext, RootContext } from "./context";
import { streamEnded } from "./collector";
import { setEffectiveContext } from "./hostcalls";

let rootFactory: ((id: u32) => RootContext) | null = null;
const roots = new Map<u32, RootContext>();
const streams = new Map<u32, HttpContext>();
/** (root context id, call token) -> the id of the stream that dispatched the call, or ABANDONED. */
const callOwners = new Map<u64, u32>();
/** The owner of a call whose stream ended before its answer came (no context has id 0). */
const ABANDONED: u32 = 0;
let abandonedAnswered: ((key: u64) => void) | null = null;

/**
 * A call is known by the root context its answer arrives on and its token: the ABI leaves the tokens'
 * numbering to the host (Envoy 1.40 numbers them across the VM), so keyed by both an answer can never
 * reach another root's stream, whatever a host does.
 */
function callKey(rootId: u32, token: u32): u64 {
  return (<u64>rootId << 32) | <u64>token;
}

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
export function recordCall(rootId: u32, token: u32, streamId: u32): void {
  callOwners.set(callKey(rootId, token), streamId);
}

/**
 * The stream ended before its call's answer. The ABI cannot cancel a call: Envoy carries it on to
 * its answer or its timeout, and that answer goes to the handler set below. Returns the call's key.
 */
export function abandonCall(rootId: u32, token: u32): u64 {
  const key = callKey(rootId, token);
  callOwners.set(key, ABANDONED);
  return key;
}

/** What happens when an abandoned call's answer comes (the filter gives back what it held for it). */
export function setAbandonedCallHandler(handler: (key: u64) => void): void {
  abandonedAnswered = handler;
}

/**
 * Routes a call's answer: the entry is dropped first, the effective context becomes the owning
 * stream, and an answer whose stream is gone is ignored.
 */
export function deliverCallResponse(rootId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  const key = callKey(rootId, token);
  if (!callOwners.has(key)) return;
  const streamId = callOwners.get(key);
  callOwners.delete(key);
  if (streamId == ABANDONED) {
    const handler = abandonedAnswered;
    if (handler !== null) handler(key);
    return;
  }
  if (!streams.has(streamId)) return;
  setEffectiveContext(streamId);
  streams.get(streamId).onHttpCallResponse(token, headerCount, bodySize, trailerCount);
}
