// The streamed mode's error meaning on the primary's attempt: whether its 4xx is held for its body,
// and what its body decides (core/error_meaning.ts, core/policy.ts). The router retries on the
// marker header the attempt filters set (the generated route's retriable_headers), so a refusal in
// neverTrigger is simply left unmarked. Also the attempt filter's small shared helpers.
import { LogLevel, MapType } from "../abi/enums";
import { log, logs, replaceHeader } from "../abi/hostcalls";
import { UpstreamConfig } from "../core/config/config";
import { HEADER_DECLINED, HEADER_RETRY } from "../core/replay";
import { UpstreamRoot } from "./upstream_root";
import { ERROR_BODY_READ_BYTES } from "../core/error_meaning";
import { BudgetShare } from "../core/memory_budget";
import { decideByMeaning, meaningMayMatter, neverTriggerReport } from "../core/policy";
import { heldErrorMeanings, responseAnnouncesOver } from "../host/budgeted_reads";
import { vmBudget } from "../host/vm_budget";

/**
 * Whether the primary's error (`failed`: by its status) is held until its body is read: a body is to
 * come, the lists could change its verdict, and it does not announce more than the read takes.
 * Called on errors only (one header look).
 */
export function primaryErrorNeedsBody(config: UpstreamConfig, status: i32, failed: bool, endOfStream: bool): bool {
  if (endOfStream || config.attempt >= config.attempts) return false;
  if (!meaningMayMatter(status, failed, config.neverTrigger, config.alwaysTrigger)) return false;
  return !responseAnnouncesOver(ERROR_BODY_READ_BYTES);
}

/**
 * The held error's verdict by its buffered body (`bodySize` bytes; 0 = not read: the status decides):
 * null = it falls back; "" = it passes through; else it passes through because of neverTrigger,
 * and this is the report (never_trigger=<code>).
 */
export function readPrimaryErrorMeaning(config: UpstreamConfig, status: i32, bodySize: u32): string | null {
  const share = new BudgetShare(vmBudget);
  const meanings = bodySize == 0 ? new Array<string>() : heldErrorMeanings(share, bodySize);
  share.releaseAll();
  const verdict = decideByMeaning(config.triggerStatuses.has(status), meanings, config.neverTrigger, config.alwaysTrigger);
  if (verdict.fallback) return null;
  return verdict.neverTriggered ? neverTriggerReport(verdict.code) : "";
}

/** Marks the answer for the router's retry (retriable_headers); the route removes the mark before the client. */
export function markForRetry(config: UpstreamConfig): void {
  replaceHeader(MapType.HttpResponseHeaders, HEADER_RETRY, config.retryMark);
}

/** A failed answer of the primary is marked for the retry; its result (its status) goes to the next attempt. */
export function failedResult(config: UpstreamConfig, status: i32): string {
  markForRetry(config);
  return status.toString();
}

/**
 * Whether a backup's attempt hands records on: takes one an earlier attempt's filter left (the
 * primary's has a filter, or an earlier backup's), or leaves one for a later backup.
 */
export function recordsAround(config: UpstreamConfig): bool {
  return config.primaryFilter || config.attempt > 2 || config.attempt < config.attempts;
}

/** The primary's 4xx, its headers held while its body is buffered (up to ERROR_BODY_READ_BYTES). */
export class HeldError {
  constructor(public status: i32) {}

  /** Its body can be read: all of it came, or the read's bound. */
  ready(bodySize: u32, endOfStream: bool): bool {
    return endOfStream || bodySize >= <u32>ERROR_BODY_READ_BYTES;
  }

  /**
   * Decided by its buffered body (`bodySize` bytes; 0: by its status): true = it falls back (marked
   * for the retry); false = it passes, reported and counted when its error is in neverTrigger.
   */
  decide(config: UpstreamConfig, bodySize: u32, root: UpstreamRoot): bool {
    const declined = readPrimaryErrorMeaning(config, this.status, bodySize);
    if (declined === null) {
      markForRetry(config);
      return true;
    }
    if (declined.length == 0) return false;
    replaceHeader(MapType.HttpResponseHeaders, HEADER_DECLINED, declined);
    root.countNeverTrigger();
    if (logs(LogLevel.Info)) {
      log(LogLevel.Info, "streamed primary: status=" + this.status.toString() + " passed through unreplayed: " + declined + " (its error is in neverTrigger)");
    }
    return false;
  }
}
