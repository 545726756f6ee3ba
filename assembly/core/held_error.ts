// The dispatch mode's FallbackMachine state for a model service's 4xx held until its body says what
// it means (error_meaning.ts, policy.ts decideByMeaning). Pure.
import { Policy } from "./config/config";
import { Origin, Verdict, decideByMeaning, meaningMayMatter, neverTriggerReport } from "./policy";

export class HeldError {
  /** While its body is read (Phase.ReadingErrorBody): when the status alone decides, ms. */
  deadlineMs: u64 = 0;
  /** The glue can read the body: no content-length over the read's bound, and Envoy shows a paused filter the body. */
  readable: bool = true;
  /** Its whole body was read and waits buffered in Envoy (Delivery.SwapBuffered). */
  bodyBuffered: bool = false;
  /** Passed through because its error is in neverTrigger: the report, e.g. "never_trigger=content_filter" ("" when not). */
  neverTriggered: string = "";

  /** Whether an answer is held for its body: the model service's, with a body to come, and its meaning may decide. */
  holds(policy: Policy, status: i32, origin: Origin, verdict: Verdict, endOfStream: bool): bool {
    return origin == Origin.Backend && !endOfStream && this.readable && policy.backups.length > 0 &&
      meaningMayMatter(status, verdict == Verdict.Fallback, policy.neverTrigger, policy.alwaysTrigger);
  }

  /** Whether it falls back by its `meanings` (none: by status); `neverTriggered` says why not when neverTrigger stopped it. */
  fallsBack(policy: Policy, status: i32, meanings: string[]): bool {
    const meaning = decideByMeaning(policy.triggerStatuses.has(status), meanings, policy.neverTrigger, policy.alwaysTrigger);
    if (meaning.neverTriggered) this.neverTriggered = neverTriggerReport(meaning.code);
    return meaning.fallback;
  }
}
