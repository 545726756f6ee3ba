// The garbage collector, run by hand. The module is built with `--runtime minimal`: no shadow stack
// (smaller, faster code), so a collection may only run when no wasm frame below it holds a reference,
// i.e. when the outermost host callback is about to return. Every proxy_on_* export brackets its
// work with enter()/leave(); host calls can re-enter the module (an http call failing at once
// answers inside proxy_http_call), so only the leave() back to depth 0 may collect.

/** A collection is due after this many streams have ended (their objects are the garbage)... */
const STREAMS_PER_COLLECTION: i32 = 64;
/** ... or after this many bytes of large managed buffers were handed out (answers, body copies). */
const BYTES_PER_COLLECTION: i64 = 4 * 1024 * 1024;

let depth: i32 = 0;
let endedStreams: i32 = 0;
let allocatedBytes: i64 = 0;

/** A host callback starts. */
export function enter(): void {
  depth++;
}

/** A host callback ends; returns `result`. At depth 0, collects when a collection is due. */
export function leave<T>(result: T): T {
  if (--depth == 0 && (endedStreams >= STREAMS_PER_COLLECTION || allocatedBytes >= BYTES_PER_COLLECTION)) {
    endedStreams = 0;
    allocatedBytes = 0;
    __collect();
  }
  return result;
}

/** A stream ended: what it allocated is garbage now. */
export function streamEnded(): void {
  endedStreams++;
}

/** A large managed buffer (e.g. a backup's answer) was allocated. */
export function allocatedLarge(bytes: i64): void {
  allocatedBytes += bytes;
}

/** After the configuration is parsed (a lot of garbage, once). */
export function collectSoon(): void {
  allocatedBytes = BYTES_PER_COLLECTION;
}
