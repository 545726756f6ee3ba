// The primary guard's per-attempt glue: an upstream HTTP filter on the primary's cluster
// (guard_policy.ts says why). It copies the request body as it passes (to know whether the request
// streams), then carries out the guard's decision on the primary's response headers.
import { DataAction, HeadersAction, LogLevel, MapType, WasmResult } from "../abi/enums";
import { HttpContext } from "../abi/context";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../byte_sink";
import { HeldBody, appendRequestChunk, checkHeldResponseBody } from "../budgeted_reads";
import { isStreamingRequest } from "../json_scan";
import { BudgetShare } from "../memory_budget";
import { GUARD_REPLY_DETAILS } from "../policy";
import { parseStatus } from "../replay";
import { GuardConfig } from "./guard_config";
import { GuardStep, guardReplyBody, guardReplyHeaders, guardResponseHeaders } from "./guard_policy";
import { UpstreamRoot } from "./upstream_root";

export class GuardStream extends HttpContext {
  private body: ByteSink = new ByteSink();
  private share: BudgetShare;
  /** The body is still being copied (false once complete, too large or over the budget). */
  private copying: bool = true;
  /** The request is complete and its body says `"stream": true`. */
  private streaming: bool = false;
  /** The response headers wait for the first body byte. */
  private holding: bool = false;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
    this.share = new BudgetShare(root.budget);
  }

  private get guard(): GuardConfig {
    return (this.root as UpstreamRoot).guard!;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    // Without a body (or when nothing would use it) there is nothing to copy.
    if (endOfStream || !this.guard.holdFirstPacket) this.copying = false;
    return HeadersAction.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (!this.copying) return DataAction.Continue;
    const sink = this.body;
    if (<i64>sink.length + bodySize > <i64>this.guard.maxRequestBodyBytes) {
      this.stopCopying();
      return DataAction.Continue;
    }
    if (!appendRequestChunk(sink, this.share, bodySize)) {
      host.log(LogLevel.Debug, "primary guard: over the memory budget, a request body is not scanned (its response is not held)");
      this.stopCopying();
      return DataAction.Continue;
    }
    if (endOfStream) this.requestComplete();
    return DataAction.Continue;
  }

  onRequestTrailers(trailerCount: u32): HeadersAction {
    if (this.copying) this.requestComplete();
    return HeadersAction.Continue;
  }

  private requestComplete(): void {
    this.streaming = isStreamingRequest(this.body.ptr, this.body.length);
    this.stopCopying();
  }

  private stopCopying(): void {
    this.copying = false;
    this.body.clear();
    this.share.releaseAll();
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const status = parseStatus(host.getHeader(MapType.HttpResponseHeaders, ":status"));
    const step = guardResponseHeaders(this.guard, this.streaming, status, endOfStream);
    if (step == GuardStep.HoldUntilFirstByte) {
      this.holding = true;
      return HeadersAction.StopIteration;
    }
    if (step == GuardStep.ReplyWithBody) {
      const body = guardReplyBody(status);
      const headers = guardReplyHeaders(host.getHeaders(MapType.HttpResponseHeaders));
      const result = host.sendLocalResponse(<u32>status, GUARD_REPLY_DETAILS, changetype<usize>(body), body.byteLength, headers);
      if (result == WasmResult.Ok) return HeadersAction.StopIteration;
      host.log(LogLevel.Error, "primary guard: the host refused the reply for a headers-only " + status.toString() + " (status " +
        result.toString() + "); it passes as it came");
    }
    return HeadersAction.Continue;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataAction {
    if (!this.holding) return DataAction.Continue;
    (this.root as UpstreamRoot).heldBodySeen = true;
    // An empty chunk is not the first byte: the headers stay held.
    if (bodySize == 0 && !endOfStream) return DataAction.StopIterationNoBuffer;
    // Keep-alives wait with the headers (buffered: `bodySize` is all that is held) until real data follows.
    if (this.guard.keepAliveIsNotFirstPacket && !endOfStream && !this.heldIsFirstPacket(bodySize)) {
      return DataAction.StopIterationAndBuffer;
    }
    this.holding = false;
    return DataAction.Continue;
  }

  /** Whether the held body so far has a line that is neither an SSE comment nor blank (over budget: it counts as one). */
  private heldIsFirstPacket(size: u32): bool {
    const held = checkHeldResponseBody(this.share, size);
    if (held == HeldBody.OverBudget) {
      host.log(LogLevel.Debug, "primary guard: over the memory budget, a held body is not checked for keep-alives; it flows");
      return true;
    }
    return held == HeldBody.FirstPacket;
  }

  onResponseTrailers(trailerCount: u32): HeadersAction {
    this.holding = false;
    return HeadersAction.Continue;
  }

  onDone(): void {
    this.stopCopying();
    if (this.holding) this.endedWhileHolding();
  }

  /**
   * Without allow_on_headers_stop_iteration Envoy shows no body to a filter paused at the headers:
   * every held stream would end held (cut by a timeout). Said once per worker, while no held stream
   * on it has shown a body.
   */
  private endedWhileHolding(): void {
    const root = this.root as UpstreamRoot;
    if (root.heldBodySeen || root.holdHintLogged) return;
    root.holdHintLogged = true;
    host.log(LogLevel.Warn, "primary guard: a streaming response ended while its headers waited for a body that never reached " +
      "the guard; if healthy streams end this way, set allow_on_headers_stop_iteration: true in the guard's wasm plugin config");
  }
}
