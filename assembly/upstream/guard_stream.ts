// The primary guard's per-attempt glue: an upstream HTTP filter on the primary's cluster
// (guard_policy.ts says why). It copies nothing of the request: the downstream role that times the
// request's first packet says so through a stream property (first_packet_signal.ts), read at the
// response headers, and the guard carries out its decision there.
import { DataAction, HeadersAction, LogLevel, MapType, WasmResult } from "../abi/enums";
import { HttpContext } from "../abi/context";
import * as host from "../abi/hostcalls";
import { HeldBody, checkHeldResponseBody } from "../host/budgeted_reads";
import { FirstPacketTiming, readFirstPacketTiming } from "../host/first_packet_signal";
import { BudgetShare } from "../core/memory_budget";
import { GUARD_REPLY_DETAILS } from "../core/policy";
import { overBudget, vmBudget } from "../host/vm_budget";
import { GuardConfig } from "./guard_config";
import { GuardStep, guardNeedsStatus, guardReplyBody, guardReplyHeaders, guardResponseHeaders } from "./guard_policy";
import { UpstreamRoot } from "./upstream_root";

export class GuardStream extends HttpContext {
  /** What this stream holds of the VM's one budget (a held body read for keep-alives, freed at once). */
  private share: BudgetShare = new BudgetShare(vmBudget);
  /** The response headers wait for the first body byte. */
  private holding: bool = false;
  /** Keep-alives are not the first byte: held with the headers until real data follows. */
  private keepAlivesWait: bool = false;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  private get guard(): GuardConfig {
    return (this.root as UpstreamRoot).guard!;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const guard = this.guard;
    // Only a response with more to come can be held, and only one timed downstream.
    const timing = !endOfStream && guard.holdFirstPacket ? readFirstPacketTiming() : FirstPacketTiming.NotTimed;
    const timed = timing != FirstPacketTiming.NotTimed;
    if (!guardNeedsStatus(guard, timed, endOfStream)) return HeadersAction.Continue;
    const status = host.responseStatus(MapType.HttpResponseHeaders);
    const step = guardResponseHeaders(guard, timed, status, endOfStream);
    if (step == GuardStep.HoldUntilFirstByte) {
      this.holding = true;
      this.keepAlivesWait = guard.keepAliveIsNotFirstPacket || timing == FirstPacketTiming.NotKeepAlive;
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
    if (this.keepAlivesWait && !endOfStream && !this.heldIsFirstPacket(bodySize)) {
      return DataAction.StopIterationAndBuffer;
    }
    this.holding = false;
    return DataAction.Continue;
  }

  /**
   * Whether the held body so far has a line that is neither an SSE comment nor blank. Without room
   * in the VM's budget to read it, it counts as one: the stream flows un-held rather than judged blind.
   */
  private heldIsFirstPacket(size: u32): bool {
    const held = checkHeldResponseBody(this.share, size);
    if (held == HeldBody.OverBudget) {
      overBudget("primary guard: a held response body of " + size.toString() +
        " bytes is not checked for keep-alives; it flows as the first packet", "");
      return true;
    }
    return held == HeldBody.FirstPacket;
  }

  onResponseTrailers(trailerCount: u32): HeadersAction {
    this.holding = false;
    return HeadersAction.Continue;
  }

  onDone(): void {
    this.share.releaseAll();
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
