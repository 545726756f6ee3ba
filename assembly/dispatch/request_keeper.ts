// The request side of one HTTP stream of the dispatch mode: it keeps a copy of the request for
// replay (within the memory budget), holds it where a gateway reply or the header-pause probe needs
// it, starts the first-packet timer when the request left for the primary, and finds the rule that
// applies. fallback_stream.ts adds the response side: holding the primary, calling backups, serving.

import { DataAction, HeadersAction, LogLevel, MapType, StreamType } from "../abi/enums";
import { HttpContext } from "../abi/context";
import { findSerializedHeader, findSerializedSharedHeader, serializedDecimal } from "../core/header_pairs";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { appendRequestChunk } from "../host/budgeted_reads";
import { BudgetShare } from "../core/memory_budget";
import { Config, Policy } from "../core/config/config";
import { FallbackMachine } from "../core/fallback_machine";
import { Phase } from "../core/fallback_steps";
import { tellFirstPacketTimed } from "../host/first_packet_signal";
import { PauseEvidence, WITHHELD_BODY_MS } from "./header_pause";
import { isStreamingRequest } from "../core/stream_check";
import { StreamIdleWatch } from "../core/stream_idle";
import { Metrics } from "./metrics";
import { Admission } from "../core/cooldown";
import { cooldownStore } from "../host/cooldown_store";
import { tellGuardToSkip } from "../host/skip_primary_signal";
import { FallbackRoot, REQUEST_HOLD_MS, TICK_PERIOD_MS } from "./fallback_root";
import { askRouterToRetry } from "./primary_retry";

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
export const NO_HEADERS = new ArrayBuffer(0);

// Higress has no allow_on_headers_stop_iteration: its host honours a header pause for modules that
// declare ABI 0.2.100, as this one does (abi/exports.ts).
export const HIGRESS_HOLD_NOTE = " (Higress has no such field and needs none: its host honours the pause for this module's ABI 0.2.100)";

/** The `content-length` of serialized request headers; -1 when absent or not a plain decimal. */
function contentLength(headers: ArrayBuffer): i64 {
  return serializedDecimal(changetype<usize>(headers), headers.byteLength, "content-length");
}

/** Readable once Envoy's router has picked the primary's upstream host. */
const UPSTREAM_ADDRESS = host.propertyPath(["upstream", "address"]);

export class RequestKeeper extends HttpContext {
  protected machine: FallbackMachine | null = null;
  protected requestHeaders: ArrayBuffer = NO_HEADERS;
  protected requestBody: ByteSink = new ByteSink();
  /** What this stream holds of its VM's memory budget; all of it goes back in teardown(). */
  protected share: BudgetShare;
  /** A request copy was refused for want of memory (logged by the root, rate-limited). */
  protected refusedOverBudget: bool = false;
  /** The request is held until its body is copied (see onRequestHeaders). */
  protected holdingRequest: bool = false;
  /** ... until its body is copied (backendErrorsOnly: false), not only until its first chunk (a probe). */
  protected holdUntilBody: bool = false;
  /** ... and some of its body has reached this filter while held. */
  protected heldRequestBodySeen: bool = false;
  /** This request is the worker's probe of Envoy's header pause (header_pause.ts). */
  protected probing: bool = false;
  /** When a hold ended without having seen any body (0 = it did not): body right after it was withheld. */
  protected releasedBlindAtMs: u64 = 0;
  /** The body outgrew maxRequestBodyBytes and its copy was dropped. */
  protected bodyDropped: bool = false;
  /** The first-packet deadline is armed in the root. */
  protected deadlineArmed: bool = false;
  /** streamIdleTimeout: a streaming request, whose answer is watched for silence once it flows. */
  protected idleWatched: bool = false;
  /** ... from its first flowing chunk on (the root's deadline is then its next check). */
  protected idleWatch: StreamIdleWatch | null = null;
  /** The primary's cluster name, read only when the cooldown table matters ("" = not read). */
  private primaryName: string = "";
  /** The primary cools: the guard was asked to keep this request from it (skip_primary_signal.ts). */
  protected skipsPrimary: bool = false;

  constructor(id: u32, root: FallbackRoot) {
    super(id, root);
    this.share = new BudgetShare(root.budget);
  }

  protected get fallbackRoot(): FallbackRoot {
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
    const method = findSerializedSharedHeader(changetype<usize>(requestHeaders), requestHeaders.byteLength, ":method");
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
    if (policy.retry !== null) askRouterToRetry(policy.retry!);
    if (!endOfStream) this.reserveBody(machine);
    if (config.cooldown !== null && cooldownStore.anyTracked) this.admitPrimary(config);
    if (endOfStream) {
      machine.requestEnded(false);
      return HeadersAction.Continue;
    }
    // The guard answers for a cooling primary at the request's headers: the body is copied first.
    if (this.skipsPrimary) {
      this.holdUntilBody = true;
      return this.holdRequest();
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

  /**
   * Only while some service has failed or cools: a cooling primary is skipped (the guard on its
   * cluster answers for it, after every filter behind this one ran), or this request is its one probe.
   */
  private admitPrimary(config: Config): void {
    const admitted = cooldownStore.admit(this.primaryService(), host.monotonicMs(), <u64>config.cooldown!.durationMs);
    if (admitted != Admission.Skip) return;
    this.skipsPrimary = true;
    cooldownStore.pendingSkips++;
    tellGuardToSkip();
  }

  /** The primary's key in the cooldown table: the route's cluster name (read once per request, never on a healthy one). */
  protected primaryService(): string {
    if (this.primaryName.length == 0) this.primaryName = this.upstreamService();
    return this.primaryName;
  }

  /** The skip was answered, or the stream ended: the guard need not look for it any more. */
  protected endSkip(): void {
    if (!this.skipsPrimary) return;
    this.skipsPrimary = false;
    cooldownStore.pendingSkips--;
  }

  protected holdRequest(): HeadersAction {
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
  protected reserveBody(machine: FallbackMachine): void {
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
  protected copyChunk(machine: FallbackMachine, size: u32): void {
    if (!appendRequestChunk(this.requestBody, this.share, size)) {
      this.refuseOverBudget(machine, "a request body past " + this.requestBody.length.toString() + " bytes is not kept");
    }
  }

  /** The body is complete: a copy that grew by doubling gives its spare capacity back (shrunk in place). */
  protected trimBody(): void {
    const sink = this.requestBody;
    const spare = sink.capacity - sink.length;
    if (spare <= 0 || sink.length == 0) return;
    sink.resize(sink.length);
    this.share.give(spare);
  }

  protected refuseOverBudget(machine: FallbackMachine, what: string): void {
    this.refusedOverBudget = true;
    machine.refuseReplay("over the memory budget (maxKeptBytesPerWorker)");
    this.fallbackRoot.overBudget(what + "; it passes through without fallback", this.requestIdSuffix());
  }

  protected stopHolding(): void {
    this.holdingRequest = false;
    this.endProbe();
    this.disarm();
  }

  protected endProbe(): void {
    if (!this.probing) return;
    this.probing = false;
    this.fallbackRoot.pause.probing = false;
  }

  /**
   * Body came after a hold that saw none ended: at once (Envoy hands the filter what it buffered when
   * it continues) means Envoy withheld it during the pause; later, a slow client (nothing known).
   */
  protected judgeBlindRelease(): void {
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

  protected endRequest(machine: FallbackMachine): void {
    this.trimBody();
    // The body is scanned for "stream": true only when a first-packet or stream idle timeout could use it.
    const idleMs = machine.policy.streamIdleTimeoutMs;
    if ((machine.policy.firstPacketTimeoutMs == 0 && idleMs == 0) || !machine.replayable) {
      machine.requestEnded(false);
      return;
    }
    const streaming = isStreamingRequest(this.requestBody.ptr, this.requestBody.length);
    this.idleWatched = streaming && idleMs > 0;
    machine.requestEnded(streaming);
    if (!machine.awaitingUpstream) return;
    // Where Envoy does not honour a pause, held 2xx headers would never see their body: not held.
    if (this.fallbackRoot.pause.evidence == PauseEvidence.NotHonoured) machine.holdsFirstPacketHeaders = false;
    // Its first packet is timed: the primary guard, if any, holds its 2xx headers for it.
    tellFirstPacketTimed(machine.policy.firstPacket);
    this.watchUpstream(machine, host.monotonicMs());
  }

  /**
   * The first-packet timer counts from when the request left for the primary. A downstream filter
   * gets no callback when Envoy's router picks the upstream, but `upstream.address` becomes readable
   * then: read it now (usually it is already there), else again on each tick until it appears or
   * the stream ends (a filter behind this one, such as ext_authz, still holds the request).
   */
  protected watchUpstream(machine: FallbackMachine, nowMs: u64): void {
    if (host.getPropertyAt(UPSTREAM_ADDRESS) !== null) {
      machine.upstreamStarted(nowMs);
      this.arm(machine.firstPacketDeadlineMs);
    } else {
      this.arm(nowMs + TICK_PERIOD_MS);
    }
  }

  /** The request hold's time is up: let the request go on as far as it has come. */
  protected releaseHeldRequest(machine: FallbackMachine): void {
    this.holdingRequest = false;
    this.endProbe();
    if (!this.heldRequestBodySeen) this.releasedBlindAtMs = host.monotonicMs();
    host.continueStream(StreamType.Request);
  }

  /**
   * streamIdleTimeout: a chunk of the answer flowing to the client. The first starts the watch (one
   * clock read), the others are only counted; the last ends it.
   */
  protected noteFlowingChunk(machine: FallbackMachine, end: bool): void {
    if (end) {
      this.idleWatched = false;
      this.idleWatch = null;
      this.disarm();
      return;
    }
    const watch = this.idleWatch;
    if (watch !== null) {
      watch.chunks++;
      return;
    }
    const now = host.monotonicMs();
    const started = new StreamIdleWatch(machine.policy.streamIdleTimeoutMs, now);
    this.idleWatch = started;
    this.arm(started.nextCheckMs(now));
  }

  /**
   * The root's tick checks the watched answer. One silent for streamIdleTimeout is cut: the stream
   * is reset (an event written now could only reach the client with a chunk the service no longer
   * sends), which the client's HTTP stack reports as a broken response, never as a complete one.
   */
  protected checkIdle(watch: StreamIdleWatch, nowMs: u64): void {
    if (!watch.silentAt(nowMs)) {
      this.arm(watch.nextCheckMs(nowMs));
      return;
    }
    this.idleWatched = false;
    this.idleWatch = null;
    const metrics = this.fallbackRoot.metrics!;
    metrics.count(metrics.streamIdleCuts);
    host.logBytes(LogLevel.Info, "the answer went silent for streamIdleTimeout (" + watch.idleMs.toString() +
      " ms) after it began: the stream is cut (reset)" + this.requestIdSuffix());
    host.closeStream(StreamType.Response);
  }

  protected arm(deadlineMs: u64): void {
    this.fallbackRoot.armDeadline(this.id, deadlineMs);
    this.deadlineArmed = true;
  }

  protected disarm(): void {
    if (!this.deadlineArmed) return;
    this.deadlineArmed = false;
    this.fallbackRoot.disarmDeadline(this.id);
  }

  protected clearBody(): void {
    this.share.give(this.requestBody.capacity);
    this.requestBody.clear();
  }

  protected requestIdSuffix(): string {
    return this.requestIdSuffixOf(this.requestHeaders);
  }

  protected requestIdSuffixOf(headers: ArrayBuffer): string {
    const id = findSerializedHeader(changetype<usize>(headers), headers.byteLength, "x-request-id");
    return id === null ? "" : " x-request-id=" + id;
  }

  /** The rule for this request's route, `authority` its host as the client sent it. */
  protected ruleFor(config: Config, authority: string): Policy {
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
  protected followRoute(machine: FallbackMachine): void {
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
  protected upstreamService(): string {
    return firstNonEmptyProperty(["cluster_name"], ["xds", "cluster_name"]);
  }

  protected routeName(): string {
    return firstNonEmptyProperty(["route_name"], ["xds", "route_name"]);
  }

  protected metrics(): Metrics {
    return this.fallbackRoot.metrics!;
  }
}

function firstNonEmptyProperty(path: string[], fallback: string[]): string {
  const value = host.getStringProperty(path);
  if (value !== null && value.length > 0) return value;
  const other = host.getStringProperty(fallback);
  return other === null ? "" : other;
}
