// The state one attempt of the streamed chain keeps, and how its end is told: a backup's attempt is
// counted and its record handed on (attempt_keeper.ts) or its outcome logged; a failed primary starts
// the record the first backup's filter takes. The layers on it: attempt_race.ts (overlapping attempts,
// hedge), attempt_request.ts (the request side), upstream_stream.ts (the answer side).
import { LogLevel } from "../abi/enums";
import { HttpContext } from "../abi/context";
import { logBytes } from "../abi/hostcalls";
import { UpstreamConfig } from "../core/config/config";
import { Attempt, formatAttempts } from "../core/attempts";
import { EVERY_SERVICE_FAILED, outcomeLogLine, outcomeText, servedBy } from "../core/fallback_outcome";
import { publishOutcome } from "../host/outcome_state";
import { AttemptRecord, RequestIdentity } from "./attempt_log";
import { RaceEntry } from "./hedge_race";
import { UpstreamMetrics } from "./upstream_metrics";
import { UpstreamRoot, attemptLog } from "./upstream_root";
import { keepForNextAttempt } from "./attempt_keeper";
import { chooseNextTry } from "./attempt_retry";
import { requestIdentity } from "./request_identity";

export const PRIMARY_LABEL = "primary";

export class AttemptOutcome extends HttpContext {
  /** The primary's request is one the route retries: a failed attempt leaves a record. */
  protected recordable: bool = false;
  /** The request the attempt belongs to, once read (the key of its attempt record). */
  protected owner: RequestIdentity | null = null;
  /** The request's x-request-id for the log lines, at most LOGGED_ID_CHARS ("" = none or not logged). */
  protected requestId: string = "";
  /** The host wrote info lines when this backup's attempt began: asked once per attempt, not again for its outcome line. */
  protected logsInfo: bool = false;
  /** The earlier attempts' results, taken from the log (backups only). */
  protected record: AttemptRecord | null = null;
  /** The attempt's configuration: the root's, or (one-cluster layout) its service's, once the request headers came. */
  protected config: UpstreamConfig | null = null;
  /** Its backup's counters (null on the primary). */
  protected metrics: UpstreamMetrics | null = null;
  /** Attempts may overlap (hedge): this backup's place in the request's shared record. */
  protected race: RaceEntry | null = null;
  /** With `retry`: this failed try named a next one (attempt_retry.ts). */
  protected tryFollows: bool = false;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  protected get upstreamRoot(): UpstreamRoot {
    return this.root as UpstreamRoot;
  }

  protected requestIdSuffix(): string {
    return this.requestId.length > 0 ? " x-request-id=" + this.requestId : "";
  }

  /**
   * A backup's attempt is over: count it, and hand the record on or log the outcome. `called`: the
   * backup was called (a skipped one did not fail); `atEnd`: at the attempt's teardown.
   */
  protected settle(config: UpstreamConfig, record: AttemptRecord, failed: bool, called: bool, atEnd: bool): void {
    const metrics = this.metrics!;
    if (!failed) {
      metrics.count(metrics.answered);
      metrics.count(metrics.servedByBackup);
      this.logOutcome(servedBy(config.backup!.serviceLabel, config.backup!.modelLabel), record);
      return;
    }
    if (called) metrics.count(metrics.failed);
    // Another attempt still runs (hedge): the chain is not over, whichever attempt this is.
    const race = this.race;
    const next = config.retry !== null ? this.tryFollows : config.attempt < config.attempts;
    if (next || (race !== null && record.otherPending(race.index))) {
      this.store(record, atEnd);
      return;
    }
    metrics.count(metrics.exhausted);
    if (race !== null && this.owner !== null) {
      attemptLog.decide(record);
      attemptLog.drop(this.owner!, record);
    }
    this.logOutcome(EVERY_SERVICE_FAILED, record);
  }

  /**
   * The primary failed: start the record the next try's filter takes (with `retry`, continue the one
   * its earlier try left, and name the next try's cluster). `status` 0: no answer; `timedOut`: a late first packet.
   */
  protected leaveForNext(config: UpstreamConfig, record: AttemptRecord, result: string, atEnd: bool, status: i32 = 0, timedOut: bool = false): void {
    if (config.attempt >= config.attempts || !this.recordable) return;
    let kept = record;
    if (config.retry !== null) {
      if (this.owner === null) this.owner = requestIdentity();
      const earlier = this.owner !== null ? attemptLog.take(this.owner!) : null;
      if (earlier !== null) kept = earlier;
    }
    kept.attempts.push(new Attempt(PRIMARY_LABEL, "", result));
    if (config.retry !== null) chooseNextTry(config, kept, PRIMARY_LABEL, status, timedOut, !atEnd);
    this.store(kept, atEnd);
  }

  /** Leaves `record` for the request's next attempt (attempt_keeper.ts). */
  protected store(record: AttemptRecord, atEnd: bool): void {
    keepForNextAttempt(this.owner, record, atEnd, this.requestIdSuffix());
  }

  /** The outcome in the dispatch mode's words (fallback_outcome.ts): filter state for the access log, and the info line. */
  protected logOutcome(outcome: string, record: AttemptRecord): void {
    const text = outcomeText(outcome, record.trigger(), formatAttempts(record.attempts));
    publishOutcome(text);
    if (!this.logsInfo) return;
    logBytes(LogLevel.Info, outcomeLogLine(text, this.requestIdSuffix()));
  }
}
