// Calling backups for one stream of the dispatch mode: a dispatch (the backup's request headers, the
// model-override copy within the budget, the call's token), and what a fallback reports (counters,
// the decision's log line, the outcome for the access log), and a hedge's race with the primary (its
// place among the worker's, the dropped call of a race the primary won). fallback_stream.ts carries out the chain.

import { LogLevel, MapType, WasmResult } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { abandonCall, recordCall } from "../abi/registry";
import { holdAbandonedCall } from "./abandoned_calls";
import { refusedCallText } from "./call_refusal";
import { Backup } from "../core/config/config";
import { formatAttempts, wasCalled } from "../core/attempts";
import { FallbackMachine, RESULT_HEDGE_LOST } from "../core/fallback_machine";
import { EVERY_SERVICE_FAILED, outcomeLogLine, outcomeText, servedBy } from "../core/fallback_outcome";
import { publishOutcome } from "../host/outcome_state";
import { RewriteOutcome, planRewrite, writeRewrite } from "../core/model_rewrite";
import { HEADER_ATTEMPTS, HEADER_DECLINED, HEADER_TRIGGER, backupRequestPairs } from "../core/replay";
import { Admission, countsAsDown } from "../core/cooldown";
import { retryAfterMs } from "../core/retry_after";
import { Origin, TriggerKind } from "../core/policy";
import { findSerializedHeader } from "../core/header_pairs";
import { cooldownStore } from "../host/cooldown_store";


import { RequestKeeper } from "./request_keeper";

/** What became of a dispatch. */
export const enum Dispatch {
  Sent = 0,
  /** Envoy has no cluster of that name. */
  UnknownCluster = 1,
  /** Envoy failed the call at once (no healthy upstream, circuit breaker overflow). */
  Refused = 2,
  /** The memory budget could not hold the model-override copy. */
  OverBudget = 3,
  /** The backup has a model override and the body's model cannot be rewritten: not called. */
  NotRewritable = 4,
}

export class BackupCaller extends RequestKeeper {

  protected pendingToken: u32 = 0;
  /** The request bytes Envoy copied for the pending call (its headers and body). */
  protected pendingCallBytes: i64 = 0;
  /** `hedge`: this stream holds one of the worker's places (its race is on). */
  private hedgePlace: bool = false;

  /** A pending backup call nobody waits for any more: Envoy carries it on, and what it holds stays counted until its answer (abandoned_calls.ts). */
  protected abandonPendingCall(): void {
    if (this.pendingToken == 0) return;
    holdAbandonedCall(abandonCall(this.root.id, this.pendingToken), this.pendingCallBytes);
    this.pendingToken = 0;
    this.metrics().pendingBackupCalls.down();
  }

  /**
   * `hedge`: whether a late first packet may race (a place among the worker's hedge.maxInFlight is
   * free); asked before the timer's step, which starts the race.
   */
  protected offerHedge(machine: FallbackMachine): void {
    const max = machine.policy.hedgeMaxInFlight;
    if (max == 0) return;
    machine.hedgeAllowed = this.fallbackRoot.hedgesInFlight < <i32>max;
    if (!machine.hedgeAllowed) {
      const hedges = this.fallbackRoot.hedgeCounters();
      hedges.count(hedges.overLimit);
    }
  }

  /** A race began: it holds one of the worker's places until it is decided (afterStep) or the stream ends. */
  protected takeHedgePlace(machine: FallbackMachine): void {
    if (!machine.racing || this.hedgePlace) return;
    this.hedgePlace = true;
    this.fallbackRoot.hedgesInFlight++;
    const hedges = this.fallbackRoot.hedgeCounters();
    hedges.count(hedges.started);
  }

  protected leaveHedgePlace(): void {
    if (!this.hedgePlace) return;
    this.hedgePlace = false;
    this.fallbackRoot.hedgesInFlight--;
  }

  /**
   * The primary's first content beat the racing backup: the backup's call is dropped (Envoy carries it
   * on; its answer, when it comes, is thrown away: abandoned_calls.ts), and the primary's held headers
   * go on with the report.
   */
  protected primaryWonRace(machine: FallbackMachine): void {
    this.abandonPendingCall();
    const hedges = this.fallbackRoot.hedgeCounters();
    hedges.count(hedges.wonByPrimary);
    host.replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, machine.trigger);
    if (!machine.policy.hideTopology) host.replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(machine.attempts));
    this.logDecision(machine, servedBy("primary", "pass-through") + ", which won the race", true);
  }


  /**
   * Dispatches the request to `backup`. A model override is written into a copy that lives only
   * while the host takes its own copy of it (budgeted, freed at once); a body it cannot be written
   * into is never sent to that backup (fail closed: the client's model would be served on the
   * backup's account). An unknown cluster or a call Envoy refused at once is not a backup call (not counted).
   */
  protected dispatch(machine: FallbackMachine, backup: Backup, timeoutMs: u32): Dispatch {
    let body = this.requestBody.ptr;
    let bodySize = this.requestBody.length;
    let copy: usize = 0;
    let copySize = 0;
    const literal = backup.modelLiteral;
    if (literal !== null) {
      const plan = planRewrite(body, bodySize, literal.byteLength);
      if (plan.outcome != RewriteOutcome.Rewritten) {
        this.metrics().count(this.metrics().notRewritable);
        const why = plan.outcome == RewriteOutcome.NotJsonObject ? "is not a JSON object" : "has no top-level \"model\"";
        host.logBytes(LogLevel.Info, "request body " + why + ": model " + backup.modelLabel + " cannot be written; " +
          backup.serviceLabel + " is not called, the chain goes on" + this.requestIdSuffix());
        return Dispatch.NotRewritable;
      }
      if (!this.share.tryTake(plan.size)) {
        this.fallbackRoot.overBudget("no room for a " + plan.size.toString() + "-byte model-override copy for " +
          backup.serviceLabel + "; the chain goes on", this.requestIdSuffix());
        return Dispatch.OverBudget;
      }
      copySize = plan.size;
      copy = heap.alloc(copySize);
      writeRewrite(plan, body, bodySize, literal, copy);
      body = copy;
      bodySize = copySize;
    }
    const headers = backupRequestPairs(changetype<usize>(this.requestHeaders), this.requestHeaders.byteLength, backup);
    const call = host.httpCall(backup.serviceBytes, headers, body, bodySize, timeoutMs);
    if (copy != 0) {
      heap.free(copy);
      this.share.give(copySize);
    }
    if (call.status != WasmResult.Ok) {
      // One log line per kind, its text in call_refusal.ts.
      host.logBytes(LogLevel.Warn, refusedCallText(backup.serviceLabel, call.status) + this.requestIdSuffix());
      return call.status == WasmResult.BadArgument ? Dispatch.UnknownCluster : Dispatch.Refused;
    }
    this.metrics().count(this.metrics().backupCalls);
    this.pendingToken = call.token;
    this.pendingCallBytes = <i64>headers.byteLength + <i64>bodySize;
    recordCall(this.root.id, call.token, this.id);
    this.metrics().pendingBackupCalls.up();
    return Dispatch.Sent;
  }

  // --- the cooldown (core/cooldown.ts): each service's answers, and skipping the cooling ones ---

  /**
   * The primary's answer, for its cooldown: asked on an error, or while some service is tracked (a
   * healthy request with nothing tracked reads nothing here).
   */
  protected notePrimary(status: i32, origin: Origin, error: bool): void {
    const settings = this.fallbackRoot.config!.cooldown;
    // The cooldown hears of errors, and of answers only while some service is tracked.
    if (settings === null || (!error && !cooldownStore.anyTracked)) return;
    const nowMs = host.monotonicMs();
    if (origin == Origin.Cooling) {
      this.endSkip();
      cooldownStore.countSkipped();
      return;
    }
    // Only the model service's own answers and the router's replies for it say how it is.
    if (origin != Origin.Backend && origin != Origin.UpstreamFailure) return;
    if (!countsAsDown(status)) {
      if (status < 400) cooldownStore.answered(this.primaryService(), nowMs);
      return;
    }
    const retryAfter = origin == Origin.Backend && (status == 429 || status == 503)
      ? retryAfterMs(host.getHeader(MapType.HttpResponseHeaders, "retry-after"), host.wallClockMs()) : -1;
    cooldownStore.failed(this.primaryService(), settings, nowMs, retryAfter);
  }

  /** The primary failed without an answer the headers could show (its first packet was late). */
  protected notePrimaryTimedOut(nowMs: u64): void {
    const settings = this.fallbackRoot.config!.cooldown;
    if (settings !== null) cooldownStore.failed(this.primaryService(), settings, nowMs, -1);
  }

  /** Whether the current backup cools and is not called (the chain's last is always called). */
  protected backupCools(machine: FallbackMachine): bool {
    const settings = this.fallbackRoot.config!.cooldown;
    const backup = machine.currentBackup!;
    const last = machine.policy.backups[machine.policy.backups.length - 1];
    if (settings === null || !cooldownStore.anyTracked || backup === last) return false;
    if (cooldownStore.admit(backup.serviceLabel, host.monotonicMs(), <u64>backup.timeoutMs) != Admission.Skip) return false;
    cooldownStore.countSkipped();
    return true;
  }

  /** A backup's answer (`status` 0: none; `headerMap`: the kept answer's, wire format), for its cooldown. */
  protected noteBackup(backup: Backup, status: i32, headerMap: ArrayBuffer | null): void {
    const settings = this.fallbackRoot.config!.cooldown;
    if (settings === null) return;
    const nowMs = host.monotonicMs();
    if (!countsAsDown(status)) {
      if (status < 400) cooldownStore.answered(backup.serviceLabel, nowMs);
      return;
    }
    const retryAfter = headerMap !== null && (status == 429 || status == 503)
      ? retryAfterMs(findSerializedHeader(changetype<usize>(headerMap), headerMap.byteLength, "retry-after"), host.wallClockMs()) : -1;
    cooldownStore.failed(backup.serviceLabel, settings, nowMs, retryAfter);
  }

  protected startedFallback(machine: FallbackMachine): void {
    // A late first packet is the primary's failure too (an answer's status was noted at its headers).
    if (machine.triggerKind == TriggerKind.FirstPacketTimeout) this.notePrimaryTimedOut(host.monotonicMs());
    this.metrics().count(this.metrics().started);
    this.metrics().countTrigger(machine.triggerKind);
    for (let i = 1; i < machine.primaryTries; i++) this.metrics().count(this.metrics().retries);
  }

  protected exhausted(machine: FallbackMachine, what: string): void {
    this.metrics().count(this.metrics().exhausted);
    this.logDecision(machine, EVERY_SERVICE_FAILED + ", the client gets " + what, false);
  }

  /** A response that would trigger a fallback, declined (not replayable, or intercepted). */
  protected logDeclined(machine: FallbackMachine, status: i32, details: string | null): void {
    if (machine.declinedIntercepted) {
      if (!host.logs(LogLevel.Debug)) return;
      const from = details === null ? "" : " (" + details + ")";
      host.logBytes(LogLevel.Debug, "status=" + status.toString() + from + " passed through: " + machine.declined + this.requestIdSuffix());
      return;
    }
    this.metrics().count(this.metrics().notReplayable);
    // Over-budget refusals come in floods; the root has logged them already, rate-limited.
    const level = this.refusedOverBudget ? LogLevel.Debug : LogLevel.Info;
    if (!host.logs(level)) return;
    host.logBytes(level, "status=" + status.toString() + " passed through: " + machine.declined + this.requestIdSuffix());
  }

  /** An error in neverTrigger goes to the client as it came, with the report header saying why. */
  protected reportNeverTriggered(machine: FallbackMachine): void {
    host.replaceHeader(MapType.HttpResponseHeaders, HEADER_DECLINED, machine.heldError.neverTriggered);
    this.metrics().count(this.metrics().neverTrigger);
    if (!host.logs(LogLevel.Info)) return;
    host.logBytes(LogLevel.Info, "status=" + machine.primaryStatus.toString() + " passed through unreplayed: " +
      machine.heldError.neverTriggered + " (its error is in neverTrigger)" + this.requestIdSuffix());
  }

  /**
   * The decision, in the streamed mode's words too (fallback_outcome.ts): filter state for the access
   * log, and a line at info (Envoy's default level) with the request id, looked up only when Envoy would write it.
   * `attemptsText`: formatAttempts(machine.attempts), when the caller has it already.
   */
  protected logDecision(machine: FallbackMachine, outcome: string, served: bool, attemptsText: string | null = null): void {
    this.countBackups(machine, served);
    const text = outcomeText(outcome, machine.trigger, attemptsText !== null ? attemptsText : formatAttempts(machine.attempts));
    publishOutcome(text);
    if (!host.logs(LogLevel.Info)) return;
    host.logBytes(LogLevel.Info, outcomeLogLine(text, this.requestIdSuffix()));
  }

  /** Each backup tried, on its own counters (the streamed mode's names): the one that served answered, the others called failed. */
  protected countBackups(machine: FallbackMachine, served: bool): void {
    const metrics = this.metrics();
    const attempts = machine.attempts;
    for (let i = 1; i < attempts.length; i++) {
      const a = attempts[i];
      if (served && i == attempts.length - 1) metrics.count(metrics.backup(a.service).answered);
      else if (wasCalled(a.result) && a.result != RESULT_HEDGE_LOST) metrics.count(metrics.backup(a.service).failed);
    }
  }
}
