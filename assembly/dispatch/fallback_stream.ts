// The response side of one HTTP stream of the dispatch mode: it hands the primary's response to the
// FallbackMachine, carries out each Step with host calls (hold, dispatch, serve, resume, reply) and
// tears the stream down. The request side is request_keeper.ts; a backup call, backup_caller.ts; how
// an answer is written to the client, answer_delivery.ts.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType, StreamType, WasmResult } from "../abi/enums";
import { NO_PAIRS, serializedStatus, wellFormedPairs } from "../core/header_pairs";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { ContentCursor, HeldBody, checkedFor, heldErrorMeanings, judgeHeldBody, responseAnnouncesOver } from "../host/budgeted_reads";
import { FirstPacket } from "../core/config/config";
import { ERROR_BODY_READ_BYTES } from "../core/error_meaning";
import { REFUSED, UNKNOWN_CLUSTER, formatAttempts } from "../core/attempts";
import { FallbackMachine } from "../core/fallback_machine";
import { Phase, Step } from "../core/fallback_steps";
import { STREAM_ENDED_FIRST, isEnvoyNoAnswerReply, servedBy } from "../core/fallback_outcome";
import { Header } from "../core/headers";
import { Origin, TriggerKind, classifyOrigin, isMeaningStatus } from "../core/policy";
import { HEADER_MODEL, HEADER_SERVICE, HEADER_ATTEMPTS, HEADER_TRIGGER, addReportHeaders, askedModel, exhaustedErrorBody, reportPairs } from "../core/replay";
import { FallbackRoot } from "./fallback_root";
import { HIGRESS_HOLD_NOTE, NO_HEADERS } from "./request_keeper";
import { PauseEvidence } from "./header_pause";
import { Dispatch } from "./backup_caller";
import { RESULT_COOLING } from "../core/policy";
import { readsRetryAfter } from "../core/retry";
import { attemptCount } from "./primary_retry";
import { retryAfterMs } from "../core/retry_after";
import { AnswerDelivery, Answer, DECODED_HEADERS_FACTOR, FLOW_CONTROLLED_BODY_BYTES } from "./answer_delivery";

/** Set once the upstream response's last byte has arrived: the held primary response is complete. */
const BACKEND_LATENCY = host.propertyPath(["response", "backend_latency"]);
/** Who answered an error: Envoy's response code details (policy.ts classifyOrigin). */
const CODE_DETAILS = host.propertyPath(["response", "code_details"]);

export class FallbackStream extends AnswerDelivery {
  constructor(id: u32, root: FallbackRoot) {
    super(id, root);
  }

  /** teardown() has run. */
  private ended: bool = false;
  /** The held primary response was found complete in Envoy (notePrimaryBody). */
  private primaryComplete: bool = false;
  /** firstPacket "content": the held body's events judged so far (made at the first held chunk). */
  private contentCursor: ContentCursor | null = null;

  // --- the primary's response ---

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const machine = this.machine;
    if (machine === null) return HeadersAction.Continue;
    const status = host.responseStatus(MapType.HttpResponseHeaders);
    // Where the response came from, and the time, matter only for errors: no host calls otherwise.
    const error = status >= 400;
    const details = error ? host.getSharedStringPropertyAt(CODE_DETAILS) : null;
    const origin = error ? classifyOrigin(details) : Origin.Backend;
    if (error) this.followRoute(machine);
    // An error whose announced body is over the read's bound is decided by its status (one look, on 4xx only),
    // and so is any where Envoy was found to show no body to a filter paused at the headers.
    if (isMeaningStatus(status)) {
      machine.heldError.readable = this.fallbackRoot.pause.evidence != PauseEvidence.NotHonoured && !responseAnnouncesOver(ERROR_BODY_READ_BYTES);
    }
    // `retry`: the router's tries of the primary, read on an error only.
    if (error && machine.policy.retry !== null) machine.primaryTries = attemptCount();
    const declinedBefore = machine.declined.length > 0;
    const wasAwaitingUpstream = machine.awaitingUpstream;
    const step = machine.responseHeaders(status, origin, endOfStream,
      error || wasAwaitingUpstream ? host.monotonicMs() : 0);
    this.nameHopAttempt(machine);
    this.notePrimary(status, origin, error);
    // A held error that announces trailers may have no body to carry an answer (the ABI cannot add
    // a body at the trailers): asked only of an error held for a fallback.
    if (machine.awaitsHeldErrorBody) machine.primaryMayLackBody = host.getHeader(MapType.HttpResponseHeaders, "trailer") !== null;
    // A 2xx that came before a tick saw the upstream: its first-packet timer starts now.
    if (wasAwaitingUpstream && machine.firstPacketDeadlineMs != 0) this.arm(machine.firstPacketDeadlineMs);
    this.afterStep(machine);
    if (!declinedBefore && machine.declined.length > 0) this.logDeclined(machine, status, details);
    if (this.hop > 0 && (step == Step.Continue || step == Step.Hold)) this.reportHopAnswer(machine, status, step == Step.Continue);
    if (step == Step.Continue) return HeadersAction.Continue;
    if (step == Step.PrimaryWinsRace) {
      this.primaryWonRace(machine);
      this.release();
      return HeadersAction.Continue;
    }
    // A model service's error waits for its body to say what it means (or for the wait's end).
    if (machine.phase == Phase.ReadingErrorBody) this.arm(machine.heldError.deadlineMs);
    if (step == Step.Hold) return HeadersAction.StopIteration;
    // Held whole, the body waits in Envoy under flow control, unseen, and comes back to this filter
    // when the stream continues: there an answer can take its place.
    if (step == Step.HoldWhole) return HeadersAction.StopAllIterationAndWatermark;
    if (step == Step.WriteHeaders) {
      this.writeServedHeaders();
      return HeadersAction.Continue;
    }
    if (this.handsOff(machine, step, true)) return HeadersAction.Continue;
    // A fallback starts: carry it out; if it ends at once (no backup could be dispatched), the
    // primary response goes on from here (a hop's fallback started on the primary's route).
    if (this.hop == 0) this.startedFallback(machine);
    const last = this.perform(step, true);
    if (last == Step.ResumePrimary) return HeadersAction.Continue;
    return machine.primaryHeldWhole ? HeadersAction.StopAllIterationAndWatermark : HeadersAction.StopIteration;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataAction {
    const machine = this.machine;
    if (machine === null) return DataAction.Continue;
    if (machine.phase == Phase.ReadingErrorBody) {
      // Buffered (a few KiB at most) until its end or the bound, then read for its meaning.
      if (!endOfStream && bodySize < <u32>ERROR_BODY_READ_BYTES) return DataAction.StopIterationAndBuffer;
      this.heldErrorBytes = bodySize;
      const goesOn = this.decideHeldError(machine, heldErrorMeanings(this.share, bodySize), true, endOfStream);
      return goesOn ? DataAction.Continue : DataAction.StopIterationAndBuffer;
    }
    if (machine.phase == Phase.PassThrough) {
      if (this.idleWatched && (bodySize > 0 || endOfStream)) this.noteFlowingChunk(machine, endOfStream);
      return DataAction.Continue;
    }
    let first = bodySize > 0 || endOfStream;
    if (machine.phase == Phase.HoldingFirstPacket || (machine.racing && machine.primaryHeld)) {
      this.fallbackRoot.heldBodySeen = true;
      // With "content", an answer that ends is judged too: an error event then the end is an error.
      const mode = machine.policy.firstPacket;
      if (first && (mode == FirstPacket.Content || (mode == FirstPacket.Event && !endOfStream))) {
        const held = this.judgeHeld(bodySize, mode);
        if (held == HeldBody.Error) return this.streamError(machine);
        first = held != HeldBody.KeepAlivesOnly || endOfStream;
      }
    }
    const wasHolding = this.hop > 0 && machine.phase == Phase.HoldingFirstPacket;
    const step = machine.responseBody(first);
    if (step == Step.PrimaryWinsRace) {
      this.primaryWonRace(machine);
      this.release();
    }
    if (wasHolding && machine.phase == Phase.PassThrough) this.settleHop(machine, machine.primaryStatus);
    this.afterStep(machine);
    // The first packet went on: from now the answer flows, watched for silence (streamIdleTimeout).
    if (machine.phase == Phase.PassThrough && this.idleWatched && first) this.noteFlowingChunk(machine, endOfStream);
    if (step == Step.WriteBody || step == Step.DropChunk) {
      // The chunk at hand is replaced, so nothing the host holds is written after the callback
      // (a later write could only reach Envoy's buffer, whose limit would turn a large answer
      // into a 500). The first chunk carries the whole answer; what follows of the primary is dropped.
      const served = this.served;
      const write = step == Step.WriteBody && served !== null;
      const result = host.setBufferBytes(BufferType.HttpResponseBody, 0, bodySize,
        write ? served!.body.ptr : 0, write ? served!.body.length : 0);
      if (result != WasmResult.Ok) {
        host.logBytes(LogLevel.Error, "the host refused the answer's body (status " + result.toString() + ")" + this.requestIdSuffix());
      }
      if (step == Step.WriteBody) this.release();
      return DataAction.Continue;
    }
    if (step == Step.HoldBuffered) return DataAction.StopIterationAndBuffer;
    // A held error body only waits, with flow control rather than a hard buffer limit.
    if (step == Step.Hold) return DataAction.StopIterationAndWatermark;
    return DataAction.Continue;
  }

  /**
   * What the held response body holds (firstPacket "event": more than keep-alives; "content": an
   * event with content, or an error). Without room in the budget to read it, it counts as the first
   * packet: the stream flows rather than being judged blind.
   */
  private judgeHeld(size: u32, mode: FirstPacket): HeldBody {
    if (mode == FirstPacket.Content && this.contentCursor === null) this.contentCursor = new ContentCursor();
    const held = judgeHeldBody(this.share, size, mode, this.contentCursor);
    if (held != HeldBody.OverBudget) return held;
    this.fallbackRoot.overBudget("a held response body of " + size.toString() + " bytes is not checked for " + checkedFor(mode) +
      "; it flows as the first packet", this.requestIdSuffix());
    return HeldBody.FirstPacket;
  }

  /**
   * firstPacket "content": the held 2xx's first event is an error. The fallback starts here, with the
   * primary's headers and body held; if no backup can be called, the primary's answer goes on.
   */
  private streamError(machine: FallbackMachine): DataAction {
    this.followRoute(machine);
    const step = machine.streamError(host.monotonicMs());
    this.afterStep(machine);
    if (step == Step.ReleasePrimary) return DataAction.Continue;
    this.startedFallback(machine);
    // In the body callback: a resumed primary goes on by this callback's answer, not by a continue call.
    const last = this.perform(step, true);
    if (last == Step.ResumePrimary) return DataAction.Continue;
    return DataAction.StopIterationAndWatermark;
  }

  onResponseTrailers(trailerCount: u32): HeadersAction {
    // Continuing from the trailers would release a held primary response too.
    const machine = this.machine;
    // An error body that ended with trailers is not read: its status decides.
    if (machine !== null && machine.phase == Phase.ReadingErrorBody) {
      return this.decideHeldError(machine, [], true, false) ? HeadersAction.Continue : HeadersAction.StopIteration;
    }
    if (machine !== null && machine.primaryHeld &&
        (machine.phase == Phase.HoldingFirstPacket || machine.phase == Phase.FallingBack)) {
      return HeadersAction.StopIteration;
    }
    // A swapped answer does not carry the primary's trailers.
    if (machine !== null && machine.phase == Phase.Answering) host.setHeaders(MapType.HttpResponseTrailers, []);
    return HeadersAction.Continue;
  }

  /** The root's tick found this stream's deadline passed: the request hold's, or the first packet's. */
  onDeadline(nowMs: u64): void {
    this.deadlineArmed = false;
    const watch = this.idleWatch;
    if (watch !== null) {
      this.checkIdle(watch, nowMs);
      return;
    }
    const machine = this.machine;
    if (machine === null) return;
    if (this.holdingRequest) {
      this.releaseHeldRequest(machine);
      return;
    }
    if (machine.phase == Phase.ReadingErrorBody) {
      // No body came in time (stalled, or Envoy shows none to a paused filter): the status decides.
      this.decideHeldError(machine, [], false, false);
      return;
    }
    if (machine.awaitingUpstream) {
      this.watchUpstream(machine, nowMs);
      return;
    }
    if (machine.retryAtMs != 0) {
      this.perform(machine.retryDue(nowMs), false);
      return;
    }
    this.followRoute(machine);
    this.offerHedge(machine);
    const step = machine.firstPacketTimedOut(nowMs);
    this.nameHopAttempt(machine);
    if (step == Step.ReleasePrimary) {
      this.afterStep(machine);
      host.continueStream(StreamType.Response);
      return;
    }
    // The final route's rule times the first packet longer: wait on.
    if (machine.firstPacketDeadlineMs != 0) this.arm(machine.firstPacketDeadlineMs);
    if (step == Step.Continue) return;
    if (machine.timedOutAfterHeaders && !this.fallbackRoot.heldBodySeen) {
      // Without allow_on_headers_stop_iteration Envoy shows no body to a filter that paused at the
      // headers, and every healthy stream would end up here: say so where operators look.
      host.logBytes(LogLevel.Info, "first packet timeout after 2xx headers, and no held response has shown a body " +
        "on this worker yet: if healthy streams fall back too, set allow_on_headers_stop_iteration: true " +
        "in the wasm plugin config" + HIGRESS_HOLD_NOTE + this.requestIdSuffix());
    }
    if (this.handsOff(machine, step, false)) return;
    if (this.hop == 0) this.startedFallback(machine);
    this.perform(step, false);
    this.takeHedgePlace(machine);
  }

  /**
   * The held error's meaning is known (`meanings`; none when its body was not read): it falls back,
   * or it goes on to the client, with the report header when neverTrigger stopped it. True when
   * the primary's response goes on; `inCallback`: a callback of the response that continues it by
   * its return value (else the stream is continued here); `wholeBody`: its whole body is buffered.
   */
  private decideHeldError(machine: FallbackMachine, meanings: string[], inCallback: bool, wholeBody: bool): bool {
    const step = machine.errorBodyRead(meanings, host.monotonicMs(), wholeBody);
    this.afterStep(machine);
    if (step == Step.Continue) {
      if (machine.heldError.neverTriggered.length > 0) this.reportNeverTriggered(machine);
      else if (machine.declined.length > 0) this.logDeclined(machine, machine.primaryStatus, null);
      if (!inCallback) host.continueStream(StreamType.Response);
      return true;
    }
    this.startedFallback(machine);
    return this.perform(step, inCallback) == Step.ResumePrimary;
  }

  // --- backup calls ---

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    const machine = this.machine;
    if (machine === null || token != this.pendingToken) return;
    this.pendingToken = 0;
    this.metrics().pendingBackupCalls.down();
    this.notePrimaryBody(machine);
    let status = 0;
    let envoyNoAnswer = false;
    if (headerCount > 0) {
      const given = host.getHeadersRaw(MapType.HttpCallResponseHeaders);
      // Kept as it came (read without decoding), or as no headers at all when malformed (never from Envoy).
      const raw = wellFormedPairs(changetype<usize>(given), given.byteLength) ? given : NO_PAIRS;
      status = serializedStatus(changetype<usize>(raw), raw.byteLength);
      // The answer is kept until it is served or replaced (up to Envoy's 32 MiB), so it is budgeted.
      const bytes = <i64>bodySize + DECODED_HEADERS_FACTOR * given.byteLength;
      if (status > 0 && !this.share.tryTake(bytes)) {
        this.fallbackRoot.overBudget("a " + status.toString() + " answer of " + bodySize.toString() + " bytes from " +
          machine.currentBackup!.serviceLabel + " is not kept; the chain goes on", this.requestIdSuffix());
        this.perform(machine.overBudget(host.monotonicMs()), false);
        return;
      }
      if (status > 0) {
        this.dropAnswer();
        const body = new ByteSink();
        host.takeBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize, body);
        this.lastAnswer = new Answer(status, raw, body, bytes);
        envoyNoAnswer = isEnvoyNoAnswerReply(status, body.ptr, body.length);
      }
    }
    // A status > 0 was kept as the last answer just above (its Retry-After is read there).
    const answer = this.lastAnswer;
    this.noteBackup(machine.currentBackup!, envoyNoAnswer ? 0 : status, answer === null ? null : answer.headerMap);
    const now = host.monotonicMs();
    const retryAfter = machine.policy.retry !== null && readsRetryAfter(status) && answer !== null && !envoyNoAnswer
      ? retryAfterMs(answer.header("retry-after"), host.wallClockMs()) : -1;
    this.perform(machine.backupAnswered(status, now, envoyNoAnswer, retryAfter, <u64>this.id ^ now), false);
  }

  onDone(): void {
    this.teardown();
  }

  /**
   * The one teardown path, whatever the ending (proxy_on_log or proxy_on_delete, whichever comes
   * first; it runs once): the deadline, any pending call, every copy and all the
   * stream holds of the memory budget are released.
   */
  private teardown(): void {
    if (this.ended) return;
    this.ended = true;
    this.disarm();
    this.endProbe();
    this.endSkip();
    this.abandonPendingCall();
    const machine = this.machine;
    if (machine !== null && machine.phase == Phase.FallingBack) {
      // The stream ended under a running chain: the client went away, or Envoy answered for the
      // held primary (its route timeout, or a reset after its headers) before a backup did.
      this.metrics().count(this.metrics().preempted);
      this.logDecision(machine, STREAM_ENDED_FIRST, false);
    }
    if (machine !== null) machine.finish();
    this.leaveHedgePlace();
    this.release();
    this.requestHeaders = NO_HEADERS;
    this.share.releaseAll();
    this.fallbackRoot.streamEnded();
  }

  // --- carrying out steps ---

  /** After every step: a settled stream lets its deadline and its copies go. */
  private afterStep(machine: FallbackMachine): void {
    if (!machine.racing) this.leaveHedgePlace();
    if (machine.firstPacketDeadlineMs == 0 && !machine.awaitingUpstream && machine.phase != Phase.ReadingErrorBody && machine.retryAtMs == 0) this.disarm();
    if (machine.phase == Phase.PassThrough) this.release();
  }

  /** Carries out `step` and any steps it leads to at once; returns the last one. */
  private perform(step: Step, inResponseHeaders: bool): Step {
    const machine = this.machine!;
    const hide = machine.policy.hideTopology;
    while (step == Step.Dispatch) {
      // A retry is the same service again, after its wait: not skipped for the cooldown its own answer may have begun.
      if (machine.retriesOnService == 0 && this.backupCools(machine)) { step = machine.dispatchFailed(RESULT_COOLING, host.monotonicMs()); continue; }
      const sent = this.dispatch(machine, machine.currentBackup!, machine.callTimeoutMs);
      if (sent == Dispatch.Sent) return step;
      this.notePrimaryBody(machine);
      const now = host.monotonicMs();
      if (sent == Dispatch.OverBudget) step = machine.overBudget(now);
      else if (sent == Dispatch.NotRewritable) step = machine.notRewritable(now);
      else step = machine.dispatchFailed(sent == Dispatch.UnknownCluster ? UNKNOWN_CLUSTER : REFUSED, now);
    }
    if (step == Step.WaitRetry) {
      this.metrics().count(this.metrics().retries);
      this.arm(machine.retryAtMs);
    } else if (step == Step.ServeBackup) {
      const answer = this.lastAnswer!;
      const answered = machine.attempts[machine.attempts.length - 1];
      // Formatted once, for the report header and the decision's outcome.
      const tried = formatAttempts(machine.attempts);
      // The report (as addReportHeaders writes it), then who answered: name, value, ... in one list.
      const model = askedModel(answered.model, this.requestBody.ptr, this.requestBody.length);
      const extra: StaticArray<string> = hide ? [HEADER_TRIGGER, machine.trigger, HEADER_MODEL, model]
        : [HEADER_TRIGGER, machine.trigger, HEADER_ATTEMPTS, tried, HEADER_SERVICE, answered.service, HEADER_MODEL, model];
      this.serve(machine, this.takeAnswer(answer, extra));
      this.metrics().count(this.metrics().servedByBackup);
      if (machine.backupWonRace) {
        const hedges = this.fallbackRoot.hedgeCounters();
        hedges.count(hedges.wonByBackup);
      }
      this.logDecision(machine, servedBy(answered.service, answered.model), true, tried);
    } else if (step == Step.ServeLastError) {
      const answer = this.lastAnswer!;
      this.serve(machine, this.takeAnswer(answer, reportPairs(machine.trigger, hide ? "" : formatAttempts(machine.attempts), hide)));
      this.exhausted(machine, "the last backup error (" + answer.status.toString() + ")");
    } else if (step == Step.ResumePrimary) {
      // The held primary response goes to the client, marked with what was tried.
      host.replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, machine.trigger);
      if (!hide) host.replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(machine.attempts));
      if (!inResponseHeaders) host.continueStream(StreamType.Response);
      this.exhausted(machine, "the primary's own response (" + machine.primaryStatus.toString() + ")");
      this.release();
    } else if (step == Step.ReplyError) {
      const status = machine.triggerKind == TriggerKind.FirstPacketTimeout ? 504 : 502;
      const headers = addReportHeaders([new Header("content-type", "application/json")], machine.trigger, machine.attempts, hide);
      const body = exhaustedErrorBody(status, machine.attempts, hide);
      this.reply(status, headers, changetype<usize>(body), body.byteLength);
      this.exhausted(machine, "a " + status.toString() + " error of its own");
    }
    return step;
  }

  /**
   * Before an answer may be served: has the held primary error's response all reached Envoy? Envoy
   * knows `response.backend_latency` only once the upstream's last byte came; until then its body is
   * slow or stalled, and an answer swapped into it would wait for it (fallbackDeadline or not).
   * Asked only on a fallback, and no more once the response is complete.
   */
  private notePrimaryBody(machine: FallbackMachine): void {
    if (!machine.awaitsHeldErrorBody || this.primaryComplete) return;
    this.primaryComplete = host.hasPropertyAt(BACKEND_LATENCY);
    // A large error is incomplete because Envoy stopped reading it at its buffer limit while it is
    // held (flow control), not because it is slow: it flows as soon as the stream continues.
    machine.primaryBodyPending = !this.primaryComplete && !this.announcesLargeBody();
  }

  private announcesLargeBody(): bool {
    return responseAnnouncesOver(FLOW_CONTROLLED_BODY_BYTES);
  }

}
