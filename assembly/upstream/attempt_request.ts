// The request side of one attempt of the streamed chain: which service's configuration applies (the
// marker of the one-cluster layout, service_marker.ts), the record the attempts before it left, and,
// on a backup, the request rewritten for it (path, authority, credentials, headers; the body's model at
// its end), or, when the body's model cannot be rewritten for its override, the body emptied and the
// attempt marked skipped (its answer is replaced: upstream_stream.ts, skipped_attempt.ts).
import { BufferType, DataAction, HeadersAction, LogLevel, MapType } from "../abi/enums";
import { getHeader, getHeaders, log, logs, removeHeader, replaceHeader, setBufferBytes } from "../abi/hostcalls";
import { overBudget, showKeptBytes } from "../host/vm_budget";
import { Backup, UpstreamConfig } from "../core/config/config";
import { NOT_REWRITABLE } from "../core/attempts";
import { RewriteOutcome } from "../core/model_rewrite";
import { recordsAround } from "./attempt_error_meaning";
import { NO_HEADERS, attemptHeaderEdits, editsReadClientHeaders } from "../core/attempt_headers";
import { Header, HeaderEdits } from "../core/headers";
import { AttemptRecord, RESULT_RETRY, RESULT_UNKNOWN } from "./attempt_log";
import { BODY_OVER_BUDGET, RESULT_OVER_BUDGET, rewriteBody } from "./body_rewrite";
import { sendNothingOfTheClient, takeServiceMarker } from "./service_marker";
import { knownRequestIdentity } from "./request_identity";
import { UpstreamRoot, attemptLog } from "./upstream_root";
import { AttemptRace } from "./attempt_race";
import { skippedBefore } from "./attempt_cooldown";

/** Sets (replaces) each of `sets` in the request's headers. */
function setHeaders(sets: Header[]): void {
  for (let i = 0; i < sets.length; i++) replaceHeader(MapType.HttpRequestHeaders, sets[i].name, sets[i].value);
}

/**
 * Removes the headers `sets` names, but the pseudo-headers (:path, :authority), without which Envoy
 * would answer the client itself: what a skipped attempt's request has of them is nobody's credential.
 */
function removeSetNames(sets: Header[]): void {
  for (let i = 0; i < sets.length; i++) if (!sets[i].name.startsWith(":")) removeHeader(MapType.HttpRequestHeaders, sets[i].name);
}

/** A backup's edits that the client's headers do not change: the same on every attempt, worked out once per configuration. */
function fixedHeaderEdits(config: UpstreamConfig, backup: Backup): HeaderEdits {
  let edits = config.fixedHeaderEdits;
  if (edits === null) {
    edits = attemptHeaderEdits(NO_HEADERS, backup, config.earlierBackupHeaders);
    config.fixedHeaderEdits = edits;
  }
  return edits;
}

/** The most of a client's x-request-id a log line keeps (the id is the client's to size). */
const LOGGED_ID_CHARS = 128;

export class AttemptRequest extends AttemptRace {
  private rewriting: bool = false;
  /** This backup's own headers, held with the request's headers until its body's model is rewritten (holdsRequestHeaders). */
  private heldSets: Header[] | null = null;
  /** The request body's bytes held so far (Envoy's count at the last body callback): a body ended by trailers has no last one. */
  private heldBodyBytes: u32 = 0;
  /** This override backup's attempt is skipped ("" = not): its result, e.g. not_rewritable. */
  protected skipped: string = "";
  /** The marker named no service this filter knows: nothing of the client's goes out, and its answer is replaced. */
  protected unknownService: bool = false;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  /**
   * The attempt's configuration. One-cluster layout: its service's, as the marker names it; a missing
   * or unknown marker fails closed (no backup's credentials are added, the client's are removed, the
   * body is emptied, and the answer is replaced by an error).
   */
  private chooseConfig(): UpstreamConfig | null {
    const root = this.upstreamRoot;
    const services = root.services;
    if (services == null) {
      this.metrics = root.metrics;
      return root.config;
    }
    const name = takeServiceMarker();
    const index = name === null ? -1 : services.names.indexOf(name);
    if (index < 0) {
      this.unknownService = true;
      sendNothingOfTheClient(name, root.credentialHeaders);
      return null;
    }
    this.metrics = root.serviceMetrics[index];
    return services.configs[index];
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const config = this.chooseConfig();
    this.config = config;
    if (config == null) return HeadersAction.Continue;
    const backup = config.backup;
    if (backup == null) {
      // The primary: a request the route does not retry leaves no record (it would wait for nobody).
      // Which request it is is read only if it fails (the happy path reads nothing more). The method
      // cannot wait for that: Envoy lets a filter read the request's headers only in their callback,
      // so it is read here, unless no request reaches this cluster but by the retrying route.
      if (config.retryingRouteOnly) {
        this.recordable = true;
        return HeadersAction.Continue;
      }
      const method = getHeader(MapType.HttpRequestHeaders, ":method");
      this.recordable = method !== null && config.methods.includes(method);
      return HeadersAction.Continue;
    }
    // A backup: the fallback is under way. The log line's id, then what the attempts before this one left.
    this.logsInfo = logs(LogLevel.Info);
    if (this.logsInfo) {
      const requestId = getHeader(MapType.HttpRequestHeaders, "x-request-id");
      if (requestId !== null) this.requestId = requestId.length > LOGGED_ID_CHARS ? requestId.slice(0, LOGGED_ID_CHARS) + "..." : requestId;
    }
    let record: AttemptRecord | null = null;
    const metrics = this.metrics!;
    if (config.hedge) {
      // Attempts may overlap: this one joins the request's shared record (attempt_race.ts).
      record = this.joinRace(config, backup);
    } else if (recordsAround(config)) {
      const owner = knownRequestIdentity();
      this.owner = owner;
      if (owner !== null) record = attemptLog.take(owner);
      if (record !== null) showKeptBytes();
    }
    if (record == null) record = new AttemptRecord();
    // The chain may have started past services that cool (the downstream role said where).
    if (config.cooldown !== null && record.attempts.length == 0) skippedBefore(record);
    record.fillTo(config.attempt, config.primaryFilter ? RESULT_UNKNOWN : RESULT_RETRY);
    this.record = record;
    // A repeat of this backup (same-service retry) is not the fallback's start.
    const attempts = record.attempts;
    if (config.attempt == 2 && (attempts.length == 0 || attempts[attempts.length - 1].service != backup.serviceLabel)) {
      metrics.count(metrics.started);
      metrics.countTrigger(record.trigger());
    }

    const edits = editsReadClientHeaders(backup)
      ? attemptHeaderEdits(getHeaders(MapType.HttpRequestHeaders), backup, config.earlierBackupHeaders)
      : fixedHeaderEdits(config, backup);
    for (let i = 0; i < edits.removals.length; i++) removeHeader(MapType.HttpRequestHeaders, edits.removals[i]);
    // Held headers: this backup's own (its credential) wait for the body's rewrite; a skipped attempt never gets them.
    const holds = backup.modelLiteral !== null && config.holdsRequestHeaders;
    if (!holds) setHeaders(edits.sets);
    // Only calls that go out count (an override backup's, once its body's model is written).
    if (backup.modelLiteral === null) {
      metrics.count(metrics.backupCalls);
      return HeadersAction.Continue;
    }
    if (endOfStream) {
      // No body: no model to rewrite.
      if (holds) removeSetNames(edits.sets);
      this.skipNotRewritable(config);
      return HeadersAction.Continue;
    }
    // The body waits for its rewrite, and one not rewritten never leaves. Without
    // allow_on_headers_stop_iteration the headers must go on (else no body would come).
    this.rewriting = true;
    if (!holds) return HeadersAction.Continue;
    this.heldSets = edits.sets;
    return HeadersAction.StopIteration;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (this.unknownService) {
      // Fail closed: none of the client's body goes to a service this filter cannot name.
      if (!endOfStream) return this.holdBody(bodySize);
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      return DataAction.Continue;
    }
    if (!this.rewriting) return DataAction.Continue;
    // The model may sit anywhere in the body: rewrite it whole, once it is all here.
    if (!endOfStream) return this.holdBody(bodySize);
    this.bodyEnded(bodySize);
    return DataAction.Continue;
  }

  /**
   * A body followed by trailers (HTTP/2, or HTTP/1 where trailers are enabled) ends here, not in a body
   * callback: what is held is rewritten or emptied before it leaves with them, as at a body's end.
   */
  onRequestTrailers(trailerCount: u32): HeadersAction {
    if (this.unknownService) {
      if (this.heldBodyBytes > 0) setBufferBytes(BufferType.HttpRequestBody, 0, this.heldBodyBytes, 0, 0);
    } else if (this.rewriting) {
      this.bodyEnded(this.heldBodyBytes);
    }
    return HeadersAction.Continue;
  }

  /** The body goes on being buffered; Envoy's count of the bytes held so far is kept for trailers. */
  private holdBody(bodySize: u32): DataAction {
    this.heldBodyBytes = bodySize;
    return DataAction.StopIterationAndBuffer;
  }

  /** The whole body (`bodySize` bytes) is here: its model rewritten for the backup, or the attempt skipped with it emptied. */
  private bodyEnded(bodySize: u32): void {
    this.rewriting = false;
    const config = this.config!;
    const backup = config.backup!;
    const outcome = bodySize == 0 ? RewriteOutcome.NotJsonObject : rewriteBody(bodySize, backup.modelLiteral!);
    // Fail closed: a body that still carries the client's model never reaches an override backup.
    if (outcome == RewriteOutcome.NotJsonObject || outcome == RewriteOutcome.NoModel) {
      this.skipNotRewritable(config);
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      this.dropHeldSets();
      return;
    }
    if (outcome == BODY_OVER_BUDGET) {
      overBudget("streamed backup " + backup.serviceLabel + ": no room to rewrite the model of a " + bodySize.toString() +
        "-byte body; it gets an empty body, its answer is dropped, the chain goes on", this.requestIdSuffix());
      this.skipped = RESULT_OVER_BUDGET;
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      this.dropHeldSets();
      return;
    }
    const held = this.heldSets;
    if (held !== null) setHeaders(held);
    const metrics = this.metrics!;
    metrics.count(metrics.backupCalls);
  }

  /** A skipped attempt with held headers: the values this backup would have replaced (the client's credential, an earlier backup's key) go too. */
  private dropHeldSets(): void {
    const held = this.heldSets;
    if (held === null) return;
    this.heldSets = null;
    removeSetNames(held);
  }

  private skipNotRewritable(config: UpstreamConfig): void {
    const metrics = this.metrics!;
    metrics.count(metrics.notRewritable);
    log(LogLevel.Info, "streamed backup " + config.backup!.serviceLabel + ": the request body has no top-level JSON \"model\" to rewrite to " +
      config.backup!.modelLabel + "; it gets an empty body, its answer is dropped, the chain goes on" + this.requestIdSuffix());
    this.skipped = NOT_REWRITABLE;
  }
}
