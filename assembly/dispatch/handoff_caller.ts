// The handoff way to fall back (`"handoff": "higress-route-fallback"`, core/handoff.ts) on one stream of
// the dispatch filter. On the primary's route the filter decides as it does before a backup call
// (triggers, origin, rules, the first-packet timer) and then, instead of calling the backup, marks
// the answer for Higress's route fallback (custom_response, first in the chain and so last on the
// way out, recreates the stream on the fallback route). Before any response the mark rides on this
// filter's own reply; on held 2xx headers their status is rewritten (a local reply after held
// headers would go straight to the client, past custom_response). On each backup's hop (a request
// carrying x-higress-fallback-from and the chain this filter handed on) it rewrites the request for
// that backup, decides again for the next hop, and reports the whole chain on the final answer.
import { DataAction, HeadersAction, LogLevel, MapType, StreamType, WasmResult, BufferType } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { Header } from "../core/headers";
import { FallbackMachine } from "../core/fallback_machine";
import { Phase, Step } from "../core/fallback_steps";
import { OWN_REPLY_DETAILS } from "../core/policy";
import { Attempt, NOT_REWRITABLE, formatAttempts } from "../core/attempts";
import { EVERY_SERVICE_FAILED, outcomeText, servedBy } from "../core/fallback_outcome";
import {
  CHAIN_PROPERTY, FALLBACK_FROM_HEADER, HANDOFF_MARKER, HANDOFF_SKIPPED_STATUS, HANDOFF_TIMEOUT_STATUS, HOP_HEADER, HandoffChain,
  decodeChain, earlierBackupHeaders,
} from "../core/handoff";
import { deserializeHeaders, findSerializedHeader } from "../core/header_pairs";
import { attemptHeaderEdits, editsReadClientHeaders } from "../core/attempt_headers";
import { ByteSink } from "../core/byte_sink";
import { RewriteOutcome, planRewrite, writeRewrite } from "../core/model_rewrite";
import { HEADER_ATTEMPTS, HEADER_MODEL, HEADER_SERVICE, HEADER_TRIGGER, addReportHeaders, askedModel, exhaustedErrorBody } from "../core/replay";
import { BackupCaller } from "./backup_caller";

/** This filter's marked reply when the first packet was late and no response had come. */
const TIMEOUT_BODY = String.UTF8.encode("{\"error\":{\"message\":\"first packet timeout: handed to the route fallback\",\"type\":\"ai_fallback\"}}");
const CHAIN_PATH = host.propertyPath([CHAIN_PROPERTY]);
const NO_HEADERS: Header[] = [];

export class HandoffCaller extends BackupCaller {
  /** The hop this stream is: 0 on the primary's route, n on the n-th backup's. */
  protected hop: i32 = 0;
  /** A hop's chain as handed on: its trigger (what started the whole fallback) and how many attempts. */
  private carriedTrigger: string = "";
  private carriedAttempts: i32 = 0;
  /** This hop's backup overrides the model: the body is held whole and rewritten at its end. */
  private rewritingModel: bool = false;
  /** The hop's final answer has been reported. */
  private reported: bool = false;

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const action = super.onRequestHeaders(headerCount, endOfStream);
    const machine = this.machine;
    if (machine === null || !machine.policy.handoff) return action;
    this.dropClientMarker();
    const kept = this.requestHeaders;
    if (findSerializedHeader(changetype<usize>(kept), kept.byteLength, FALLBACK_FROM_HEADER) !== null) this.beginHop(machine, endOfStream);
    // Nothing of a request whose model is still to be written leaves before its body is whole.
    return this.rewritingModel ? HeadersAction.StopIteration : action;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (!this.rewritingModel) return super.onRequestBody(bodySize, endOfStream);
    // The model may sit anywhere in the body: it is rewritten whole, once it is all here (Envoy
    // buffers it and hands it whole to each callback).
    if (!endOfStream) {
      if (this.holdingRequest) {
        this.heldRequestBodySeen = true;
        this.fallbackRoot.pause.honoured();
        this.stopHolding();
      }
      return DataAction.StopIterationAndBuffer;
    }
    this.rewritingModel = false;
    const action = super.onRequestBody(bodySize, true);
    const machine = this.machine!;
    const skipped = this.writeModel(machine, bodySize);
    if (skipped.length == 0) return action;
    // Fail closed: a body that still carries the client's model never reaches an override backup.
    this.skipHop(machine, skipped);
    return DataAction.StopIterationNoBuffer;
  }

  /**
   * A request header of the marker's name from the client goes no further (a model service that
   * echoes request headers must not be able to mark its own answer). Looked for in the headers
   * already read: a host call only when it is there.
   */
  protected dropClientMarker(): void {
    const kept = this.requestHeaders;
    if (findSerializedHeader(changetype<usize>(kept), kept.byteLength, HANDOFF_MARKER) === null) return;
    host.removeHeader(MapType.HttpRequestHeaders, HANDOFF_MARKER);
  }

  // --- a backup's hop ---

  /**
   * The route fallback recreated the stream: the chain this filter handed on says which backup this
   * hop is. Without it (a client that sent x-higress-fallback-from itself) nothing is rewritten: no
   * backup's credentials are ever added to a request this filter did not hand off.
   */
  private beginHop(machine: FallbackMachine, endOfStream: bool): void {
    const chain = decodeChain(host.getStringPropertyAt(CHAIN_PATH));
    const backups = machine.policy.backups;
    if (chain === null || chain.nextHop > backups.length) {
      if (host.logs(LogLevel.Debug)) {
        host.logBytes(LogLevel.Debug, FALLBACK_FROM_HEADER + " without a chain this filter handed on: not a hop, nothing rewritten" + this.requestIdSuffix());
      }
      return;
    }
    const hop = chain.nextHop;
    this.hop = hop;
    // The chain goes on from here: the backups after this hop's, its trigger and attempts so far.
    machine.nextIndex = hop;
    machine.trigger = chain.trigger;
    machine.attempts = chain.attempts;
    this.carriedTrigger = chain.trigger;
    this.carriedAttempts = chain.attempts.length;
    const backup = backups[hop - 1];
    const kept = this.requestHeaders;
    const current = editsReadClientHeaders(backup) ? deserializeHeaders(changetype<usize>(kept), kept.byteLength) : NO_HEADERS;
    // The recreated request keeps the headers earlier hops set (another backup's key): removed.
    const edits = attemptHeaderEdits(current, backup, earlierBackupHeaders(backups, hop));
    for (let i = 0; i < edits.removals.length; i++) host.removeHeader(MapType.HttpRequestHeaders, edits.removals[i]);
    for (let i = 0; i < edits.sets.length; i++) {
      const set = edits.sets[i];
      // The hop's route rewrites the backup's authority and path (set here they would make Envoy
      // match the request to another route).
      if (set.name == ":authority" || (set.name == ":path" && backup.path !== null)) continue;
      host.replaceHeader(MapType.HttpRequestHeaders, set.name, set.value);
    }
    // The fallback route of this hop matches it, and sends the request to this backup's service.
    host.replaceHeader(MapType.HttpRequestHeaders, HOP_HEADER, hop.toString());
    this.metrics().count(this.metrics().backupCalls);
    if (backup.modelLiteral === null) return;
    if (endOfStream) {
      this.skipHop(machine, NOT_REWRITABLE);
      return;
    }
    this.rewritingModel = true;
  }

  /** Writes the hop's model into the whole body (`size` bytes); "" when done, else the attempt's result. */
  private writeModel(machine: FallbackMachine, size: u32): string {
    const backup = machine.policy.backups[this.hop - 1];
    const literal = backup.modelLiteral!;
    if (!this.share.tryTake(size)) return "over_budget";
    const body = new ByteSink();
    host.takeBufferBytes(BufferType.HttpRequestBody, 0, size, body);
    const plan = planRewrite(body.ptr, body.length, literal.byteLength);
    let result = "";
    if (plan.outcome != RewriteOutcome.Rewritten) {
      this.metrics().count(this.metrics().notRewritable);
      result = NOT_REWRITABLE;
    } else if (!this.share.tryTake(plan.size)) {
      result = "over_budget";
    } else {
      const out = new ByteSink();
      out.resize(plan.size);
      writeRewrite(plan, body.ptr, body.length, literal, out.ptr);
      host.setBufferBytes(BufferType.HttpRequestBody, 0, size, out.ptr, plan.size);
      out.clear();
      this.share.give(plan.size);
    }
    body.clear();
    this.share.give(size);
    return result;
  }

  /**
   * This hop's backup cannot take the request (its model cannot be written): it is not sent; this
   * filter's own reply goes on to the next hop, marked, or ends the chain with the report.
   */
  private skipHop(machine: FallbackMachine, result: string): void {
    const backup = machine.policy.backups[this.hop - 1];
    host.logBytes(LogLevel.Info, "request body has no top-level JSON \"model\" to write " + backup.modelLabel + " into: " +
      backup.serviceLabel + " is not called, the chain goes on" + this.requestIdSuffix());
    machine.attempts.push(this.ownAttempt(machine, result));
    const hide = machine.policy.hideTopology;
    const last = this.hop >= machine.policy.backups.length;
    const headers = last ? addReportHeaders([], machine.trigger, machine.attempts, hide) : this.markHeaders(machine);
    headers.push(new Header("content-type", "application/json"));
    this.handedOff(machine, true, last);
    if (last) {
      this.metrics().count(this.metrics().exhausted);
      this.logDecision(machine, EVERY_SERVICE_FAILED + ", the client gets a " + HANDOFF_SKIPPED_STATUS.toString() + " error of its own", false);
    }
    const body = exhaustedErrorBody(HANDOFF_SKIPPED_STATUS, machine.attempts, hide);
    host.sendLocalResponse(HANDOFF_SKIPPED_STATUS, OWN_REPLY_DETAILS, changetype<usize>(body), body.byteLength, headers);
  }

  /**
   * A hop's answer that goes to the client as it is (not handed on): the report headers, the
   * whole chain with this hop's answer last. `final`: nothing can change it any more (a held 2xx
   * waits for its first packet): counted and logged now.
   */
  protected reportHopAnswer(machine: FallbackMachine, status: i32, final: bool): void {
    // Not this filter's own reply on its way out (it carries its report), nor a stream already reported.
    if (this.hop == 0 || this.reported || (final && machine.phase != Phase.PassThrough)) return;
    const backup = machine.policy.backups[this.hop - 1];
    const attempts = machine.attempts.slice();
    attempts.push(this.ownAttempt(machine, status.toString()));
    const hide = machine.policy.hideTopology;
    host.replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, machine.trigger);
    if (!hide) {
      host.replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(attempts));
      host.replaceHeader(MapType.HttpResponseHeaders, HEADER_SERVICE, backup.serviceLabel);
    }
    host.replaceHeader(MapType.HttpResponseHeaders, HEADER_MODEL, askedModel(backup.modelLabel, this.requestBody.ptr, this.requestBody.length));
    if (final) this.settleHop(machine, status);
  }

  /** The hop's answer is final: counted and logged with the whole chain. */
  protected settleHop(machine: FallbackMachine, status: i32): void {
    if (this.hop == 0 || this.reported) return;
    this.reported = true;
    const backup = machine.policy.backups[this.hop - 1];
    machine.attempts.push(this.ownAttempt(machine, status.toString()));
    const served = status >= 200 && status < 300;
    const metrics = this.metrics();
    if (served) {
      metrics.count(metrics.servedByBackup);
      this.logDecision(machine, servedBy(backup.serviceLabel, backup.modelLabel), true);
    } else {
      metrics.count(metrics.exhausted);
      this.logDecision(machine, EVERY_SERVICE_FAILED + ", the client gets " + backup.serviceLabel + "'s answer (" + status.toString() + ")", false);
    }
  }

  // --- marking ---

  /**
   * The handoff way: a fallback that starts here (`step`, at the response's headers or at the
   * first-packet deadline) leaves marked instead of calling a backup; true when it did.
   */
  protected handsOff(machine: FallbackMachine, step: Step, atHeaders: bool): bool {
    if (!machine.policy.handoff || step != Step.Dispatch) return false;
    if (atHeaders) this.handOffAtHeaders(machine);
    else this.handOffAtDeadline(machine);
    return true;
  }

  /** This hop's own answer as an attempt of the chain (`result` its status, or what happened). */
  private ownAttempt(machine: FallbackMachine, result: string): Attempt {
    const backup = machine.policy.backups[this.hop - 1];
    return new Attempt(backup.serviceLabel, backup.modelLabel, result);
  }

  /**
   * After a step of the machine on a hop: the attempt it recorded for this stream's answer is this
   * hop's backup's (the machine names it the primary), and the report keeps the chain's first trigger.
   */
  protected nameHopAttempt(machine: FallbackMachine): void {
    const attempts = machine.attempts;
    const at = this.carriedAttempts;
    if (this.hop == 0 || attempts.length <= at || attempts[at].service != "primary") return;
    attempts[at] = this.ownAttempt(machine, attempts[at].result);
    machine.trigger = this.carriedTrigger;
  }

  /** The next hop's number, as the marker's value. */
  protected nextHop(): i32 {
    return this.hop + 1;
  }

  /**
   * The marker, and the report so far (a marked answer reaches the client only when the route
   * fallback gives up, e.g. at max_internal_redirects: it then tells what was tried).
   */
  private markHeaders(machine: FallbackMachine): Header[] {
    return addReportHeaders([new Header(HANDOFF_MARKER, this.nextHop().toString())], machine.trigger, machine.attempts, machine.policy.hideTopology);
  }

  /** A decided error answer at its headers: it leaves marked, for the route fallback to redirect. */
  protected handOffAtHeaders(machine: FallbackMachine): void {
    this.markResponse(machine);
    this.handedOff(machine, false, false);
  }

  private markResponse(machine: FallbackMachine): void {
    const headers = this.markHeaders(machine);
    for (let i = 0; i < headers.length; i++) host.replaceHeader(MapType.HttpResponseHeaders, headers[i].name, headers[i].value);
  }

  /**
   * The first packet was late: held 2xx headers leave as a marked error; before any response,
   * this filter's own marked reply (it runs through the encoder filters, custom_response's last).
   */
  protected handOffAtDeadline(machine: FallbackMachine): void {
    if (machine.timedOutAfterHeaders) {
      host.replaceHeader(MapType.HttpResponseHeaders, ":status", HANDOFF_TIMEOUT_STATUS.toString());
      this.markResponse(machine);
      this.handedOff(machine, false, false);
      host.continueStream(StreamType.Response);
      return;
    }
    const headers = this.markHeaders(machine);
    headers.push(new Header("content-type", "application/json"));
    this.handedOff(machine, true, false);
    const result = host.sendLocalResponse(HANDOFF_TIMEOUT_STATUS, OWN_REPLY_DETAILS, changetype<usize>(TIMEOUT_BODY), TIMEOUT_BODY.byteLength, headers);
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the handoff reply (status " + result.toString() + ")" + this.requestIdSuffix());
    }
  }

  /** The answer leaves marked (or, `last`, as the chain's end): the chain goes on in the next hop's stream. */
  private handedOff(machine: FallbackMachine, ownReply: bool, last: bool): void {
    machine.phase = ownReply ? Phase.Replying : Phase.PassThrough;
    machine.primaryHeld = false;
    machine.firstPacketDeadlineMs = 0;
    machine.currentBackup = null;
    if (this.hop == 0) this.startedFallback(machine);
    this.clearBody();
    if (last) return;
    // The next hop's stream reads it back (a property of request life survives the recreated stream).
    host.setProperty(CHAIN_PATH, String.UTF8.encode(new HandoffChain(this.nextHop(), machine.trigger, machine.attempts).encode()));
    if (!host.logs(LogLevel.Info)) return;
    host.logBytes(LogLevel.Info, "fallback: handed to the route fallback (hop " + this.nextHop().toString() + "); " +
      outcomeText("marked", machine.trigger, formatAttempts(machine.attempts)) + this.requestIdSuffix());
  }
}

