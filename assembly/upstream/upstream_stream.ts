// The streamed mode's per-attempt glue: an upstream HTTP filter on one cluster of the chain.
// Retrying and streaming the answer are Envoy's router's; this filter
// - on a backup, rewrites the attempt's request for that backup (path, authority, credentials,
//   headers; the body's model at its end), or, when the body's model cannot be rewritten for its
//   override, empties the body and answers the attempt itself (skipped_attempt.ts);
// - on every attempt, notes its result in the request's attempt record (attempt_log.ts) when it
//   fails, for the next attempt;
// - on a backup's answer, reports the fallback in the response headers and counters.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType } from "../abi/enums";
import { HttpContext } from "../abi/context";
import { getHeader, getHeaders, getHeadersRaw, log, logBytes, logs, monotonicMs, removeHeader, replaceHeader, responseStatus, sendLocalResponse, setBufferBytes } from "../abi/hostcalls";
import { serializedNamesWithPrefix, serializedStatus } from "../core/header_pairs";
import { overBudget, showKeptBytes } from "../host/vm_budget";
import { UpstreamConfig } from "../core/config/config";
import { Header } from "../core/headers";
import { Attempt, NOT_REWRITABLE, formatAttempts } from "../core/attempts";
import { EVERY_SERVICE_FAILED, outcomeLogLine, outcomeText, servedBy } from "../core/fallback_outcome";
import { publishOutcome } from "../host/outcome_state";
import { FirstPacketTiming, readHedgeTiming } from "../host/first_packet_signal";
import { RewriteOutcome } from "../core/model_rewrite";
import { HEADER_ATTEMPTS, HEADER_MODEL, HEADER_SERVICE, HEADER_TRIGGER, REPORT_HEADER_PREFIX } from "../core/replay";
import { HeldError, failedResult, markForRetry, primaryErrorNeedsBody, recordsAround } from "./attempt_error_meaning";
import { NO_HEADERS, attemptHeaderEdits, editsReadClientHeaders } from "../core/attempt_headers";
import { AttemptRecord, RESULT_FIRST_PACKET_TIMEOUT, RESULT_NO_RESPONSE, RESULT_RETRY, RESULT_UNKNOWN, RequestIdentity } from "./attempt_log";
import { BODY_OVER_BUDGET, RESULT_OVER_BUDGET, rewriteBody } from "./body_rewrite";
import { RaceEntry, joinRecord, primaryWinsOpenRace, reportedAttempts, winRace } from "./hedge_race";
import { answerUnknownService, sendNothingOfTheClient, takeServiceMarker } from "./service_marker";
import { UpstreamMetrics } from "./upstream_metrics";
import { requestIdentity } from "./request_identity";
import { SKIPPED_REPLY_DETAILS, skippedReplyBody, skippedReplyStatus } from "./skipped_attempt";
import { UpstreamRoot, attemptLog } from "./upstream_root";
import { keepForNextAttempt } from "./attempt_keeper";

const PRIMARY_LABEL = "primary";
/** The most of a client's x-request-id a log line keeps (the id is the client's to size). */
const LOGGED_ID_CHARS = 128;

export class UpstreamStream extends HttpContext {
  private rewriting: bool = false;
  /** The primary's request is one the route retries: a failed attempt leaves a record. */
  private recordable: bool = false;
  /** The request the attempt belongs to, once read (the key of its attempt record). */
  private owner: RequestIdentity | null = null;
  /** The request's x-request-id for the log lines, at most LOGGED_ID_CHARS ("" = none or not logged). */
  private requestId: string = "";
  /** The host wrote info lines when this backup's attempt began: asked once per attempt, not again for its outcome line. */
  private logsInfo: bool = false;
  /** The earlier attempts' results, taken from the log (backups only). */
  private record: AttemptRecord | null = null;
  /** Response headers arrived, or the result was noted: onDone has nothing left to do. */
  private settled: bool = false;
  /** The primary's 2xx headers came; its end has not. */
  private unfinished2xx: bool = false;
  /** This override backup's attempt is skipped ("" = not): its result, e.g. not_rewritable. */
  private skipped: string = "";
  /** The attempt's configuration: the root's, or (one-cluster layout) its service's, once the request headers came. */
  private config: UpstreamConfig | null = null;
  /** Its backup's counters (null on the primary). */
  private metrics: UpstreamMetrics | null = null;
  /** Attempts may overlap (hedge): this backup's place in the request's shared record. */
  private race: RaceEntry | null = null;
  /** The primary's 2xx status, while its first body byte may still decide a race. */
  private status2xx: i32 = 0;
  /** The marker named no service this filter knows: nothing of the client's goes out, and its answer is replaced. */
  private unknownService: bool = false;
  private heldError: HeldError | null = null; // the primary's 4xx, held until its body says what it means

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  private get upstreamRoot(): UpstreamRoot {
    return this.root as UpstreamRoot;
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
      // cannot wait for that: Envoy lets a filter read the request's headers only in their callback.
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
      // Attempts may overlap: this one joins the request's shared record (hedge_race.ts).
      const owner = requestIdentity();
      this.owner = owner;
      const race = joinRecord(attemptLog, owner, config.attempt, backup.serviceLabel, backup.modelLabel, monotonicMs());
      this.race = race;
      record = race.record;
      showKeptBytes();
      if (race.hedge) {
        const hedges = this.upstreamRoot.hedges!;
        hedges.count(hedges.started);
      }
    } else if (recordsAround(config)) {
      const owner = requestIdentity();
      this.owner = owner;
      if (owner !== null) record = attemptLog.take(owner);
      if (record !== null) showKeptBytes();
    }
    if (record == null) record = new AttemptRecord();
    record.fillTo(config.attempt, config.primaryFilter ? RESULT_UNKNOWN : RESULT_RETRY);
    this.record = record;
    if (config.attempt == 2) {
      metrics.count(metrics.started);
      metrics.countTrigger(record.trigger());
    }

    const current = editsReadClientHeaders(backup) ? getHeaders(MapType.HttpRequestHeaders) : NO_HEADERS;
    const edits = attemptHeaderEdits(current, backup, config.earlierBackupHeaders);
    for (let i = 0; i < edits.removals.length; i++) removeHeader(MapType.HttpRequestHeaders, edits.removals[i]);
    for (let i = 0; i < edits.sets.length; i++) replaceHeader(MapType.HttpRequestHeaders, edits.sets[i].name, edits.sets[i].value);
    // Only calls that go out count (an override backup's, once its body's model is written).
    if (backup.modelLiteral === null) {
      metrics.count(metrics.backupCalls);
      return HeadersAction.Continue;
    }
    if (endOfStream) {
      // No body: no model to rewrite.
      this.skipNotRewritable(config);
      return HeadersAction.Continue;
    }
    // The headers go on (holding them would need allow_on_headers_stop_iteration, or no body would
    // come); the body waits for its rewrite, and one not rewritten never leaves.
    this.rewriting = true;
    return HeadersAction.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (this.unknownService) {
      // Fail closed: none of the client's body goes to a service this filter cannot name.
      if (!endOfStream) return DataAction.StopIterationAndBuffer;
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      return DataAction.Continue;
    }
    if (!this.rewriting) return DataAction.Continue;
    // The model may sit anywhere in the body: rewrite it whole, once it is all here.
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    this.rewriting = false;
    const config = this.config!;
    const backup = config.backup!;
    const outcome = rewriteBody(bodySize, backup.modelLiteral!);
    // Fail closed: a body that still carries the client's model never reaches an override backup.
    if (outcome == RewriteOutcome.NotJsonObject || outcome == RewriteOutcome.NoModel) {
      this.skipNotRewritable(config);
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      return DataAction.Continue;
    }
    if (outcome == BODY_OVER_BUDGET) {
      overBudget("streamed backup " + backup.serviceLabel + ": no room to rewrite the model of a " + bodySize.toString() +
        "-byte body; it gets an empty body, its answer is dropped, the chain goes on", this.requestIdSuffix());
      this.skipped = RESULT_OVER_BUDGET;
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, 0, 0);
      return DataAction.Continue;
    }
    const metrics = this.metrics!;
    metrics.count(metrics.backupCalls);
    return DataAction.Continue;
  }

  private skipNotRewritable(config: UpstreamConfig): void {
    const metrics = this.metrics!;
    metrics.count(metrics.notRewritable);
    log(LogLevel.Info, "streamed backup " + config.backup!.serviceLabel + ": the request body has no top-level JSON \"model\" to rewrite to " +
      config.backup!.modelLabel + "; it gets an empty body, its answer is dropped, the chain goes on" + this.requestIdSuffix());
    this.skipped = NOT_REWRITABLE;
  }

  /**
   * The answer to a skipped attempt (its body was emptied: Envoy 1.40 lets an upstream filter neither
   * end an attempt before it is sent nor have a local reply of the request path retried, so the attempt
   * goes out empty) never reaches the client: on the last attempt this filter's error takes its place,
   * else its status becomes one the router retries on the next backup.
   */
  private answerSkipped(config: UpstreamConfig, record: AttemptRecord): HeadersAction {
    const backup = config.backup!;
    this.noteResult(record, backup.serviceLabel, backup.modelLabel, this.skipped);
    const status = skippedReplyStatus(config);
    this.settle(config, record, true, false, false);
    if (config.attempt < config.attempts) {
      replaceHeader(MapType.HttpResponseHeaders, ":status", status.toString());
      markForRetry();
      return HeadersAction.Continue;
    }
    const headers: Header[] = [new Header("content-type", "application/json"), new Header(HEADER_TRIGGER, record.trigger())];
    if (!config.hideTopology) headers.push(new Header(HEADER_ATTEMPTS, reportedAttempts(record)));
    const why = this.skipped == NOT_REWRITABLE ? "its model could not be rewritten into the request body" : "no memory to rewrite the request's model";
    const body = skippedReplyBody(status, why);
    sendLocalResponse(<u32>status, SKIPPED_REPLY_DETAILS, changetype<usize>(body), body.byteLength, headers);
    return HeadersAction.StopIteration;
  }

  private requestIdSuffix(): string {
    return this.requestId.length > 0 ? " x-request-id=" + this.requestId : "";
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    if (this.unknownService) return answerUnknownService();
    const config = this.config;
    if (config == null || this.settled) return HeadersAction.Continue;
    this.settled = true;
    const backup = config.backup;
    if (backup == null) {
      const status = responseStatus(MapType.HttpResponseHeaders);
      const failed = config.triggerStatuses.has(status);
      // The primary: only a failure is worth a record (the happy path allocates nothing).
      if (status >= 400 && this.recordable && primaryErrorNeedsBody(config, status, failed, endOfStream)) {
        this.heldError = new HeldError(status);
        return HeadersAction.StopIteration;
      }
      if (failed) this.leaveForNext(config, new AttemptRecord(), failedResult(status), false);
      // A 2xx the primary guard holds until its first byte may still be given up (per-try timeout).
      else if (status >= 200 && status < 300 && !endOfStream) {
        this.unfinished2xx = true;
        if (config.hedge) {
          // A backup may race it: the headers wait here for the first body byte, which decides, so that
          // they can carry the race's report (Envoy lets a filter edit the headers only while it holds them).
          this.status2xx = status;
          return HeadersAction.StopIteration;
        }
      }
      return HeadersAction.Continue;
    }
    const record = this.record!;
    if (this.skipped.length > 0) return this.answerSkipped(config, record);
    // The answer's headers, read once (one host call): its status, and the report headers of its own
    // (a chained gateway's), which never reach the client.
    const own = getHeadersRaw(MapType.HttpResponseHeaders);
    const status = serializedStatus(changetype<usize>(own), own.byteLength);
    const failed = config.triggerStatuses.has(status);
    const race = this.race;
    // A backup's 2xx on a request that races (the streamed role let it): the headers wait here until
    // its first content, which decides the race (onResponseBody); until then its result stays pending,
    // and the report below is provisional. A request that does not race is answered as without hedge.
    const deferred = race !== null && !failed && status >= 200 && status < 300 && !endOfStream &&
      readHedgeTiming() != FirstPacketTiming.NotTimed;
    if (deferred) this.status2xx = status;
    else this.noteResult(record, backup.serviceLabel, backup.modelLabel, status.toString());
    // Served while other attempts may still run: the race is won, the others are cancelled.
    if (!failed && !deferred && race !== null && winRace(attemptLog, this.owner, race)) {
      const hedges = this.upstreamRoot.hedges!;
      hedges.count(hedges.wonByBackup);
    }
    const reported = serializedNamesWithPrefix(changetype<usize>(own), own.byteLength, REPORT_HEADER_PREFIX);
    for (let i = 0; i < reported.length; i++) removeHeader(MapType.HttpResponseHeaders, reported[i]);
    // On an answer the router retries these are dropped with it; on the one the client gets, they tell.
    replaceHeader(MapType.HttpResponseHeaders, HEADER_MODEL, backup.modelLabel);
    replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, record.trigger());
    if (!config.hideTopology) {
      replaceHeader(MapType.HttpResponseHeaders, HEADER_SERVICE, backup.serviceLabel);
      replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, reportedAttempts(record));
    }
    if (failed) markForRetry();
    if (deferred) return HeadersAction.StopIteration;
    this.settle(config, record, failed, true, false);
    return HeadersAction.Continue;
  }

  /** A backup's result: in its place in a shared record (hedge), else appended. */
  private noteResult(record: AttemptRecord, service: string, model: string, result: string): void {
    const race = this.race;
    if (race !== null) record.attempts[race.index].result = result;
    else record.attempts.push(new Attempt(service, model, result));
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataAction {
    if (this.heldError !== null) return this.heldErrorBody(bodySize, endOfStream);
    // The primary's first body byte passes on to the guard, which lets its headers go: if a backup
    // races it, the primary wins. Only while some race is open on this worker is the request looked up.
    if (this.status2xx != 0 && (bodySize > 0 || endOfStream)) {
      if (this.race !== null) this.backupWins();
      else if (attemptLog.openRaces > 0) this.primaryWins();
      this.status2xx = 0;
    }
    if (endOfStream) this.unfinished2xx = false;
    return DataAction.Continue;
  }

  /** A racing backup's first content: it wins unless the race was decided; its held headers get the final report. */
  private backupWins(): void {
    const config = this.config!;
    const record = this.record!;
    const race = this.race!;
    if (record.decided) return;
    record.attempts[race.index].result = this.status2xx.toString();
    if (winRace(attemptLog, this.owner, race)) {
      const hedges = this.upstreamRoot.hedges!;
      hedges.count(hedges.wonByBackup);
    }
    replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, record.trigger());
    if (!config.hideTopology) replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, reportedAttempts(record));
    this.settle(config, record, false, true, false);
  }

  /** The primary's first content came while backups raced it: they lose; its answer says so. */
  private primaryWins(): void {
    const config = this.config!;
    if (!config.hedge) return;
    const record = primaryWinsOpenRace(attemptLog, requestIdentity(), this.status2xx);
    if (record === null) return;
    const hedges = this.upstreamRoot.hedges!;
    hedges.count(hedges.wonByPrimary);
    // Its headers are still held here: the report goes out with them.
    replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, record.trigger());
    if (!config.hideTopology) replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(record.attempts));
    this.logOutcome(servedBy(PRIMARY_LABEL, "pass-through") + ", which won the race", record);
  }

  onResponseTrailers(trailerCount: u32): HeadersAction {
    if (this.heldError !== null) this.heldErrorBody(0, true); // a body that ended with trailers: not read
    this.unfinished2xx = false;
    return HeadersAction.Continue;
  }

  /** The primary's held 4xx: buffered until it can be read, then marked for retry (its result left for the next attempt), or passed. */
  private heldErrorBody(bodySize: u32, endOfStream: bool): DataAction {
    const held = this.heldError!;
    if (!held.ready(bodySize, endOfStream)) return DataAction.StopIterationAndBuffer;
    this.heldError = null;
    if (held.decide(this.config!, bodySize, this.upstreamRoot)) this.leaveForNext(this.config!, new AttemptRecord(), held.status.toString(), false);
    return DataAction.Continue;
  }

  onDone(): void {
    const config = this.config;
    if (config == null) return;
    if (this.unfinished2xx) {
      // The primary's 2xx was cut before its end. If a next attempt follows, the router gave it up
      // while the guard still held its headers (firstPacketTimeout): a late first packet. (The guard
      // counts SSE keep-alives as it is configured to; this filter, before it, need not.) If the
      // client left mid-stream, nothing is left; if the 2xx had reached it otherwise, the entry is swept.
      this.unfinished2xx = false;
      // The primary guard found an error event and left the primary's result (stream_error) itself.
      const owner = requestIdentity();
      this.owner = owner;
      if (owner !== null && attemptLog.holds(owner)) return;
      this.leaveForNext(config, new AttemptRecord(), RESULT_FIRST_PACKET_TIMEOUT, true);
      return;
    }
    if (this.status2xx != 0 && this.race !== null) {
      // A racing backup's 2xx ended before its first content: lost the race, or given up.
      this.status2xx = 0;
      const record = this.record!;
      if (record.decided) return;
      this.noteResult(record, config.backup!.serviceLabel, config.backup!.modelLabel, RESULT_FIRST_PACKET_TIMEOUT);
      this.settle(config, record, true, true, true);
      return;
    }
    if (this.settled) return;
    this.settled = true;
    // No response headers: the connection failed, was reset, or the router gave up the attempt.
    const backup = config.backup;
    if (backup == null) {
      this.leaveForNext(config, new AttemptRecord(), RESULT_NO_RESPONSE, true);
      return;
    }
    const record = this.record;
    if (record == null) return; // ended before its request headers
    // Cancelled because another attempt won the race: its result already says hedge_lost.
    if (this.race !== null && record.decided) return;
    const skipped = this.skipped.length > 0;
    this.noteResult(record, backup.serviceLabel, backup.modelLabel, skipped ? this.skipped : RESULT_NO_RESPONSE);
    this.settle(config, record, true, !skipped, true);
  }

  /**
   * A backup's attempt is over: count it, and hand the record on or log the outcome. `called`: the
   * backup was called (a skipped one did not fail); `atEnd`: at the attempt's teardown.
   */
  private settle(config: UpstreamConfig, record: AttemptRecord, failed: bool, called: bool, atEnd: bool): void {
    const metrics = this.metrics!;
    if (!failed) {
      metrics.count(metrics.answered);
      metrics.count(metrics.servedByBackup);
      this.logOutcome(servedBy(config.backup!.serviceLabel, config.backup!.modelLabel), record);
      return;
    }
    if (called) metrics.count(metrics.failed);
    // Another attempt still runs (hedge): the chain is not over, whichever attempt this is.
    const race = this.race;
    if (config.attempt < config.attempts || (race !== null && record.otherPending(race.index))) {
      this.store(record, atEnd);
      return;
    }
    metrics.count(metrics.exhausted);
    if (race !== null && this.owner !== null) {
      attemptLog.decide(record);
      attemptLog.drop(this.owner!, record);
    }
    this.logOutcome(EVERY_SERVICE_FAILED, record);
  }

  /** The primary failed: start the record the first backup's filter takes. */
  private leaveForNext(config: UpstreamConfig, record: AttemptRecord, result: string, atEnd: bool): void {
    if (config.attempt >= config.attempts || !this.recordable) return;
    record.attempts.push(new Attempt(PRIMARY_LABEL, "", result));
    this.store(record, atEnd);
  }

  /** Leaves `record` for the request's next attempt (attempt_keeper.ts). */
  private store(record: AttemptRecord, atEnd: bool): void {
    keepForNextAttempt(this.owner, record, atEnd, this.requestIdSuffix());
  }

  /** The outcome in the dispatch mode's words (fallback_outcome.ts): filter state for the access log, and the info line. */
  private logOutcome(outcome: string, record: AttemptRecord): void {
    const text = outcomeText(outcome, record.trigger(), formatAttempts(record.attempts));
    publishOutcome(text);
    if (!this.logsInfo) return;
    logBytes(LogLevel.Info, outcomeLogLine(text, this.requestIdSuffix()));
  }
}
