// The primary guard's per-attempt glue: an upstream HTTP filter on the primary's cluster
// (guard_policy.ts says why). It copies nothing of the request: the downstream role that times the
// request's first packet says so through a stream property (first_packet_signal.ts), read at the
// response headers, and the guard carries out its decision there.
import { DataAction, HeadersAction, LogLevel, MapType, WasmResult } from "../abi/enums";
import { HttpContext } from "../abi/context";
import * as host from "../abi/hostcalls";
import { ContentCursor, HeldBody, checkedFor, judgeHeldBody } from "../host/budgeted_reads";
import { FirstPacketTiming, STREAM_ERROR_HEADER, readFirstPacketTiming, readHedgeTiming, waitFor } from "../host/first_packet_signal";
import { FirstPacket } from "../core/config/config";
import { Attempt } from "../core/attempts";
import { AttemptRecord, Kept, RESULT_STREAM_ERROR } from "./attempt_log";
import { requestIdentity } from "./request_identity";
import { BudgetShare } from "../core/memory_budget";
import { GUARD_COOLING_DETAILS, GUARD_REPLY_DETAILS } from "../core/policy";
import { Header } from "../core/headers";
import { cooldownStore } from "../host/cooldown_store";
import { guardAskedToSkip } from "../host/skip_primary_signal";
import { overBudget, vmBudget } from "../host/vm_budget";
import { GuardConfig } from "./guard_config";
import { GuardStep, guardNeedsStatus, guardReplyBody, guardReplyHeaders, guardResponseHeaders } from "./guard_policy";
import { UpstreamRoot, attemptLog } from "./upstream_root";

const COOLING_REPLY_BODY = String.UTF8.encode("{\"error\":{\"message\":\"the model service is cooling (known to be down); " +
  "it was not called\",\"type\":\"ai_fallback_cooling\",\"code\":503}}");
const COOLING_REPLY_HEADERS: Header[] = [new Header("content-type", "application/json")];

export class GuardStream extends HttpContext {
  /** What this stream holds of the VM's one budget (a held body read for keep-alives, freed at once). */
  private share: BudgetShare = new BudgetShare(vmBudget);
  /** The response headers wait for the first body byte. */
  private holding: bool = false;
  /** What ends the hold: any byte, the first line that is not a keep-alive, or the first event with content. */
  private waitsFor: FirstPacket = FirstPacket.Byte;
  /** firstPacket "content": the held body's events judged so far. */
  private contentCursor: ContentCursor | null = null;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  private get guard(): GuardConfig {
    return (this.root as UpstreamRoot).guard!;
  }

  /**
   * The dispatch filter asked to keep this request from the cooling primary: answered here, after
   * every filter before the router let it through (never read while no request of the VM asked).
   */
  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    if (cooldownStore.pendingSkips == 0 || !guardAskedToSkip()) return HeadersAction.Continue;
    const body = COOLING_REPLY_BODY;
    const result = host.sendLocalResponse(503, GUARD_COOLING_DETAILS, changetype<usize>(body), body.byteLength, COOLING_REPLY_HEADERS);
    if (result == WasmResult.Ok) return HeadersAction.StopIteration;
    host.log(LogLevel.Error, "primary guard: the host refused the reply for a cooling primary (status " + result.toString() + "); the request goes on to it");
    return HeadersAction.Continue;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const guard = this.guard;
    // Only a response with more to come can be held, and only one timed downstream.
    const timing = endOfStream || !guard.holdFirstPacket ? FirstPacketTiming.NotTimed : guard.hedgedOnly ? readHedgeTiming() : readFirstPacketTiming();
    const timed = timing != FirstPacketTiming.NotTimed;
    if (!guardNeedsStatus(guard, timed, endOfStream)) return HeadersAction.Continue;
    const status = host.responseStatus(MapType.HttpResponseHeaders);
    const step = guardResponseHeaders(guard, timed, status, endOfStream);
    if (step == GuardStep.HoldUntilFirstByte) {
      this.holding = true;
      this.waitsFor = waitFor(guard.firstPacket, timing);
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
    // Keep-alives (or events without content) wait with the headers (buffered: `bodySize` is all that
    // is held) until real data follows. With "content", an answer that ends is judged too.
    const mode = this.waitsFor;
    if (mode == FirstPacket.Content || (mode == FirstPacket.Event && !endOfStream)) {
      const held = this.judgeHeld(bodySize, mode);
      if (held == HeldBody.KeepAlivesOnly && !endOfStream) return DataAction.StopIterationAndBuffer;
      // A racing backup's guard (hedgedOnly) leaves no record: the primary's result is the primary guard's to keep.
      if (held == HeldBody.Error && !this.guard.hedgedOnly) this.markStreamError();
    }
    this.holding = false;
    return DataAction.Continue;
  }

  /**
   * What the held body holds so far. Without room in the VM's budget to read it, it counts as the
   * first packet: the stream flows un-held rather than judged blind.
   */
  private judgeHeld(size: u32, mode: FirstPacket): HeldBody {
    if (mode == FirstPacket.Content && this.contentCursor === null) this.contentCursor = new ContentCursor();
    const held = judgeHeldBody(this.share, size, mode, this.contentCursor);
    if (held != HeldBody.OverBudget) return held;
    overBudget("primary guard: a held response body of " + size.toString() + " bytes is not checked for " + checkedFor(mode) +
      "; it flows as the first packet", "");
    return HeldBody.FirstPacket;
  }

  /**
   * The held 2xx's first event is an error: the response goes on marked, and the streamed route
   * retries on the mark (the next attempt learns why from the attempt log). Behind ai-fallback's
   * dispatch filter, that filter reads the same event and falls back itself.
   */
  private markStreamError(): void {
    host.replaceHeader(MapType.HttpResponseHeaders, STREAM_ERROR_HEADER, this.guard.retryMark);
    const owner = requestIdentity();
    if (owner === null) return;
    const record = new AttemptRecord();
    record.attempts.push(new Attempt("primary", "", RESULT_STREAM_ERROR));
    if (attemptLog.put(owner, record, host.monotonicMs()) == Kept.OverBudget) {
      overBudget("primary guard: a stream error's result is not kept for the next attempt, which reports result=unknown for it", "");
    }
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
    // A racing backup's attempt that lost (hedge) ends held: that is no sign of a missing setting.
    if (root.heldBodySeen || root.holdHintLogged || this.guard.hedgedOnly) return;
    root.holdHintLogged = true;
    host.log(LogLevel.Warn, "primary guard: a streaming response ended while its headers waited for a body that never reached " +
      "the guard; if healthy streams end this way, set allow_on_headers_stop_iteration: true in the guard's wasm plugin config");
  }
}
