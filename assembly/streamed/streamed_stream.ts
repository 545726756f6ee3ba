// The streamed mode's downstream glue (root_id "ai-fallback-streamed"): it holds a request until
// its body is complete, to know whether it streams, then sets or removes the router's per-try
// timeout header (per_try_timeout.ts), tells the primary guard that the first packet is timed
// (first_packet_signal.ts), and lets the request go on to the router. The body is read once, into
// memory taken from the VM's one budget and freed at once.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType } from "../abi/enums";
import { HttpContext } from "../abi/context";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { tellFirstPacketTimed, tellHedged } from "../host/first_packet_signal";
import { isStreamingRequest } from "../core/stream_check";
import { BudgetShare } from "../core/memory_budget";
import { overBudget, vmBudget } from "../host/vm_budget";
import { HEDGE_HEADER, PER_TRY_TIMEOUT_HEADER, perTryTimeoutApplies, perTryTimeoutMs } from "./per_try_timeout";
import { StreamedRoot } from "./streamed_root";
import { Admission } from "../core/cooldown";
import { utf8ByteString } from "../core/bytes";
import { cooldownStore } from "../host/cooldown_store";
import { skippedEntry, tellStart } from "../host/streamed_start_signal";

export class StreamedStream extends HttpContext {
  /** The request's headers are held for its body. */
  private holding: bool = false;
  /** It holds one of the worker's `hedge.maxInFlight` places until its answer's headers (or its end). */
  private hedgePlace: bool = false;

  constructor(id: u32, root: StreamedRoot) {
    super(id, root);
  }

  private get root_(): StreamedRoot {
    return this.root as StreamedRoot;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    // Only while some service has failed or cools: the chain may start past the services that cool.
    if (this.root_.cooldown !== null && cooldownStore.anyTracked) this.skipCooling();
    const policy = this.root_.policy;
    if (policy === null || policy.firstPacketTimeoutMs == 0) return HeadersAction.Continue;
    if (endOfStream || !perTryTimeoutApplies(policy, host.getHeader(MapType.HttpRequestHeaders, ":method"))) {
      this.setTimeout(false);
      return HeadersAction.Continue;
    }
    // The router reads the header with the request's headers: they wait for the body.
    this.holding = true;
    return HeadersAction.StopIteration;
  }

  /**
   * The first service of the chain that does not cool (or whose probe this request is) is where it
   * starts; the last is always tried. A later start is told to the routes through filter state, and
   * the route is chosen again: the router, after every filter, sends the request there.
   */
  private skipCooling(): void {
    const root = this.root_;
    const cooldown = root.cooldown!;
    const policy = root.policy!;
    const backups = policy.backups;
    // Only the retrying route's requests (its methods) have a chain to start later.
    const method = host.getHeader(MapType.HttpRequestHeaders, ":method");
    if (method === null || !policy.methods.includes(method)) return;
    const now = host.monotonicMs();
    let attempt = 1;
    const skipped = new Array<string>();
    while (attempt <= backups.length) {
      const service = attempt == 1 ? utf8ByteString(cooldown.primary) : backups[attempt - 2].serviceLabel;
      if (cooldownStore.admit(service, now, <u64>cooldown.durationMs) != Admission.Skip) break;
      cooldownStore.countSkipped();
      skipped.push(attempt == 1 ? skippedEntry("primary", "") : skippedEntry(service, backups[attempt - 2].modelLabel));
      attempt++;
    }
    if (attempt > 1) tellStart(attempt, skipped);
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (!this.holding) return DataAction.Continue;
    const policy = this.root_.policy!;
    if (bodySize > policy.maxRequestBodyBytes) {
      // Too large to be a chat request worth scanning (and to replay): no per-try timeout.
      host.log(LogLevel.Debug, "streamed mode: a request body over maxRequestBodyBytes is not scanned; no first-packet timeout");
      this.release(false);
      return DataAction.Continue;
    }
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    this.release(this.bodyStreams(bodySize));
    return DataAction.Continue;
  }

  /**
   * Whether the buffered body (`size` bytes) says `"stream": true`. Its copy is budgeted and freed
   * before this returns; without room for it, the request is taken as not streaming (no per-try
   * timeout: it is never cut off), counted and logged.
   */
  private bodyStreams(size: u32): bool {
    const share = new BudgetShare(vmBudget);
    if (!share.tryTake(size)) {
      overBudget("streamed mode: a request body of " + size.toString() + " bytes is not scanned; no first-packet timeout", "");
      return false;
    }
    const body = new ByteSink();
    host.takeBufferBytes(BufferType.HttpRequestBody, 0, size, body);
    const streaming = isStreamingRequest(body.ptr, body.length);
    body.clear();
    share.releaseAll();
    return streaming;
  }

  onRequestTrailers(trailerCount: u32): HeadersAction {
    // A body with trailers is no chat request: it goes on without a per-try timeout.
    if (this.holding) this.release(false);
    return HeadersAction.Continue;
  }

  private release(streaming: bool): void {
    this.holding = false;
    this.setTimeout(streaming);
    if (!streaming) return;
    tellFirstPacketTimed(this.root_.policy!.firstPacket);
    if (this.root_.policy!.hedgeMaxInFlight > 0) this.allowHedge();
  }

  /**
   * `hedge`: the router races a backup at the per-try timeout while fewer than maxInFlight of this
   * worker's requests may; past that, the request is given today's per-try timeout alone (the primary
   * is abandoned at it), and counted.
   */
  private allowHedge(): void {
    const root = this.root_;
    if (root.hedgesInFlight < <i32>root.policy!.hedgeMaxInFlight) {
      root.hedgesInFlight++;
      this.hedgePlace = true;
      host.replaceHeader(MapType.HttpRequestHeaders, HEDGE_HEADER, "true");
      tellHedged(root.policy!.firstPacket);
      return;
    }
    host.removeHeader(MapType.HttpRequestHeaders, HEDGE_HEADER);
    const hedges = root.hedges!;
    hedges.count(hedges.overLimit);
  }

  /** The race, if any, is over once the answer's headers go to the client (the router cancelled the others). */
  private leaveHedgePlace(): void {
    if (!this.hedgePlace) return;
    this.hedgePlace = false;
    this.root_.hedgesInFlight--;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    this.leaveHedgePlace();
    return HeadersAction.Continue;
  }

  onDone(): void {
    this.leaveHedgePlace();
  }

  private setTimeout(streaming: bool): void {
    const ms = perTryTimeoutMs(this.root_.policy!, streaming);
    if (ms == 0) host.removeHeader(MapType.HttpRequestHeaders, PER_TRY_TIMEOUT_HEADER);
    else host.replaceHeader(MapType.HttpRequestHeaders, PER_TRY_TIMEOUT_HEADER, ms.toString());
  }
}
