// Leaving a failed attempt's record in the VM's attempt log (attempt_log.ts) for the request's next
// attempt, with what is said when it cannot be kept.
import { LogLevel } from "../abi/enums";
import { log, monotonicMs } from "../abi/hostcalls";
import { overBudget, showKeptBytes } from "../host/vm_budget";
import { AttemptRecord, Kept, MAX_RECORDS, RequestIdentity } from "./attempt_log";
import { clientLeft, requestIdentity } from "./request_identity";
import { attemptLog, attemptLogFull } from "./upstream_root";

/**
 * Leaves `record` for the next attempt of its request (`owner`, read now if not yet). At an attempt's
 * teardown (`atEnd`) Envoy says whether the client left (then no attempt follows, and nothing is left
 * to wait for one). `requestIdSuffix`: the log lines' " x-request-id=..." (or "").
 */
export function keepForNextAttempt(known: RequestIdentity | null, record: AttemptRecord, atEnd: bool, requestIdSuffix: string): void {
  if (atEnd && clientLeft()) return;
  let owner = known;
  if (owner === null) owner = requestIdentity();
  if (owner === null) return;
  const now = monotonicMs();
  const kept = attemptLog.put(owner, record, now);
  if (kept == Kept.Yes) {
    showKeptBytes();
  } else if (kept == Kept.OverBudget) {
    overBudget("streamed fallback: an attempt's result is not kept for the next attempt, which reports result=unknown for it", requestIdSuffix);
  } else if (kept == Kept.Full && attemptLogFull.allow(now)) {
    log(LogLevel.Warn, "streamed fallback: attempt log full (" + MAX_RECORDS.toString() + " requests between attempts); the next attempt" +
      requestIdSuffix + " will not know this one's result (" + attemptLogFull.takeSuppressed().toString() + " more since the last line)");
  }
}
