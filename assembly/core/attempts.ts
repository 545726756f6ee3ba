// One try of a fallback chain as operators read it (headers, log lines, the access log): its result
// words and the attempts' one-line form. Shared by both modes. Pure.

/** One try of the chain, as reported to operators (byte strings). */
export class Attempt {
  constructor(public service: string, public model: string, public result: string) {}
}

/** The chain's own entry when `fallbackDeadline` stopped it (`chain;result=deadline_exceeded`): no backup's. */
export const DEADLINE_EXCEEDED = "deadline_exceeded";

/** Whether a backup's attempt result means it was called (not skipped before any call went out, nor the chain's own entry). */
export function wasCalled(result: string): bool {
  return result != UNKNOWN_CLUSTER && result != REFUSED && result != NOT_REWRITABLE && result != "over_budget" && result != DEADLINE_EXCEEDED &&
    result != "cooling";
}

/** A call or route timeout passed before an answer (dispatch mode: a backup's `timeout`, the primary's route timeout). */
export const RESULT_TIMEOUT = "timeout";

/** Attempt results of a backup Envoy would not call (no call was dispatched). */
export const UNKNOWN_CLUSTER = "unknown_cluster";
export const REFUSED = "refused";
/** The attempt result of a backup with a model override skipped because the body's model could not be rewritten. */
export const NOT_REWRITABLE = "not_rewritable";

const ATTEMPT_SEPARATOR = ", ";
const MODEL_PREFIX = ";model=";
const RESULT_PREFIX = ";result=";

/**
 * The attempts as one header value: `primary;result=503, svc;model=m;result=timeout, ...`. Measured,
 * then written into one string (a fallback formats it for its report header: one allocation, not
 * one per piece).
 */
export function formatAttempts(attempts: Attempt[]): string {
  let length = 0;
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i];
    if (i > 0) length += ATTEMPT_SEPARATOR.length;
    length += a.service.length + RESULT_PREFIX.length + a.result.length;
    if (a.model.length > 0) length += MODEL_PREFIX.length + a.model.length;
  }
  if (length == 0) return "";
  const out = changetype<string>(__new(<usize>length << 1, idof<string>()));
  let at = changetype<usize>(out);
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i];
    if (i > 0) at = put(at, ATTEMPT_SEPARATOR);
    at = put(at, a.service);
    if (a.model.length > 0) at = put(put(at, MODEL_PREFIX), a.model);
    at = put(put(at, RESULT_PREFIX), a.result);
  }
  return out;
}

/** Copies `s` (UTF-16) to `at`; returns the end. */
function put(at: usize, s: string): usize {
  const bytes = <usize>s.length << 1;
  memory.copy(at, changetype<usize>(s), bytes);
  return at + bytes;
}
