// The streamed mode's per-attempt glue: an upstream HTTP filter on one cluster of the chain.
// Retrying and streaming the answer are Envoy's router's; this filter
// - on a backup, rewrites the attempt's request for that backup (attempt_request.ts);
// - on every attempt, notes its result in the request's attempt record (attempt_log.ts) when it
//   fails, for the next attempt (attempt_outcome.ts);
// - on a backup's answer, reports the fallback in the response headers and counters; with `hedge`,
//   the first content decides the race of overlapping attempts (attempt_race.ts).
// This file is the answer side: response headers, body, trailers and the attempt's end.
import { DataAction, HeadersAction, MapType } from "../abi/enums";
import { getHeadersRaw, removeHeader, replaceHeader, responseStatus, sendLocalResponse } from "../abi/hostcalls";
import { serializedNamesWithPrefix, serializedStatus } from "../core/header_pairs";
import { UpstreamConfig } from "../core/config/config";
import { Header } from "../core/headers";
import { NOT_REWRITABLE } from "../core/attempts";
import { FirstPacketTiming, readHedgeTiming } from "../host/first_packet_signal";
import { HEADER_ATTEMPTS, HEADER_MODEL, HEADER_SERVICE, HEADER_TRIGGER, REPORT_HEADER_PREFIX } from "../core/replay";
import { HeldError, failedResult, markForRetry, primaryErrorNeedsBody } from "./attempt_error_meaning";
import { AttemptRecord, RESULT_FIRST_PACKET_TIMEOUT, RESULT_NO_RESPONSE } from "./attempt_log";
import { reportedAttempts, winRace } from "./hedge_race";
import { answerUnknownService } from "./service_marker";
import { clientLeft, knownRequestIdentity } from "./request_identity";
import { SKIPPED_REPLY_DETAILS, skippedReplyBody, skippedReplyStatus } from "./skipped_attempt";
import { UpstreamRoot, attemptLog } from "./upstream_root";
import { AttemptRequest } from "./attempt_request";
import { noteAnswer, noteNoAnswer } from "./attempt_cooldown";
import { chooseNextTry, moveOn } from "./attempt_retry";

export class UpstreamStream extends AttemptRequest {
  /** Response headers arrived, or the result was noted: onDone has nothing left to do. */
  private settled: bool = false;
  /** The primary's 2xx headers came; its end has not. */
  private unfinished2xx: bool = false;
  private heldError: HeldError | null = null; // the primary's 4xx, held until its body says what it means

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
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
    if (config.retry !== null) this.tryFollows = moveOn(config);
    this.settle(config, record, true, false, false);
    if (config.retry !== null ? this.tryFollows : config.attempt < config.attempts) {
      replaceHeader(MapType.HttpResponseHeaders, ":status", status.toString());
      markForRetry(config);
      return HeadersAction.Continue;
    }
    const headers: Header[] = [new Header("content-type", "application/json"), new Header(HEADER_TRIGGER, record.trigger())];
    if (!config.hideTopology) headers.push(new Header(HEADER_ATTEMPTS, reportedAttempts(record)));
    const why = this.skipped == NOT_REWRITABLE ? "its model could not be rewritten into the request body" : "no memory to rewrite the request's model";
    const body = skippedReplyBody(status, why);
    sendLocalResponse(<u32>status, SKIPPED_REPLY_DETAILS, changetype<usize>(body), body.byteLength, headers);
    return HeadersAction.StopIteration;
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
      if (config.cooldown !== null) noteAnswer(config, status);
      // The primary: only a failure is worth a record (the happy path allocates nothing).
      if (status >= 400 && this.recordable && primaryErrorNeedsBody(config, status, failed, endOfStream)) {
        this.heldError = new HeldError(status);
        return HeadersAction.StopIteration;
      }
      if (failed) this.leaveForNext(config, new AttemptRecord(), failedResult(config, status), false, status);
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
    if (config.cooldown !== null) noteAnswer(config, status);
    const race = this.race;
    // A backup's 2xx on a request that races (the streamed role let it): the headers wait here until
    // its first content, which decides the race (onResponseBody); until then its result stays pending,
    // and the report below is provisional. A request that does not race is answered as without hedge.
    const deferred = race !== null && !failed && status >= 200 && status < 300 && !endOfStream &&
      readHedgeTiming() != FirstPacketTiming.NotTimed;
    if (deferred) this.status2xx = status;
    else this.noteResult(record, backup.serviceLabel, backup.modelLabel, status.toString());
    if (failed && config.retry !== null) this.tryFollows = chooseNextTry(config, record, backup.serviceLabel, status, false, true);
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
    // With `retry`, only a failure another try follows (the route retries on the mark alone).
    if (failed && (config.retry === null || this.tryFollows)) markForRetry(config);
    if (deferred) return HeadersAction.StopIteration;
    this.settle(config, record, failed, true, false);
    return HeadersAction.Continue;
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
    if (held.decide(this.config!, bodySize, this.upstreamRoot)) this.leaveForNext(this.config!, new AttemptRecord(), held.status.toString(), false, held.status);
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
      if (config.cooldown !== null && !clientLeft()) noteNoAnswer(config);
      // The primary guard found an error event and left the primary's result (stream_error) itself.
      const owner = knownRequestIdentity();
      this.owner = owner;
      if (owner !== null && attemptLog.holds(owner)) {
        if (config.retry !== null) moveOn(config);
        return;
      }
      this.leaveForNext(config, new AttemptRecord(), RESULT_FIRST_PACKET_TIMEOUT, true, 0, true);
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
    if (config.cooldown !== null && !clientLeft()) noteNoAnswer(config);
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
    if (config.retry !== null) this.tryFollows = skipped ? moveOn(config) : chooseNextTry(config, record, backup.serviceLabel, 0, false, false);
    this.settle(config, record, true, !skipped, true);
  }
}
