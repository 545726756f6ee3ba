// The glue between one HTTP stream's host callbacks and its FallbackMachine: it keeps the copy of
// the request, asks the machine what to do, and carries out each Step with host calls.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType, StreamType, WasmResult } from "./abi/enums";
import { HttpContext } from "./abi/context";
import { deserializeHeaders, findSerializedHeader, serializeResponseHeaders } from "./abi/header_pairs";
import * as host from "./abi/hostcalls";
import { abandonCall, recordCall } from "./abi/registry";
import { holdAbandonedCall } from "./abandoned_calls";
import { ByteSink } from "./byte_sink";
import { HeldBody, appendRequestChunk, checkHeldResponseBody } from "./budgeted_reads";
import { refusedCallText } from "./call_refusal";
import { BudgetShare } from "./memory_budget";
import { Backup, Config, Policy } from "./config";
import { Delivery, FallbackMachine, Phase, REFUSED, Step, UNKNOWN_CLUSTER, formatAttempts, wasCalled } from "./fallback_machine";
import { EVERY_SERVICE_FAILED, STREAM_ENDED_FIRST, isEnvoyNoAnswerReply, outcomeLogLine, outcomeText, servedBy } from "./fallback_outcome";
import { publishOutcome } from "./outcome_state";
import { Header, findHeader } from "./headers";
import { tellFirstPacketTimed } from "./first_packet_signal";
import { PauseEvidence, WITHHELD_BODY_MS } from "./header_pause";
import { isStreamingRequest } from "./json_scan";
import { RewriteOutcome, planRewrite, writeRewrite } from "./model_rewrite";
import { Metrics } from "./metrics";
import { OWN_REPLY_DETAILS, Origin, TriggerKind, classifyOrigin } from "./policy";
import {
  HEADER_MODEL, HEADER_SERVICE, HEADER_ATTEMPTS, HEADER_TRIGGER, addReportHeaders, askedModel,
  backupRequestPairs, clientResponseHeaders, exhaustedErrorBody, parseStatus,
} from "./replay";
import { FallbackRoot, REQUEST_HOLD_MS, TICK_PERIOD_MS } from "./root_context";

/**
 * An upgrade (WebSocket) or CONNECT stream, by its serialized request headers: a tunnel, not a
 * request to replay. The filter stays out of it (holding it would also stall it: its request never
 * ends before the response).
 */
function isTunnel(headers: ArrayBuffer, method: string | null): bool {
  if (method !== null && method == "CONNECT") return true;
  return findSerializedHeader(changetype<usize>(headers), headers.byteLength, "upgrade") !== null;
}

/** The request headers' place before a request is kept, and after its teardown. */
const NO_HEADERS = new ArrayBuffer(0);

/** A backup's HTTP answer, kept until it is served or replaced by a later one. */
class Answer {
  /** `bytes`: what it holds of the memory budget. */
  constructor(public status: i32, public headers: Header[], public body: ByteSink, public bytes: i64) {}
}

// Higress has no allow_on_headers_stop_iteration: its host honours a header pause for modules that
// declare ABI 0.2.100, as this one does (abi/exports.ts).
const HIGRESS_HOLD_NOTE = " (Higress has no such field and needs none: its host honours the pause for this module's ABI 0.2.100)";

/** What became of a dispatch. */
const enum Dispatch {
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

/** The `content-length` of serialized request headers; -1 when absent or not a plain decimal. */
function contentLength(headers: ArrayBuffer): i64 {
  const value = findSerializedHeader(changetype<usize>(headers), headers.byteLength, "content-length");
  if (value === null || value.length == 0 || value.length > 15) return -1;
  let n: i64 = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** A header map's decoded copy (Header strings are UTF-16) weighs about this many times its wire bytes. */
const DECODED_HEADERS_FACTOR: i64 = 3;

/** Readable once Envoy's router has picked the primary's upstream host. */
const UPSTREAM_ADDRESS = host.propertyPath(["upstream", "address"]);
/**
 * A held error announcing a body larger than this is taken to be stopped by Envoy's buffer limit
 * (flow control), not slow: Higress's default per-connection limit is 32 KiB, Envoy's 1 MiB.
 */
const FLOW_CONTROLLED_BODY_BYTES: i32 = 16 * 1024;
/** Set once the upstream response's last byte has arrived: the held primary response is complete. */
const BACKEND_LATENCY = host.propertyPath(["response", "backend_latency"]);
/** Who answered an error: Envoy's response code details (policy.ts classifyOrigin). */
const CODE_DETAILS = host.propertyPath(["response", "code_details"]);

export class FallbackStream extends HttpContext {
  private machine: FallbackMachine | null = null;
  private requestHeaders: ArrayBuffer = NO_HEADERS;
  private requestBody: ByteSink = new ByteSink();
  private pendingToken: u32 = 0;
  /** The request bytes Envoy copied for the pending call (its headers and body). */
  private pendingCallBytes: i64 = 0;
  private lastAnswer: Answer | null = null;
  /** What this stream holds of its VM's memory budget; all of it goes back in teardown(). */
  private share: BudgetShare;
  /** A request copy was refused for want of memory (logged by the root, rate-limited). */
  private refusedOverBudget: bool = false;
  /** teardown() has run. */
  private ended: bool = false;
  /** The answer as the client gets it (report headers added), while it is written into the response. */
  private served: Answer | null = null;
  /** The request is held until its body is copied (see onRequestHeaders). */
  private holdingRequest: bool = false;
  /** ... until its body is copied (backendErrorsOnly: false), not only until its first chunk (a probe). */
  private holdUntilBody: bool = false;
  /** ... and some of its body has reached this filter while held. */
  private heldRequestBodySeen: bool = false;
  /** This request is the worker's probe of Envoy's header pause (header_pause.ts). */
  private probing: bool = false;
  /** When a hold ended without having seen any body (0 = it did not): body right after it was withheld. */
  private releasedBlindAtMs: u64 = 0;
  /** The body outgrew maxRequestBodyBytes and its copy was dropped. */
  private bodyDropped: bool = false;
  /** The first-packet deadline is armed in the root. */
  private deadlineArmed: bool = false;
  /** The held primary response was found complete in Envoy (notePrimaryBody). */
  private primaryComplete: bool = false;

  constructor(id: u32, root: FallbackRoot) {
    super(id, root);
    this.share = new BudgetShare(root.budget);
  }

  private get fallbackRoot(): FallbackRoot {
    return this.root as FallbackRoot;
  }

  // --- request phase: keep a copy ---

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const config = this.fallbackRoot.config;
    if (config === null) return HeadersAction.Continue;
    let policy: Policy = config.global;
    if (config.rules.length > 0) {
      const authority = host.getHeader(MapType.HttpRequestHeaders, ":authority");
      policy = this.ruleFor(config, authority === null ? "" : authority);
    }
    if (policy.backups.length == 0) return HeadersAction.Continue;
    const requestHeaders = host.getHeadersRaw(MapType.HttpRequestHeaders);
    const method = findSerializedHeader(changetype<usize>(requestHeaders), requestHeaders.byteLength, ":method");
    if (isTunnel(requestHeaders, method)) return HeadersAction.Continue;
    if (!this.share.tryTake(requestHeaders.byteLength)) {
      this.fallbackRoot.overBudget("a request's headers (" + requestHeaders.byteLength.toString() +
        " bytes) are not kept; it passes through without fallback", this.requestIdSuffixOf(requestHeaders));
      return HeadersAction.Continue;
    }
    // Only model-API requests are replayed (methods, POST by default): a GET of /v1/models or
    // /v1/files answered by a backup would show the client the backup account's data.
    if (method === null || !policy.methods.includes(method)) return HeadersAction.Continue;
    const machine = new FallbackMachine(policy);
    this.machine = machine;
    this.requestHeaders = requestHeaders;
    this.requestBody.limit = <i32>policy.maxRequestBodyBytes;
    if (!endOfStream) this.reserveBody(machine);
    if (endOfStream) {
      machine.requestEnded(false);
      return HeadersAction.Continue;
    }
    // A gateway reply (a rate limiter or authorisation filter behind this one) comes at the
    // request's headers, and after it Envoy gives this filter no more of the body. When such replies
    // may trigger a fallback, the request waits here until its body has been copied, up to
    // maxHeldRequestBytes (beyond Envoy's buffer limit it would stop reading and never finish), and
    // for at most REQUEST_HOLD_MS (a slow client, or an Envoy that shows no body to a filter paused at
    // the headers: without allow_on_headers_stop_iteration the body would never come).
    if (!policy.backendErrorsOnly) {
      this.holdUntilBody = true;
      return this.holdRequest();
    }
    // A first-packet timeout holds 2xx headers, which works only where Envoy honours a pause: the
    // first such request on the worker is held until its first body chunk to find out (probe).
    if (policy.firstPacketTimeoutMs > 0 && this.fallbackRoot.pause.wantsProbe) {
      this.probing = true;
      this.fallbackRoot.pause.probing = true;
      return this.holdRequest();
    }
    return HeadersAction.Continue;
  }

  private holdRequest(): HeadersAction {
    this.holdingRequest = true;
    this.arm(host.monotonicMs() + REQUEST_HOLD_MS);
    return HeadersAction.StopIteration;
  }

  /**
   * A content-length over maxRequestBodyBytes is known not to be replayable before the body comes.
   * Otherwise it only caps the copy's growth: the copy grows with the bytes that actually arrived
   * (budgeted as it grows, budgeted_reads.ts), so an upload that announces much and sends little
   * holds what it sent, not what it announced; a body that comes whole in one chunk is still
   * allocated once, at its exact size.
   */
  private reserveBody(machine: FallbackMachine): void {
    const length = contentLength(this.requestHeaders);
    if (length <= 0) return;
    if (length > <i64>machine.policy.maxRequestBodyBytes) {
      machine.refuseReplay("request body over maxRequestBodyBytes (" + machine.policy.maxRequestBodyBytes.toString() + ")");
      return;
    }
    this.requestBody.limit = <i32>length;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (this.releasedBlindAtMs != 0) this.judgeBlindRelease();
    const machine = this.machine;
    if (machine === null || machine.phase != Phase.Request) return DataAction.Continue;
    if (machine.requestBodyChunk(bodySize)) this.copyChunk(machine, bodySize);
    if (!machine.replayable && !this.bodyDropped) {
      this.bodyDropped = true;
      this.clearBody();
      if (host.logs(LogLevel.Debug)) {
        host.logBytes(LogLevel.Debug, "not keeping the request for replay: " + machine.notReplayableReason + this.requestIdSuffix());
      }
    }
    if (this.holdingRequest) {
      this.heldRequestBodySeen = true;
      this.fallbackRoot.pause.honoured();
      if (this.holdUntilBody && !endOfStream && machine.replayable && this.requestBody.length < <i32>machine.policy.maxHeldRequestBytes) {
        return DataAction.StopIterationAndWatermark;
      }
      this.stopHolding();
    }
    if (endOfStream) this.endRequest(machine);
    return DataAction.Continue;
  }

  /** Appends a body chunk to the copy, within the budget (budgeted_reads.ts). */
  private copyChunk(machine: FallbackMachine, size: u32): void {
    if (!appendRequestChunk(this.requestBody, this.share, size)) {
      this.refuseOverBudget(machine, "a request body past " + this.requestBody.length.toString() + " bytes is not kept");
    }
  }

  /** The body is complete: a copy that grew by doubling gives its spare capacity back (shrunk in place). */
  private trimBody(): void {
    const sink = this.requestBody;
    const spare = sink.capacity - sink.length;
    if (spare <= 0 || sink.length == 0) return;
    sink.resize(sink.length);
    this.share.give(spare);
  }

  private refuseOverBudget(machine: FallbackMachine, what: string): void {
    this.refusedOverBudget = true;
    machine.refuseReplay("over the memory budget (maxKeptBytesPerWorker)");
    this.fallbackRoot.overBudget(what + "; it passes through without fallback", this.requestIdSuffix());
  }

  private stopHolding(): void {
    this.holdingRequest = false;
    this.endProbe();
    this.disarm();
  }

  private endProbe(): void {
    if (!this.probing) return;
    this.probing = false;
    this.fallbackRoot.pause.probing = false;
  }

  /**
   * Body came after a hold that saw none ended: at once (Envoy hands the filter what it buffered when
   * it continues) means Envoy withheld it during the pause; later, a slow client (nothing known).
   */
  private judgeBlindRelease(): void {
    const withheld = host.monotonicMs() - this.releasedBlindAtMs <= WITHHELD_BODY_MS;
    this.releasedBlindAtMs = 0;
    if (!withheld) return;
    if (this.fallbackRoot.pause.notHonoured(REQUEST_HOLD_MS, HIGRESS_HOLD_NOTE, this.requestIdSuffix())) {
      this.metrics().count(this.metrics().pauseNotHonoured);
    }
  }

  onRequestTrailers(trailerCount: u32): HeadersAction {
    const machine = this.machine;
    // Continuing from the trailers releases a held request too.
    if (this.holdingRequest) this.stopHolding();
    if (machine !== null) this.endRequest(machine);
    return HeadersAction.Continue;
  }

  private endRequest(machine: FallbackMachine): void {
    this.trimBody();
    // The body is scanned for "stream": true only when a first-packet timeout could use it.
    if (machine.policy.firstPacketTimeoutMs == 0 || !machine.replayable) {
      machine.requestEnded(false);
      return;
    }
    machine.requestEnded(isStreamingRequest(this.requestBody.ptr, this.requestBody.length));
    if (!machine.awaitingUpstream) return;
    // Where Envoy does not honour a pause, held 2xx headers would never see their body: not held.
    if (this.fallbackRoot.pause.evidence == PauseEvidence.NotHonoured) machine.holdsFirstPacketHeaders = false;
    // Its first packet is timed: the primary guard, if any, holds its 2xx headers for it.
    tellFirstPacketTimed(machine.policy.keepAliveIsNotFirstPacket);
    this.watchUpstream(machine, host.monotonicMs());
  }

  /**
   * The first-packet timer counts from when the request left for the primary. A downstream filter
   * gets no callback when Envoy's router picks the upstream, but `upstream.address` becomes readable
   * then: read it now (usually it is already there), else again on each tick until it appears or
   * the stream ends (a filter behind this one, such as ext_authz, still holds the request).
   */
  private watchUpstream(machine: FallbackMachine, nowMs: u64): void {
    if (host.getPropertyAt(UPSTREAM_ADDRESS) !== null) {
      machine.upstreamStarted(nowMs);
      this.arm(machine.firstPacketDeadlineMs);
    } else {
      this.arm(nowMs + TICK_PERIOD_MS);
    }
  }

  // --- the primary's response ---

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const machine = this.machine;
    if (machine === null) return HeadersAction.Continue;
    const status = host.responseStatus(MapType.HttpResponseHeaders);
    // Where the response came from, and the time, matter only for errors: no host calls otherwise.
    const error = status >= 400;
    const details = error ? host.getStringPropertyAt(CODE_DETAILS) : null;
    const origin = error ? classifyOrigin(details) : Origin.Backend;
    if (error) this.followRoute(machine);
    const declinedBefore = machine.declined.length > 0;
    const wasAwaitingUpstream = machine.awaitingUpstream;
    const step = machine.responseHeaders(status, origin, endOfStream,
      error || wasAwaitingUpstream ? host.monotonicMs() : 0);
    // A held error that announces trailers may have no body to carry an answer (the ABI cannot add
    // a body at the trailers): asked only of an error held for a fallback.
    if (machine.awaitsHeldErrorBody) machine.primaryMayLackBody = host.getHeader(MapType.HttpResponseHeaders, "trailer") !== null;
    // A 2xx that came before a tick saw the upstream: its first-packet timer starts now.
    if (wasAwaitingUpstream && machine.firstPacketDeadlineMs != 0) this.arm(machine.firstPacketDeadlineMs);
    this.afterStep(machine);
    if (!declinedBefore && machine.declined.length > 0) this.logDeclined(machine, status, details);
    if (step == Step.Continue) return HeadersAction.Continue;
    if (step == Step.Hold) return HeadersAction.StopIteration;
    // Held whole, the body waits in Envoy under flow control, unseen, and comes back to this filter
    // when the stream continues: there an answer can take its place.
    if (step == Step.HoldWhole) return HeadersAction.StopAllIterationAndWatermark;
    if (step == Step.WriteHeaders) {
      this.writeServedHeaders();
      return HeadersAction.Continue;
    }
    // A fallback starts: carry it out; if it ends at once (no backup could be dispatched), the
    // primary response goes on from here.
    this.startedFallback(machine);
    const last = this.perform(step, true);
    if (last == Step.ResumePrimary) return HeadersAction.Continue;
    return machine.primaryHeldWhole ? HeadersAction.StopAllIterationAndWatermark : HeadersAction.StopIteration;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataAction {
    const machine = this.machine;
    if (machine === null || machine.phase == Phase.PassThrough) return DataAction.Continue;
    let first = bodySize > 0 || endOfStream;
    if (machine.phase == Phase.HoldingFirstPacket) {
      this.fallbackRoot.heldBodySeen = true;
      if (first && machine.policy.keepAliveIsNotFirstPacket && !endOfStream) {
        first = this.heldIsFirstPacket(bodySize);
      }
    }
    const step = machine.responseBody(first);
    this.afterStep(machine);
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
   * Whether the held response body holds more than keep-alives. Without room in the budget to read
   * it, it counts as the first packet: the stream flows rather than being judged blind.
   */
  private heldIsFirstPacket(size: u32): bool {
    const held = checkHeldResponseBody(this.share, size);
    if (held == HeldBody.OverBudget) {
      this.fallbackRoot.overBudget("a held response body of " + size.toString() +
        " bytes is not checked for keep-alives; it flows as the first packet", this.requestIdSuffix());
      return true;
    }
    return held == HeldBody.FirstPacket;
  }

  onResponseTrailers(trailerCount: u32): HeadersAction {
    // Continuing from the trailers would release a held primary response too.
    const machine = this.machine;
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
    const machine = this.machine;
    if (machine === null) return;
    if (this.holdingRequest) {
      this.releaseHeldRequest(machine);
      return;
    }
    if (machine.awaitingUpstream) {
      this.watchUpstream(machine, nowMs);
      return;
    }
    this.followRoute(machine);
    const step = machine.firstPacketTimedOut(nowMs);
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
    this.startedFallback(machine);
    this.perform(step, false);
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
      const raw = host.getHeadersRaw(MapType.HttpCallResponseHeaders);
      const headers = deserializeHeaders(changetype<usize>(raw), raw.byteLength);
      status = parseStatus(findHeader(headers, ":status"));
      // The answer is kept until it is served or replaced (up to Envoy's 32 MiB), so it is budgeted.
      const bytes = <i64>bodySize + DECODED_HEADERS_FACTOR * raw.byteLength;
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
        this.lastAnswer = new Answer(status, headers, body, bytes);
        envoyNoAnswer = isEnvoyNoAnswerReply(status, body.ptr, body.length);
      }
    }
    this.perform(machine.backupAnswered(status, host.monotonicMs(), envoyNoAnswer), false);
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
    if (this.pendingToken != 0) {
      // Envoy carries the call on: what it holds stays counted until its answer (abandoned_calls.ts).
      holdAbandonedCall(abandonCall(this.root.id, this.pendingToken), this.pendingCallBytes);
      this.pendingToken = 0;
      this.metrics().pendingBackupCalls.down();
    }
    const machine = this.machine;
    if (machine !== null && machine.phase == Phase.FallingBack) {
      // The stream ended under a running chain: the client went away, or Envoy answered for the
      // held primary (its route timeout, or a reset after its headers) before a backup did.
      this.metrics().count(this.metrics().preempted);
      this.logDecision(machine, STREAM_ENDED_FIRST, false);
    }
    if (machine !== null) machine.finish();
    this.release();
    this.requestHeaders = NO_HEADERS;
    this.share.releaseAll();
    this.fallbackRoot.streamEnded();
  }

  // --- carrying out steps ---

  /** After every step: a settled stream lets its deadline and its copies go. */
  private afterStep(machine: FallbackMachine): void {
    if (machine.firstPacketDeadlineMs == 0 && !machine.awaitingUpstream) this.disarm();
    if (machine.phase == Phase.PassThrough) this.release();
  }

  /** The request hold's time is up: let the request go on as far as it has come. */
  private releaseHeldRequest(machine: FallbackMachine): void {
    this.holdingRequest = false;
    this.endProbe();
    if (!this.heldRequestBodySeen) this.releasedBlindAtMs = host.monotonicMs();
    host.continueStream(StreamType.Request);
  }

  private arm(deadlineMs: u64): void {
    this.fallbackRoot.armDeadline(this.id, deadlineMs);
    this.deadlineArmed = true;
  }

  private disarm(): void {
    if (!this.deadlineArmed) return;
    this.deadlineArmed = false;
    this.fallbackRoot.disarmDeadline(this.id);
  }

  /**
   * Drops the body copy and any kept answer: nothing will be replayed or served any more. The
   * header copy (small) stays for the request id in log lines.
   */
  private release(): void {
    this.clearBody();
    this.dropAnswer();
    this.dropServed();
  }

  private clearBody(): void {
    this.share.give(this.requestBody.capacity);
    this.requestBody.clear();
  }

  /** The kept answer with the headers the client gets; it takes over the answer's share of the budget. */
  private takeAnswer(answer: Answer, headers: Header[]): Answer {
    this.lastAnswer = null;
    answer.headers = headers;
    return answer;
  }

  private dropServed(): void {
    const served = this.served;
    if (served === null) return;
    this.share.give(served.bytes);
    served.body.clear();
    this.served = null;
  }

  private dropAnswer(): void {
    const answer = this.lastAnswer;
    if (answer === null) return;
    this.share.give(answer.bytes);
    answer.body.clear();
    this.lastAnswer = null;
  }

  /** Carries out `step` and any steps it leads to at once; returns the last one. */
  private perform(step: Step, inResponseHeaders: bool): Step {
    const machine = this.machine!;
    const hide = machine.policy.hideTopology;
    while (step == Step.Dispatch) {
      const sent = this.dispatch(machine, machine.currentBackup!, machine.callTimeoutMs);
      if (sent == Dispatch.Sent) return step;
      this.notePrimaryBody(machine);
      const now = host.monotonicMs();
      if (sent == Dispatch.OverBudget) step = machine.overBudget(now);
      else if (sent == Dispatch.NotRewritable) step = machine.notRewritable(now);
      else step = machine.dispatchFailed(sent == Dispatch.UnknownCluster ? UNKNOWN_CLUSTER : REFUSED, now);
    }
    if (step == Step.ServeBackup) {
      const answer = this.lastAnswer!;
      const answered = machine.attempts[machine.attempts.length - 1];
      const headers = addReportHeaders(clientResponseHeaders(answer.headers), machine.trigger, machine.attempts, hide);
      if (!hide) headers.push(new Header(HEADER_SERVICE, answered.service));
      headers.push(new Header(HEADER_MODEL, askedModel(answered.model, this.requestBody.ptr, this.requestBody.length)));
      this.serve(machine, this.takeAnswer(answer, headers));
      this.metrics().count(this.metrics().servedByBackup);
      this.logDecision(machine, servedBy(answered.service, answered.model), true);
    } else if (step == Step.ServeLastError) {
      const answer = this.lastAnswer!;
      this.serve(machine, this.takeAnswer(answer, addReportHeaders(clientResponseHeaders(answer.headers), machine.trigger, machine.attempts, hide)));
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
   * Dispatches the request to `backup`. A model override is written into a copy that lives only
   * while the host takes its own copy of it (budgeted, freed at once); a body it cannot be written
   * into is never sent to that backup (fail closed: the client's model would be served on the
   * backup's account). An unknown cluster or a call Envoy refused at once is not a backup call (not counted).
   */
  private dispatch(machine: FallbackMachine, backup: Backup, timeoutMs: u32): Dispatch {
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

  /**
   * Before an answer may be served: has the held primary error's response all reached Envoy? Envoy
   * knows `response.backend_latency` only once the upstream's last byte came; until then its body is
   * slow or stalled, and an answer swapped into it would wait for it (fallbackDeadline or not).
   * Asked only on a fallback, and no more once the response is complete.
   */
  private notePrimaryBody(machine: FallbackMachine): void {
    if (!machine.awaitsHeldErrorBody || this.primaryComplete) return;
    this.primaryComplete = host.getPropertyAt(BACKEND_LATENCY) !== null;
    // A large error is incomplete because Envoy stopped reading it at its buffer limit while it is
    // held (flow control), not because it is slow: it flows as soon as the stream continues.
    machine.primaryBodyPending = !this.primaryComplete && !this.announcesLargeBody();
  }

  private announcesLargeBody(): bool {
    const length = host.getHeader(MapType.HttpResponseHeaders, "content-length");
    return length !== null && (length.length > 9 || I32.parseInt(length) > FLOW_CONTROLLED_BODY_BYTES);
  }

  /** Carries an answer (headers as the client gets them) to the client the way the machine chose. */
  private serve(machine: FallbackMachine, answer: Answer): void {
    const delivery = machine.delivery;
    this.served = answer;
    if (delivery == Delivery.Direct) {
      this.reply(answer.status, answer.headers, answer.body.ptr, answer.body.length);
      return;
    }
    if (delivery == Delivery.SwapInPlace) {
      // The held primary becomes the answer; its body comes back to onResponseBody, which writes
      // the answer's body in its place.
      this.writeServedHeaders();
      host.continueStream(StreamType.Response);
      return;
    }
    // ThroughFilterChain: the local reply passes this filter's own callbacks, which write the answer
    // over whatever local_reply_config made of it. Its body is the answer's too, so that a body
    // callback follows the headers (and the answer arrives even if nothing rewrote it).
    const result = host.sendLocalResponse(answer.status, OWN_REPLY_DETAILS, answer.body.ptr, answer.body.length, answer.headers);
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the reply (status " + result.toString() + ")" + this.requestIdSuffix());
      this.release();
    }
  }

  /** The response headers become the served answer's: its status, its headers, nothing else. */
  private writeServedHeaders(): void {
    const served = this.served;
    if (served === null) return;
    const pairs = serializeResponseHeaders(served.status, served.headers);
    const result = host.setHeaderPairs(MapType.HttpResponseHeaders, pairs);
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the answer's headers (status " + result.toString() + ")" + this.requestIdSuffix());
    }
  }

  /** Sends this filter's reply in place of the primary's response; it is the stream's last word. */
  private reply(status: i32, headers: Header[], body: usize, bodySize: i32): void {
    const result = host.sendLocalResponse(status, OWN_REPLY_DETAILS, body, bodySize, headers);
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the reply (status " + result.toString() + ")" + this.requestIdSuffix());
    }
    this.release();
  }

  private startedFallback(machine: FallbackMachine): void {
    this.metrics().count(this.metrics().started);
    this.metrics().countTrigger(machine.triggerKind);
  }

  private exhausted(machine: FallbackMachine, what: string): void {
    this.metrics().count(this.metrics().exhausted);
    this.logDecision(machine, EVERY_SERVICE_FAILED + ", the client gets " + what, false);
  }

  /** A response that would trigger a fallback, declined (not replayable, or intercepted). */
  private logDeclined(machine: FallbackMachine, status: i32, details: string | null): void {
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

  /**
   * The decision, in the streamed mode's words too (fallback_outcome.ts): filter state for the access
   * log, and a line at info (Envoy's default level) with the request id, looked up only when Envoy would write it.
   */
  private logDecision(machine: FallbackMachine, outcome: string, served: bool): void {
    this.countBackups(machine, served);
    const text = outcomeText(outcome, machine.trigger, formatAttempts(machine.attempts));
    publishOutcome(text);
    if (!host.logs(LogLevel.Info)) return;
    host.logBytes(LogLevel.Info, outcomeLogLine(text, this.requestIdSuffix()));
  }

  /** Each backup tried, on its own counters (the streamed mode's names): the one that served answered, the others called failed. */
  private countBackups(machine: FallbackMachine, served: bool): void {
    const metrics = this.metrics();
    const attempts = machine.attempts;
    for (let i = 1; i < attempts.length; i++) {
      const a = attempts[i];
      if (served && i == attempts.length - 1) metrics.count(metrics.backup(a.service).answered);
      else if (wasCalled(a.result)) metrics.count(metrics.backup(a.service).failed);
    }
  }

  private requestIdSuffix(): string {
    return this.requestIdSuffixOf(this.requestHeaders);
  }

  private requestIdSuffixOf(headers: ArrayBuffer): string {
    const id = findSerializedHeader(changetype<usize>(headers), headers.byteLength, "x-request-id");
    return id === null ? "" : " x-request-id=" + id;
  }

  /** The rule for this request's route, `authority` its host as the client sent it. */
  private ruleFor(config: Config, authority: string): Policy {
    const service = config.matchesServices ? this.upstreamService() : "";
    return config.policyFor(this.routeName(), authority, service);
  }

  /**
   * A filter behind this one may have sent the request to another route (a body-based model router
   * that sets a header and clears the route cache): when a fallback is at stake, the rule of the
   * route the request finally took applies. Read only then (an error, the first-packet deadline),
   * so the happy path pays nothing. The host is the one the client asked for, from the kept headers
   * (the router may have rewritten :authority for the upstream since).
   */
  private followRoute(machine: FallbackMachine): void {
    const config = this.fallbackRoot.config;
    if (config === null || config.rules.length == 0 || !machine.undecided) return;
    const kept = this.requestHeaders;
    const authority = findSerializedHeader(changetype<usize>(kept), kept.byteLength, ":authority");
    const policy = this.ruleFor(config, authority === null ? "" : authority);
    if (policy === machine.policy) return;
    const method = findSerializedHeader(changetype<usize>(kept), kept.byteLength, ":method");
    machine.followRoute(policy, method !== null && policy.methods.includes(method));
    if (host.logs(LogLevel.Debug)) {
      host.logBytes(LogLevel.Debug, "the request's route changed after its headers (now " + this.routeName() +
        "): its rule applies" + this.requestIdSuffix());
    }
  }

  // The names Higress's own plugins read (higress-group/wasm-go pkg/matcher/rule_matcher.go); Higress's
  // Envoy answers route_name for direct responses too. Envoy's xds.* names are the fallback.
  private upstreamService(): string {
    return firstNonEmptyProperty(["cluster_name"], ["xds", "cluster_name"]);
  }

  private routeName(): string {
    return firstNonEmptyProperty(["route_name"], ["xds", "route_name"]);
  }

  private metrics(): Metrics {
    return this.fallbackRoot.metrics!;
  }
}

function firstNonEmptyProperty(path: string[], fallback: string[]): string {
  const value = host.getStringProperty(path);
  if (value !== null && value.length > 0) return value;
  const other = host.getStringProperty(fallback);
  return other === null ? "" : other;
}
