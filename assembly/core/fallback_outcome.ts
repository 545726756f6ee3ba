// One vocabulary for a fallback's outcome in both modes (the dispatch filter, dispatch/fallback_stream.ts, and the
// streamed mode's backup filters, upstream/attempt_outcome.ts): the log line, and the same text as filter
// state for Envoy's access log (`%FILTER_STATE(wasm.ai_fallback.outcome:PLAIN)%`). Pure; byte strings in
// and out (labels are UTF-8 bytes, bytes.ts).

/** An attempt that got no HTTP answer: connect failure, reset, refused stream (both modes). */
export const RESULT_NO_RESPONSE = "no_response";

/** The stream property (one path segment) Envoy keeps as filter state `wasm.ai_fallback.outcome`. */
export const OUTCOME_PROPERTY = "ai_fallback.outcome";

export const EVERY_SERVICE_FAILED = "every model service failed";
export const STREAM_ENDED_FIRST = "the stream ended before the fallback did";

/** "served by backup-a (model qwen-plus)"; `model` is the backup's label ("pass-through" or the override). */
export function servedBy(service: string, model: string): string {
  return joinFive("served by ", service, " (model ", model, ")");
}

/** "served by backup-a (model m); trigger status=503; attempts primary;result=503, backup-a;model=m;result=200". */
export function outcomeText(outcome: string, trigger: string, attempts: string): string {
  return joinFive(outcome, "; trigger ", trigger, "; attempts ", attempts);
}

/** Five strings as one, made at once: written with `+`, each `+` would make a string of its own (every fallback builds these). */
function joinFive(a: string, b: string, c: string, d: string, e: string): string {
  const out = changetype<string>(__new(<usize>(a.length + b.length + c.length + d.length + e.length) << 1, idof<string>()));
  let at = changetype<usize>(out);
  at = copyChars(at, a);
  at = copyChars(at, b);
  at = copyChars(at, c);
  at = copyChars(at, d);
  copyChars(at, e);
  return out;
}

function copyChars(at: usize, s: string): usize {
  const size = <usize>s.length << 1;
  memory.copy(at, changetype<usize>(s), size);
  return at + size;
}

/** The log line: "fallback: <outcome text>" and the request's id (" x-request-id=..." or ""). */
export function outcomeLogLine(text: string, requestIdSuffix: string): string {
  return "fallback: " + text + requestIdSuffix;
}

// Envoy's own 503 texts when a call got no answer (its router: a connect failure or reset before
// headers, or no host to try). A model service's 503 never starts with them.
const RESET_TEXT = "upstream connect error or disconnect/reset before headers";
const NO_HOST_TEXT = "no healthy upstream";

/** Whether a call's 503 answer is Envoy's own for a service that gave none (its body, at `ptr`). */
export function isEnvoyNoAnswerReply(status: i32, ptr: usize, length: i32): bool {
  if (status != 503) return false;
  return startsWithAscii(ptr, length, RESET_TEXT) || (length == NO_HOST_TEXT.length && startsWithAscii(ptr, length, NO_HOST_TEXT));
}

function startsWithAscii(ptr: usize, length: i32, text: string): bool {
  if (length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (<i32>load<u8>(ptr + <usize>i) != text.charCodeAt(i)) return false;
  return true;
}
