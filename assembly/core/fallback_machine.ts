// The per-request fallback state machine. Pure: the stream glue feeds it host events and carries
// out the Step it returns, so every transition is reachable from unit tests without a proxy.
import { Backup, Policy } from "./config/config";
import { RESULT_NO_RESPONSE } from "./fallback_outcome";
import { Attempt, DEADLINE_EXCEEDED, NOT_REWRITABLE, REFUSED, RESULT_TIMEOUT, UNKNOWN_CLUSTER } from "./attempts";

/** A racing attempt cancelled (or its answer dropped) because the other sent its first content first (`hedge`). */
export const RESULT_HEDGE_LOST = "hedge_lost";
import { Delivery, Phase, Step } from "./fallback_steps";
import { FallbackState } from "./fallback_state";
import { ERROR_BODY_WAIT_MS } from "./error_meaning";
import { HeldError } from "./held_error";
import { retryWaitMs } from "./retry";
import { statusText, statusTrigger } from "./status_text";
import { Origin, TriggerKind, Verdict, decide, gatewayDeclineReason, isBackupSuccess, triggerKindName, triggerKindOf } from "./policy";

/**
 * The primary's attempt result, in the streamed mode's words: Envoy's own reply when the primary gave no
 * answer is not the primary's status: its 504 is the route's timeout, any other no answer at all.
 */
function primaryResult(kind: TriggerKind, status: i32): string {
  if (kind == TriggerKind.FirstPacketTimeout) return "first_packet_timeout";
  if (kind == TriggerKind.StreamError || kind == TriggerKind.Cooling) return triggerKindName(kind);
  if (kind == TriggerKind.UpstreamFailure) return status == 504 ? RESULT_TIMEOUT : RESULT_NO_RESPONSE;
  return statusText(status);
}

/** A try of the primary that Envoy's router retried (the lean streamed mode's word too). */
export const RESULT_RETRIED = "retry";

/** Our clock (monotonic, ms) and Envoy's timers disagree by a few ms: timeouts are judged with this slack. */
const TIMEOUT_CLOCK_MARGIN_MS: u64 = 25;

export class FallbackMachine extends FallbackState {

  // --- request side ---

  /** A request body chunk went by; false once the body is too large to keep (the copy is dropped). */
  requestBodyChunk(size: u32): bool {
    if (!this.replayable) return false;
    this.bodyBytes += size;
    if (this.bodyBytes > <u64>this.policy.maxRequestBodyBytes) {
      this.notReplayableReason = "request body over maxRequestBodyBytes (" +
        this.policy.maxRequestBodyBytes.toString() + ")";
      return false;
    }
    return true;
  }

  /** The request cannot be kept for replay after all (e.g. the worker's memory budget is spent). */
  refuseReplay(reason: string): void {
    if (this.replayable) this.notReplayableReason = reason;
  }

  /** The whole request went upstream at `nowMs`; `streaming` from its body. */
  requestEnded(streaming: bool): void {
    if (this.phase != Phase.Request) return;
    this.phase = Phase.AwaitingResponse;
    this.awaitingUpstream = streaming && this.policy.firstPacketTimeoutMs > 0 && this.replayable;
  }

  /** The request left for the primary at `nowMs` (Envoy picked its upstream): the first-packet timer starts. */
  upstreamStarted(nowMs: u64): void {
    if (!this.awaitingUpstream) return;
    this.awaitingUpstream = false;
    this.upstreamStartedMs = nowMs;
    this.timedByMs = this.policy.firstPacketTimeoutMs;
    if (this.phase == Phase.AwaitingResponse) this.firstPacketDeadlineMs = nowMs + this.policy.firstPacketTimeoutMs;
  }

  /**
   * A filter behind this one sent the request to another route (it changed a header the routes
   * match on and cleared the route cache): the rule of the route it finally took applies from now
   * on, before anything is decided. `methodAllowed`: that rule replays the request's method. The
   * copy was kept under the first rule; one the final rule would not have kept is not replayed.
   */
  followRoute(policy: Policy, methodAllowed: bool): void {
    if (policy === this.policy || !this.undecided) return;
    this.policy = policy;
    if (policy.backups.length == 0) this.refuseReplay("its final route's rule has no backups");
    else if (!methodAllowed) this.refuseReplay("its final route's rule does not replay its method");
    else if (this.bodyBytes > <u64>policy.maxRequestBodyBytes) {
      this.refuseReplay("request body over its final route's maxRequestBodyBytes (" + policy.maxRequestBodyBytes.toString() + ")");
    }
  }

  // --- primary response ---

  /** The primary's response headers; `endOfStream` = a headers-only response. */
  responseHeaders(status: i32, origin: Origin, endOfStream: bool, nowMs: u64): Step {
    switch (this.phase) {
      case Phase.Replying:
      case Phase.PassThrough:
      case Phase.Resumed:
      case Phase.Done:
        return Step.Continue;
      case Phase.Answering:
        // This filter's own local reply, on its way through the chain: it becomes the answer.
        if (this.delivery != Delivery.ThroughFilterChain || this.answerHeadersWritten) return Step.Continue;
        this.answerHeadersWritten = true;
        return Step.WriteHeaders;
      case Phase.FallingBack:
        if (this.racing && status >= 200 && status < 300) {
          // Racing: a complete 2xx wins at once; a streaming one waits here for its first content.
          if (endOfStream) return this.primaryWins(status);
          this.holdPrimary(status, false, false);
          return Step.Hold;
        }
        // The primary answered late (after a first-packet timeout): keep it as a last resort.
        this.racing = false;
        this.holdPrimary(status, endOfStream, true);
        return Step.HoldWhole;
    }
    this.primaryStatus = status;
    // An answer of the primary shows its request has left, if the glue has not seen it yet.
    if (origin == Origin.Backend) this.upstreamStarted(nowMs);
    this.awaitingUpstream = false;
    const verdict = decide(this.policy, status, origin);
    if (verdict == Verdict.InterceptedPassThrough) {
      this.declinedIntercepted = true;
      return this.passThrough(gatewayDeclineReason(this.policy, status, origin));
    }
    // A model service's error whose body may decide otherwise is held until its body is read.
    if (status >= 400 && this.phase == Phase.AwaitingResponse && this.replayable && this.heldError.holds(this.policy, status, origin, verdict, endOfStream)) {
      this.phase = Phase.ReadingErrorBody;
      this.firstPacketDeadlineMs = 0;
      this.heldError.deadlineMs = nowMs + ERROR_BODY_WAIT_MS;
      this.holdPrimary(status, false, false);
      return Step.Hold;
    }
    if (verdict == Verdict.Fallback && this.policy.backups.length > 0) {
      if (this.phase == Phase.Request) return this.passThrough("the primary answered before the request was complete");
      if (!this.replayable) return this.passThrough("the request cannot be replayed: " + this.notReplayableReason);
      // Held whole: an answer swapped in later takes the place of its body (Delivery.SwapInPlace).
      this.holdPrimary(status, endOfStream, true);
      const kind = triggerKindOf(origin);
      // Envoy's own reply for a primary that gave no answer: its status is not the primary's (the attempt's result says what happened).
      return this.start(kind == TriggerKind.UpstreamFailure || kind == TriggerKind.Cooling ? triggerKindName(kind)
        : kind == TriggerKind.Status ? statusTrigger(status) : triggerKindName(kind) + "=" + status.toString(), kind, nowMs);
    }
    // A headers-only 2xx is complete: there is no first packet to wait for.
    if (this.firstPacketDeadlineMs != 0 && status >= 200 && status < 300 && !endOfStream && this.holdsFirstPacketHeaders) {
      this.phase = Phase.HoldingFirstPacket;
      // Only the headers are held: its body must reach this filter to count as the first packet.
      this.holdPrimary(status, false, false);
      return Step.Hold;
    }
    this.phase = Phase.PassThrough;
    this.firstPacketDeadlineMs = 0;
    return Step.Continue;
  }

  /** The held error's body was read (`meanings`; none: the status decides): it falls back (still held: an answer
   *  replaces it whole when `wholeBodyBuffered`, else is sent directly) or passes. */
  errorBodyRead(meanings: string[], nowMs: u64, wholeBodyBuffered: bool): Step {
    if (this.phase != Phase.ReadingErrorBody) return Step.Continue;
    this.heldError.bodyBuffered = wholeBodyBuffered;
    const fallback = this.heldError.fallsBack(this.policy, this.primaryStatus, meanings);
    if (!fallback || !this.replayable) {
      this.primaryHeld = false;
      return this.passThrough(fallback ? "the request cannot be replayed: " + this.notReplayableReason : "");
    }
    return this.start(statusTrigger(this.primaryStatus), TriggerKind.Status, nowMs);
  }

  private holdPrimary(status: i32, headersOnly: bool, whole: bool): void {
    this.primaryHeld = true;
    this.primaryStatus = status;
    this.primaryHeadersOnly = headersOnly;
    this.primaryHeldWhole = whole;
  }

  /** A primary body chunk; `isFirstPacket` = it counts as the first packet (per the keep-alive option). */
  responseBody(isFirstPacket: bool): Step {
    if (this.phase == Phase.Answering) {
      if (this.delivery == Delivery.Direct) return Step.Continue;
      if (this.answerBodyWritten) return Step.DropChunk;
      this.answerBodyWritten = true;
      return Step.WriteBody;
    }
    if (this.phase == Phase.HoldingFirstPacket) {
      if (!isFirstPacket) return Step.HoldBuffered;
      this.phase = Phase.PassThrough;
      this.primaryHeld = false;
      this.firstPacketDeadlineMs = 0;
      return Step.Continue;
    }
    if (this.phase == Phase.FallingBack && this.racing && this.primaryHeld && !this.primaryHeldWhole) {
      return isFirstPacket ? this.primaryWins(this.primaryStatus) : Step.HoldBuffered;
    }
    if (this.phase == Phase.FallingBack && this.primaryHeld) return Step.Hold;
    return Step.Continue;
  }

  /** The primary's first content beat the racing backup: it is served, the backup's call is dropped. */
  private primaryWins(status: i32): Step {
    this.racing = false;
    this.phase = Phase.PassThrough;
    this.primaryHeld = false;
    this.primaryStatus = status;
    this.attempts[0].result = statusText(status);
    const backup = this.currentBackup;
    if (backup !== null) this.attempts.push(new Attempt(backup.serviceLabel, backup.modelLabel, RESULT_HEDGE_LOST));
    this.currentBackup = null;
    return Step.PrimaryWinsRace;
  }

  /** The root's timer found this stream's first-packet deadline passed. */
  firstPacketTimedOut(nowMs: u64): Step {
    // A request that has not reached the primary is never replayed by the timer.
    if (this.awaitingUpstream) return Step.Continue;
    this.firstPacketDeadlineMs = 0;
    if (this.phase != Phase.AwaitingResponse && this.phase != Phase.HoldingFirstPacket) return Step.Continue;
    // The final route's rule (followRoute) may time the first packet otherwise, or not at all.
    if (!this.replayable || this.policy.firstPacketTimeoutMs == 0) return this.stopTiming();
    const dueMs = this.upstreamStartedMs + this.policy.firstPacketTimeoutMs;
    if (this.policy.firstPacketTimeoutMs != this.timedByMs && dueMs > nowMs + TIMEOUT_CLOCK_MARGIN_MS) {
      this.firstPacketDeadlineMs = dueMs;
      return Step.Continue;
    }
    this.timedOutAfterHeaders = this.phase == Phase.HoldingFirstPacket;
    return this.start("first_packet_timeout", TriggerKind.FirstPacketTimeout, nowMs);
  }

  /**
   * firstPacket "content": the held 2xx's first event was an error (the answer failed after its
   * status): it falls back, with the primary held, as for a late first packet.
   */
  streamError(nowMs: u64): Step {
    if (this.phase != Phase.HoldingFirstPacket) return Step.Continue;
    if (!this.replayable || this.policy.backups.length == 0) return this.stopTiming();
    return this.start("stream_error", TriggerKind.StreamError, nowMs);
  }

  /** No first-packet timeout applies after all: a held 2xx goes on, anything else is decided as it comes. */
  private stopTiming(): Step {
    if (this.phase != Phase.HoldingFirstPacket) return Step.Continue;
    this.phase = Phase.PassThrough;
    this.primaryHeld = false;
    return Step.ReleasePrimary;
  }

  // --- the backup chain ---

  private start(trigger: string, kind: TriggerKind, nowMs: u64): Step {
    this.phase = Phase.FallingBack;
    this.firstPacketDeadlineMs = 0;
    this.trigger = trigger;
    this.triggerKind = kind;
    this.chainDeadlineMs = nowMs + this.policy.fallbackDeadlineMs;
    // The router's earlier tries of the primary (`retry`): their results are the router's, not known here.
    for (let i = 1; i < this.primaryTries; i++) this.attempts.push(new Attempt("primary", "", RESULT_RETRIED));
    this.attempts.push(new Attempt("primary", "", primaryResult(kind, this.primaryStatus)));
    this.racing = kind == TriggerKind.FirstPacketTimeout && this.hedgeAllowed;
    return this.advance(nowMs);
  }

  /** The next backup to try, or what to do when none is left or the chain's deadline passed. */
  advance(nowMs: u64): Step {
    // A call needs time left to be worth it (and a timeout of 0 would mean none at all in Envoy).
    if (this.nextIndex < this.policy.backups.length && nowMs + TIMEOUT_CLOCK_MARGIN_MS < this.chainDeadlineMs) {
      const backup = this.policy.backups[this.nextIndex++];
      this.currentBackup = backup;
      this.retriesOnService = 0;
      return this.dispatch(backup, nowMs);
    }
    if (this.nextIndex < this.policy.backups.length) {
      this.attempts.push(new Attempt("chain", "", DEADLINE_EXCEEDED));
    }
    this.currentBackup = null;
    this.racing = false;
    // A held 2xx primary (its first packet was late, or it answered after the timer) is still a
    // success: it beats any backup error.
    if (this.primaryHeld && this.primaryStatus >= 200 && this.primaryStatus < 300) return this.resume();
    if (this.haveBackupError) return this.answer(Step.ServeLastError);
    if (this.primaryHeld) return this.resume();
    return this.reply(Step.ReplyError);
  }

  private resume(): Step {
    this.phase = Phase.Resumed;
    return Step.ResumePrimary;
  }

  /**
   * The current backup's override model cannot be written into this body (not a JSON object, or no
   * top-level "model"): it is not called (sent as it is, it would serve the client's model on the
   * backup's account). Recorded as `not_rewritable`, and the chain goes on.
   */
  notRewritable(nowMs: u64): Step {
    if (this.phase != Phase.FallingBack) return Step.Continue;
    this.record(NOT_REWRITABLE);
    return this.advance(nowMs);
  }

  /** Envoy would not call the current backup, or it cools: `result` is UNKNOWN_CLUSTER, REFUSED or `cooling` (no call went out). */
  dispatchFailed(result: string, nowMs: u64): Step {
    this.record(result);
    return this.advance(nowMs);
  }

  /**
   * The current backup could not be used for want of memory (the VM's budget could not hold its
   * model-override copy or its answer): recorded as `over_budget`, and the chain goes on.
   */
  overBudget(nowMs: u64): Step {
    if (this.phase != Phase.FallingBack) return Step.Continue;
    this.record("over_budget");
    return this.advance(nowMs);
  }

  /**
   * The current backup's answer: `status` 0 = no response (reset, or over the size cap); `retryAfterMs`
   * its Retry-After (-1: none, or not read); `entropy` jitters a retry's back-off.
   */
  backupAnswered(status: i32, nowMs: u64, envoyNoAnswer: bool = false, retryAfterMs: i64 = -1, entropy: u64 = 0): Step {
    if (this.phase != Phase.FallingBack) return Step.Continue;
    // Envoy's own timer ends a call that timed out with a 504 of its own; our clock may read a
    // few ms short of it, hence the margin.
    const timedOut = nowMs - this.callStartedMs + TIMEOUT_CLOCK_MARGIN_MS >= <u64>this.callTimeoutMs;
    if (status == 0) {
      this.record(timedOut ? RESULT_TIMEOUT : RESULT_NO_RESPONSE);
      return this.retryOrAdvance(0, timedOut, retryAfterMs, entropy, nowMs);
    }
    // Envoy's own 503 for a call that got no answer keeps its place as the answer, but the result says what happened.
    this.record(timedOut && status == 504 ? RESULT_TIMEOUT : envoyNoAnswer ? RESULT_NO_RESPONSE : statusText(status));
    if (isBackupSuccess(status)) {
      // It won a race: the primary, still running, is cancelled with the stream's end.
      if (this.racing) this.attempts[0].result = RESULT_HEDGE_LOST;
      this.backupWonRace = this.racing;
      this.racing = false;
      return this.answer(Step.ServeBackup);
    }
    this.haveBackupError = true;
    const noAnswer = envoyNoAnswer || (timedOut && status == 504);
    return this.retryOrAdvance(noAnswer ? 0 : status, timedOut && status == 504, retryAfterMs, entropy, nowMs);
  }

  /** `retry`: the same backup again after its wait (when the chain's deadline leaves time for it), else the next one. */
  private retryOrAdvance(status: i32, timedOut: bool, retryAfterMs: i64, entropy: u64, nowMs: u64): Step {
    const settings = this.policy.retry;
    if (settings === null || this.racing) return this.advance(nowMs);
    const wait = retryWaitMs(settings, status, timedOut, this.retriesOnService, retryAfterMs, entropy);
    if (wait < 0 || nowMs + <u64>wait + TIMEOUT_CLOCK_MARGIN_MS >= this.chainDeadlineMs) return this.advance(nowMs);
    this.retriesOnService++;
    this.retryAtMs = nowMs + <u64>wait;
    return Step.WaitRetry;
  }

  /** The retry's wait is over: the same backup is called again, within what is left of the chain's deadline. */
  retryDue(nowMs: u64): Step {
    if (this.phase != Phase.FallingBack || this.retryAtMs == 0) return Step.Continue;
    this.retryAtMs = 0;
    const backup = this.currentBackup!;
    if (nowMs + TIMEOUT_CLOCK_MARGIN_MS >= this.chainDeadlineMs) return this.advance(nowMs);
    return this.dispatch(backup, nowMs);
  }

  /** A call to `backup` now, its timeout cut to what is left of the chain's deadline. */
  private dispatch(backup: Backup, nowMs: u64): Step {
    const remaining = this.chainDeadlineMs - nowMs;
    this.callTimeoutMs = <u64>backup.timeoutMs < remaining ? backup.timeoutMs : <u32>remaining;
    this.callStartedMs = nowMs;
    return Step.Dispatch;
  }

  finish(): void {
    this.phase = Phase.Done;
    this.retryAtMs = 0;
    this.racing = false;
    this.awaitingUpstream = false;
    this.firstPacketDeadlineMs = 0;
    this.currentBackup = null;
  }

  private record(result: string): void {
    const backup = this.currentBackup!;
    this.attempts.push(new Attempt(backup.serviceLabel, backup.modelLabel, result));
  }

  private reply(step: Step): Step {
    this.phase = Phase.Replying;
    return step;
  }

  /** An HTTP answer is served; how, depends on what of the primary's response is held. */
  private answer(step: Step): Step {
    this.delivery = this.chooseDelivery();
    this.phase = this.delivery == Delivery.Direct ? Phase.Replying : Phase.Answering;
    if (this.delivery == Delivery.SwapBuffered) this.answerHeadersWritten = this.answerBodyWritten = true; // written at once, whole
    return step;
  }

  private chooseDelivery(): Delivery {
    if (!this.primaryHeld) return Delivery.ThroughFilterChain;
    if (this.heldError.bodyBuffered) return Delivery.SwapBuffered;
    // A held error's body (or its end) is still to be replayed to this filter. A held 2xx is a
    // stream that may send nothing more for long: the answer's body would wait for it, and the
    // client's response would end only when the primary's does.
    if (this.awaitsHeldErrorBody && !this.primaryBodyPending && !this.primaryMayLackBody) return Delivery.SwapInPlace;
    return Delivery.Direct;
  }

  private passThrough(reason: string): Step {
    this.phase = Phase.PassThrough;
    this.firstPacketDeadlineMs = 0;
    this.declined = reason;
    return Step.Continue;
  }
}
