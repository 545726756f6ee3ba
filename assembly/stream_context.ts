// The glue between one HTTP stream's host callbacks and its FallbackMachine: it keeps the copy of
// the request, asks the machine what to do, and carries out each Step with host calls.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType, StreamType, WasmResult } from "./abi/enums";
import { HttpContext } from "./abi/context";
import { Header, deserializeHeaders, findHeader } from "./abi/header_pairs";
import * as host from "./abi/hostcalls";
import { forgetCall, recordCall } from "./abi/registry";
import { ByteSink } from "./byte_sink";
import { byteStringToBuffer, jsonQuote } from "./bytes";
import { Backup, Policy } from "./config";
import { FallbackMachine, Phase, Step, formatAttempts } from "./fallback_machine";
import { scanTopLevel } from "./json_scan";
import { RewriteOutcome, rewriteModel } from "./model_rewrite";
import { Metrics } from "./metrics";
import { OWN_REPLY_DETAILS, Origin, classifyOrigin } from "./policy";
import { askedModel, backupRequestHeaders, clientResponseHeaders, parseStatus } from "./replay";
import { FallbackRoot } from "./root_context";
import { isFirstPacket } from "./sse";

// Response headers that tell the client (and operators) what the fallback did.
export const HEADER_SERVICE = "x-ai-fallback-service";
export const HEADER_MODEL = "x-ai-fallback-model";
export const HEADER_TRIGGER = "x-ai-fallback-trigger";
export const HEADER_ATTEMPTS = "x-ai-fallback-attempts";

/** A backup's HTTP answer, kept until it is served or replaced by a later one. */
class Answer {
  constructor(public status: i32, public headers: Header[], public body: ArrayBuffer) {}
}

export class FallbackStream extends HttpContext {
  private machine: FallbackMachine | null = null;
  private requestHeaders: ArrayBuffer = new ArrayBuffer(0);
  private requestBody: ByteSink = new ByteSink();
  private pendingToken: u32 = 0;
  private lastAnswer: Answer | null = null;
  /** The request is held until its body is copied (see onRequestHeaders). */
  private holdingRequest: bool = false;
  /** The body outgrew maxRequestBodyBytes and its copy was dropped. */
  private bodyDropped: bool = false;

  private get fallbackRoot(): FallbackRoot {
    return this.root as FallbackRoot;
  }

  // --- request phase: keep a copy; never delay the primary ---

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const config = this.fallbackRoot.config;
    if (config == null) return HeadersAction.Continue;
    let policy: Policy = config.global;
    if (config.rules.length > 0) {
      const authority = host.getHeader(MapType.HttpRequestHeaders, ":authority");
      const service = config.matchesServices ? this.upstreamService() : "";
      policy = config.policyFor(this.routeName(), authority === null ? "" : authority, service);
    }
    if (policy.backups.length == 0) return HeadersAction.Continue;
    const machine = new FallbackMachine(policy);
    this.machine = machine;
    this.requestHeaders = host.getHeadersRaw(MapType.HttpRequestHeaders);
    if (endOfStream) {
      machine.requestEnded(host.currentTimeMs(), false);
      return HeadersAction.Continue;
    }
    // A gateway reply (a rate limiter or authorisation filter behind this one) comes at the
    // request's headers, and after it Envoy delivers no more of the body to this filter. When such
    // replies may trigger a fallback, the request waits here until its body has been copied.
    if (!policy.backendErrorsOnly) {
      this.holdingRequest = true;
      return HeadersAction.StopIteration;
    }
    return HeadersAction.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    const machine = this.machine;
    if (machine == null || machine.phase != Phase.Request) return DataAction.Continue;
    if (machine.requestBodyChunk(bodySize)) {
      host.appendBufferBytes(BufferType.HttpRequestBody, 0, bodySize, this.requestBody);
    } else if (!this.bodyDropped) {
      this.bodyDropped = true;
      this.requestBody.clear();
      host.logBytes(LogLevel.Debug, "not keeping the request for replay: " + machine.notReplayableReason + this.requestIdSuffix());
    }
    if (endOfStream) this.endRequest(machine);
    if (this.holdingRequest) {
      if (!endOfStream && machine.replayable) return DataAction.StopIterationAndWatermark;
      this.holdingRequest = false;
    }
    return DataAction.Continue;
  }

  onRequestTrailers(trailerCount: u32): HeadersAction {
    const machine = this.machine;
    if (machine != null) this.endRequest(machine);
    // Continuing from the trailers releases a held request too.
    this.holdingRequest = false;
    return HeadersAction.Continue;
  }

  private endRequest(machine: FallbackMachine): void {
    // The body is scanned for "stream": true only when a first-packet timeout could use it.
    let streaming = false;
    if (machine.policy.firstPacketTimeoutMs > 0 && machine.replayable) {
      streaming = scanTopLevel(changetype<usize>(this.requestBody.toBuffer()), this.requestBody.length).streamTrue;
    }
    machine.requestEnded(host.currentTimeMs(), streaming);
    if (machine.firstPacketDeadlineMs != 0) {
      this.fallbackRoot.armDeadline(this.id, machine.firstPacketDeadlineMs);
    }
  }

  // --- the primary's response ---

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const machine = this.machine;
    if (machine == null) return HeadersAction.Continue;
    const status = parseStatus(host.getHeader(MapType.HttpResponseHeaders, ":status"));
    // Where the response came from matters only for errors; skip the property read otherwise.
    const origin = status >= 400
      ? classifyOrigin(host.getStringProperty(["response", "code_details"]))
      : Origin.Backend;
    const declinedBefore = machine.declined.length > 0;
    let step = machine.responseHeaders(status, origin, host.currentTimeMs());
    // A headers-only 2xx is complete: there is no first packet to wait for.
    if (step == Step.Hold && endOfStream && machine.phase == Phase.HoldingFirstPacket) step = machine.responseBody(true);
    if (machine.firstPacketDeadlineMs == 0) this.fallbackRoot.disarmDeadline(this.id);
    if (!declinedBefore && machine.declined.length > 0) this.logDeclined(machine, status);
    if (step == Step.Continue) return HeadersAction.Continue;
    if (step == Step.Hold) return HeadersAction.StopIteration;
    // A fallback starts: carry it out; if it ends at once (no backup could be dispatched), the
    // primary response goes on from here.
    this.startedFallback(machine);
    const last = this.perform(step, true);
    return last == Step.ResumePrimary ? HeadersAction.Continue : HeadersAction.StopIteration;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataAction {
    const machine = this.machine;
    if (machine == null) return DataAction.Continue;
    let first = true;
    if (machine.phase == Phase.HoldingFirstPacket && machine.policy.keepAliveIsNotFirstPacket && !endOfStream) {
      // Held chunks accumulate in Envoy's buffer, so the whole buffer is read each time.
      const held = host.getBufferBytes(BufferType.HttpResponseBody, 0, bodySize);
      first = isFirstPacket(changetype<usize>(held), held.byteLength);
    } else if (bodySize == 0 && !endOfStream) {
      first = false;
    }
    const step = machine.responseBody(first);
    if (machine.firstPacketDeadlineMs == 0) this.fallbackRoot.disarmDeadline(this.id);
    if (step == Step.Continue) return DataAction.Continue;
    // Held keep-alives must accumulate in one buffer to be read whole on the next chunk; a held
    // error body only waits, with flow control rather than a hard buffer limit.
    return machine.phase == Phase.HoldingFirstPacket
      ? DataAction.StopIterationAndBuffer
      : DataAction.StopIterationAndWatermark;
  }

  /** The root's tick found this stream's first-packet deadline passed. */
  onFirstPacketDeadline(nowMs: u64): void {
    const machine = this.machine;
    if (machine == null) return;
    const step = machine.firstPacketTimedOut(nowMs);
    if (step == Step.Continue) return;
    if (machine.timedOutAfterHeaders) {
      // Without allow_on_headers_stop_iteration Envoy shows no body to a filter that paused at the
      // headers, and every healthy stream would end up here: say so where operators look.
      host.logBytes(LogLevel.Info, "first packet timeout after 2xx headers: if healthy streams fall back too, " +
        "set allow_on_headers_stop_iteration: true in the wasm plugin config" + this.requestIdSuffix());
    }
    this.startedFallback(machine);
    this.perform(step, false);
  }

  // --- backup calls ---

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    const machine = this.machine;
    if (machine == null || token != this.pendingToken) return;
    this.pendingToken = 0;
    this.metrics().adjust(this.metrics().pendingBackupCalls, -1);
    let status = 0;
    if (headerCount > 0) {
      const headers = host.getHeaders(MapType.HttpCallResponseHeaders);
      status = parseStatus(findHeader(headers, ":status"));
      if (status > 0) {
        this.lastAnswer = new Answer(status, headers,
          host.getBufferBytes(BufferType.HttpCallResponseBody, 0, bodySize));
      }
    }
    this.perform(machine.backupAnswered(status, host.currentTimeMs()), false);
  }

  onDone(): void {
    // One teardown path: the deadline and any pending call are released, whatever the ending.
    this.fallbackRoot.disarmDeadline(this.id);
    if (this.pendingToken != 0) {
      forgetCall(this.pendingToken);
      this.pendingToken = 0;
      this.metrics().adjust(this.metrics().pendingBackupCalls, -1);
    }
    const machine = this.machine;
    if (machine != null) machine.finish();
    this.requestBody.clear();
    this.lastAnswer = null;
  }

  // --- carrying out steps ---

  /** Carries out `step` and any steps it leads to at once; returns the last one. */
  private perform(step: Step, inResponseHeaders: bool): Step {
    const machine = this.machine!;
    while (step == Step.Dispatch) {
      if (this.dispatch(machine.currentBackup!, machine.callTimeoutMs)) return step;
      step = machine.dispatchFailed(host.currentTimeMs());
    }
    if (step == Step.ServeBackup) {
      const answer = this.lastAnswer!;
      const backup = machine.attempts[machine.attempts.length - 1];
      const headers = this.clientHeaders(answer.headers);
      headers.push(new Header(HEADER_SERVICE, backup.service));
      headers.push(new Header(HEADER_MODEL, askedModel(backup.model, this.requestBody.toBuffer())));
      this.reply(answer.status, headers, answer.body);
      this.metrics().count(this.metrics().servedByBackup);
      this.logDecision(machine.trigger + " -> served by " + backup.service + " attempts: " + formatAttempts(machine.attempts));
    } else if (step == Step.ServeLastError) {
      const answer = this.lastAnswer!;
      this.reply(answer.status, this.clientHeaders(answer.headers), answer.body);
      this.exhausted(machine, "the last backup error (" + answer.status.toString() + ")");
    } else if (step == Step.ResumePrimary) {
      // The held primary response goes to the client, marked with what was tried.
      host.replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, machine.trigger);
      host.replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(machine.attempts));
      if (!inResponseHeaders) host.continueStream(StreamType.Response);
      this.exhausted(machine, "the primary's own response (" + machine.primaryStatus.toString() + ")");
    } else if (step == Step.ReplyError) {
      const timedOut = machine.trigger == "first_packet_timeout";
      const status = timedOut ? 504 : 502;
      const body = byteStringToBuffer("{\"error\":{\"type\":\"ai_fallback_exhausted\",\"code\":" + status.toString() +
        ",\"message\":\"every model service failed\",\"attempts\":" + jsonQuote(formatAttempts(machine.attempts)) + "}}");
      this.reply(status, [
        new Header("content-type", "application/json"),
        new Header(HEADER_TRIGGER, machine.trigger),
        new Header(HEADER_ATTEMPTS, formatAttempts(machine.attempts)),
      ], body);
      this.exhausted(machine, "a " + status.toString() + " error of its own");
    }
    return step;
  }

  /** Dispatches the request to `backup`; false when the host refused (e.g. unknown cluster). */
  private dispatch(backup: Backup, timeoutMs: u32): bool {
    const client = deserializeHeaders(changetype<usize>(this.requestHeaders), this.requestHeaders.byteLength);
    const headers = backupRequestHeaders(client, backup);
    let body = this.requestBody.toBuffer();
    const literal = backup.modelLiteral;
    if (literal != null) {
      const rewritten = rewriteModel(body, literal);
      if (rewritten.outcome == RewriteOutcome.NotJsonObject) {
        host.logBytes(LogLevel.Info, "request body is not a JSON object; sent to " + backup.serviceLabel + " unchanged" + this.requestIdSuffix());
      } else if (rewritten.outcome == RewriteOutcome.NoModel) {
        host.logBytes(LogLevel.Info, "request body has no top-level \"model\"; sent to " + backup.serviceLabel + " unchanged" + this.requestIdSuffix());
      }
      body = rewritten.body;
    }
    this.metrics().count(this.metrics().backupCalls);
    const call = host.httpCall(backup.service, headers, body, timeoutMs);
    if (call.status != WasmResult.Ok) {
      host.logBytes(LogLevel.Info, "backup " + backup.serviceLabel + " could not be called (status " +
        call.status.toString() + ", unknown cluster?)" + this.requestIdSuffix());
      return false;
    }
    this.pendingToken = call.token;
    recordCall(call.token, this.id);
    this.metrics().adjust(this.metrics().pendingBackupCalls, 1);
    return true;
  }

  /** A backup answer's headers as the client gets them, plus the attempt report. */
  private clientHeaders(answer: Header[]): Header[] {
    const machine = this.machine!;
    const out = clientResponseHeaders(answer);
    out.push(new Header(HEADER_TRIGGER, machine.trigger));
    out.push(new Header(HEADER_ATTEMPTS, formatAttempts(machine.attempts)));
    return out;
  }

  private reply(status: i32, headers: Header[], body: ArrayBuffer): void {
    host.sendLocalResponse(status, OWN_REPLY_DETAILS, body, headers);
  }

  private startedFallback(machine: FallbackMachine): void {
    this.metrics().count(this.metrics().started);
    this.metrics().countTrigger(machine.triggerKind);
  }

  private exhausted(machine: FallbackMachine, what: string): void {
    this.metrics().count(this.metrics().exhausted);
    this.logDecision(machine.trigger + " -> every backup failed; the client gets " + what + " attempts: " + formatAttempts(machine.attempts));
  }

  /** A response that would trigger a fallback, declined (not replayable, or intercepted). */
  private logDeclined(machine: FallbackMachine, status: i32): void {
    if (machine.declinedIntercepted) {
      host.logBytes(LogLevel.Debug, "status=" + status.toString() + " passed through: " + machine.declined + this.requestIdSuffix());
      return;
    }
    this.logDecision("status=" + status.toString() + " passed through: " + machine.declined);
    this.metrics().count(this.metrics().notReplayable);
  }

  private logDecision(text: string): void {
    host.logBytes(LogLevel.Info, text + this.requestIdSuffix());
  }

  private requestIdSuffix(): string {
    const headers = deserializeHeaders(changetype<usize>(this.requestHeaders), this.requestHeaders.byteLength);
    const id = findHeader(headers, "x-request-id");
    return id === null ? "" : " x-request-id=" + id;
  }

  private upstreamService(): string {
    let name = host.getStringProperty(["xds", "cluster_name"]);
    if (name === null) name = host.getStringProperty(["cluster_name"]);
    return name === null ? "" : name;
  }

  private routeName(): string {
    let name = host.getStringProperty(["xds", "route_name"]);
    if (name == null) name = host.getStringProperty(["route_name"]);
    return name === null ? "" : name;
  }

  private metrics(): Metrics {
    return this.fallbackRoot.metrics!;
  }
}
