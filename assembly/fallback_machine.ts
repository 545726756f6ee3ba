// The per-request fallback state machine. Pure: the stream glue feeds it host events and carries
// out the Step it returns, so every transition is reachable from unit tests without a proxy.
import { Backup, Policy } from "./config";
import {
  Origin, TriggerKind, Verdict, decide, gatewayDeclineReason, isBackupSuccess, triggerKindName, triggerKindOf,
} from "./policy";

/** The model an attempt reports when its override could not be written into the body. */
export const NOT_REWRITTEN = "not-rewritten";

/** Attempt results of a backup Envoy would not call (no call was dispatched). */
export const UNKNOWN_CLUSTER = "unknown_cluster";
export const REFUSED = "refused";

/** Our clock (monotonic, ms) and Envoy's timers disagree by a few ms: timeouts are judged with this slack. */
const TIMEOUT_CLOCK_MARGIN_MS: u64 = 25;

export const enum Phase {
  /** The request is still streaming in; its body is being copied. */
  Request = 0,
  /** The request is complete; no response yet. */
  AwaitingResponse = 1,
  /** A streaming request's 2xx headers are held until its first body packet (or the timer). */
  HoldingFirstPacket = 2,
  /** The primary response flows to the client; nothing more to decide. */
  PassThrough = 3,
  /** Backups are being tried; the primary response (if any) is held. */
  FallingBack = 4,
  /** This filter's local reply is on its way (its own callbacks must let it pass). */
  Replying = 5,
  /** The held primary response was resumed after every backup failed. */
  Resumed = 6,
  /** The stream is finished. */
  Done = 7,
}

export const enum Step {
  /** Let the primary's headers or body continue. */
  Continue = 0,
  /** Pause the primary's response (its headers, or its body with flow control). */
  Hold = 1,
  /** Dispatch `machine.currentBackup` with `machine.callTimeoutMs`. */
  Dispatch = 2,
  /** Send the backup's answer as the response. */
  ServeBackup = 3,
  /** Every backup failed: send the last backup error answer. */
  ServeLastError = 4,
  /** No backup served: let the held primary response continue (a held 2xx, or the only answer at hand). */
  ResumePrimary = 5,
  /** Every backup failed and no HTTP answer is at hand: send the filter's own error. */
  ReplyError = 6,
  /** Pause the primary's body and keep it in one buffer, to be read whole with the next chunk. */
  HoldBuffered = 7,
}

/** One try of the chain, as reported to operators (byte strings). */
export class Attempt {
  constructor(public service: string, public model: string, public result: string) {}
}

export class FallbackMachine {
  phase: Phase = Phase.Request;
  /** Why the request cannot be replayed ("" while it can). */
  notReplayableReason: string = "";
  /** Absolute deadline for the first response packet, ms; 0 = none. */
  firstPacketDeadlineMs: u64 = 0;
  /**
   * A streaming request waits for Envoy to pick the primary's upstream before its first-packet
   * timer starts: a request still held by a filter behind this one (ext_authz, jwt_authn...) has
   * not reached the primary, and is never replayed by the timer.
   */
  awaitingUpstream: bool = false;
  /** The primary's response headers are paused in Envoy. */
  primaryHeld: bool = false;
  primaryStatus: i32 = 0;
  /** Why a response that would trigger a fallback was passed through ("" when none was). */
  declined: string = "";
  /** ... because it was a gateway reply and backendErrorsOnly is on. */
  declinedIntercepted: bool = false;
  /** The first-packet timer fired after 2xx headers had arrived (their body never reached this filter). */
  timedOutAfterHeaders: bool = false;
  /** What started the fallback, e.g. "status=503" or "first_packet_timeout". */
  trigger: string = "";
  triggerKind: TriggerKind = TriggerKind.Status;
  attempts: Attempt[] = [];
  currentBackup: Backup | null = null;
  /** The model the current backup is asked for, as reported: its label, or NOT_REWRITTEN. */
  currentModel: string = "";
  callTimeoutMs: u32 = 0;
  /** A backup answered with an HTTP error; the glue keeps the latest such answer. */
  haveBackupError: bool = false;
  private nextIndex: i32 = 0;
  private chainDeadlineMs: u64 = 0;
  private callStartedMs: u64 = 0;
  private bodyBytes: u64 = 0;

  constructor(public readonly policy: Policy) {}

  get replayable(): bool {
    return this.notReplayableReason.length == 0;
  }

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
    if (this.phase == Phase.AwaitingResponse) this.firstPacketDeadlineMs = nowMs + this.policy.firstPacketTimeoutMs;
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
      case Phase.FallingBack:
        // The primary answered late (after a first-packet timeout): keep it as a last resort.
        this.primaryHeld = true;
        this.primaryStatus = status;
        return Step.Hold;
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
    if (verdict == Verdict.Fallback && this.policy.backups.length > 0) {
      if (this.phase == Phase.Request) return this.passThrough("the primary answered before the request was complete");
      if (!this.replayable) return this.passThrough("the request cannot be replayed: " + this.notReplayableReason);
      this.primaryHeld = true;
      const kind = triggerKindOf(origin);
      return this.start(triggerKindName(kind) + "=" + status.toString(), kind, nowMs);
    }
    // A headers-only 2xx is complete: there is no first packet to wait for.
    if (this.firstPacketDeadlineMs != 0 && status >= 200 && status < 300 && !endOfStream) {
      this.phase = Phase.HoldingFirstPacket;
      this.primaryHeld = true;
      return Step.Hold;
    }
    this.phase = Phase.PassThrough;
    this.firstPacketDeadlineMs = 0;
    return Step.Continue;
  }

  /** A primary body chunk; `isFirstPacket` = it counts as the first packet (per the keep-alive option). */
  responseBody(isFirstPacket: bool): Step {
    if (this.phase == Phase.HoldingFirstPacket) {
      if (!isFirstPacket) return Step.HoldBuffered;
      this.phase = Phase.PassThrough;
      this.primaryHeld = false;
      this.firstPacketDeadlineMs = 0;
      return Step.Continue;
    }
    if (this.phase == Phase.FallingBack && this.primaryHeld) return Step.Hold;
    return Step.Continue;
  }

  /** The root's timer found this stream's first-packet deadline passed. */
  firstPacketTimedOut(nowMs: u64): Step {
    // A request that has not reached the primary is never replayed by the timer.
    if (this.awaitingUpstream) return Step.Continue;
    this.firstPacketDeadlineMs = 0;
    if (this.phase != Phase.AwaitingResponse && this.phase != Phase.HoldingFirstPacket) return Step.Continue;
    this.timedOutAfterHeaders = this.phase == Phase.HoldingFirstPacket;
    return this.start("first_packet_timeout", TriggerKind.FirstPacketTimeout, nowMs);
  }

  // --- the backup chain ---

  private start(trigger: string, kind: TriggerKind, nowMs: u64): Step {
    this.phase = Phase.FallingBack;
    this.firstPacketDeadlineMs = 0;
    this.trigger = trigger;
    this.triggerKind = kind;
    this.chainDeadlineMs = nowMs + this.policy.fallbackDeadlineMs;
    this.attempts.push(new Attempt("primary", "",
      kind == TriggerKind.FirstPacketTimeout ? "first_packet_timeout" : this.primaryStatus.toString()));
    return this.advance(nowMs);
  }

  /** The next backup to try, or what to do when none is left or the chain's deadline passed. */
  advance(nowMs: u64): Step {
    // A call needs time left to be worth it (and a timeout of 0 would mean none at all in Envoy).
    if (this.nextIndex < this.policy.backups.length && nowMs + TIMEOUT_CLOCK_MARGIN_MS < this.chainDeadlineMs) {
      const backup = this.policy.backups[this.nextIndex++];
      this.currentBackup = backup;
      this.currentModel = backup.modelLabel;
      const remaining = this.chainDeadlineMs - nowMs;
      this.callTimeoutMs = <u64>backup.timeoutMs < remaining ? backup.timeoutMs : <u32>remaining;
      this.callStartedMs = nowMs;
      return Step.Dispatch;
    }
    if (this.nextIndex < this.policy.backups.length) {
      this.attempts.push(new Attempt("chain", "", "deadline_exceeded"));
    }
    this.currentBackup = null;
    // A held 2xx primary (its first packet was late, or it answered after the timer) is still a
    // success: it beats any backup error.
    if (this.primaryHeld && this.primaryStatus >= 200 && this.primaryStatus < 300) return this.resume();
    if (this.haveBackupError) return this.reply(Step.ServeLastError);
    if (this.primaryHeld) return this.resume();
    return this.reply(Step.ReplyError);
  }

  private resume(): Step {
    this.phase = Phase.Resumed;
    return Step.ResumePrimary;
  }

  /** The current backup's override model could not be written into this body: it goes as it is. */
  bodyNotRewritten(): void {
    this.currentModel = NOT_REWRITTEN;
  }

  /** Envoy would not call the current backup: `result` is UNKNOWN_CLUSTER or REFUSED (no call went out). */
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

  /** The current backup's answer: `status` 0 = no response (reset, or over the size cap). */
  backupAnswered(status: i32, nowMs: u64): Step {
    if (this.phase != Phase.FallingBack) return Step.Continue;
    // Envoy's own timer ends a call that timed out with a 504 of its own; our clock may read a
    // few ms short of it, hence the margin.
    const timedOut = nowMs - this.callStartedMs + TIMEOUT_CLOCK_MARGIN_MS >= <u64>this.callTimeoutMs;
    if (status == 0) {
      this.record(timedOut ? "timeout" : "reset");
      return this.advance(nowMs);
    }
    this.record(timedOut && status == 504 ? "timeout" : status.toString());
    if (isBackupSuccess(status)) return this.reply(Step.ServeBackup);
    this.haveBackupError = true;
    return this.advance(nowMs);
  }

  finish(): void {
    this.phase = Phase.Done;
    this.awaitingUpstream = false;
    this.firstPacketDeadlineMs = 0;
    this.currentBackup = null;
  }

  private record(result: string): void {
    const backup = this.currentBackup!;
    this.attempts.push(new Attempt(backup.serviceLabel, this.currentModel, result));
  }

  private reply(step: Step): Step {
    this.phase = Phase.Replying;
    return step;
  }

  private passThrough(reason: string): Step {
    this.phase = Phase.PassThrough;
    this.firstPacketDeadlineMs = 0;
    this.declined = reason;
    return Step.Continue;
  }
}

/** The attempts as one header value: `primary;result=503, svc;model=m;result=timeout, ...`. */
export function formatAttempts(attempts: Attempt[]): string {
  let out = "";
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i];
    if (i > 0) out += ", ";
    out += a.service;
    if (a.model.length > 0) out += ";model=" + a.model;
    out += ";result=" + a.result;
  }
  return out;
}
