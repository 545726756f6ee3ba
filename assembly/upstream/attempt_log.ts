// The streamed mode's memory of one request's attempts, handed from one attempt's upstream filter
// to the next. Pure.
//
// Envoy gives an upstream filter no channel to the next attempt: request-header edits made while
// the answer comes back (or when the attempt ends) do not reach it, and the router's retry says
// nothing about why. But every attempt of a request runs on the same worker, so in the same VM:
// a table in the module, keyed by the request's x-request-id, carries the list. An entry lives only
// between two attempts (the next attempt takes it); one that no attempt takes (the client left, or
// the router did not retry) is dropped by the first sweep after RECORD_TTL_MS, and the table never
// holds more than MAX_RECORDS.
import { Attempt } from "../fallback_machine";

/** An attempt that ended without response headers: connect failure, reset, refused stream or a per-try timeout (Envoy does not tell the filter which). */
export const RESULT_NO_RESPONSE = "no_response";
/** The primary's 2xx was given up before its end while its headers were held: the router's per-try timeout (firstPacketTimeout) with the primary guard. */
export const RESULT_FIRST_PACKET_TIMEOUT = "first_packet_timeout";
/** The lean streamed mode's primary (no filter on its cluster): the router retried it, why is not known. */
export const RESULT_RETRY = "retry";
/** An earlier attempt that left no entry (no x-request-id, or the table was full). */
export const RESULT_UNKNOWN = "unknown";
export const RECORD_TTL_MS: u64 = 60_000;
export const MAX_RECORDS: i32 = 4096;

export class AttemptRecord {
  attempts: Attempt[] = [];
  storedMs: u64 = 0;

  /** What started the fallback, as `x-ai-fallback-trigger` says it in the dispatch mode. */
  trigger(): string {
    if (this.attempts.length == 0) return RESULT_UNKNOWN;
    return triggerOf(this.attempts[0].result);
  }

  /**
   * Stands in for attempts before `attempt` that left no entry (no x-request-id then, or an upstream
   * cluster without this filter), so that the list keeps its positions. `primaryResult` is what the
   * primary's stand-in says: "unknown", or "retry" when its cluster has no filter (lean mode).
   */
  fillTo(attempt: i32, primaryResult: string = RESULT_UNKNOWN): void {
    while (this.attempts.length < attempt - 1) {
      const n = this.attempts.length + 1;
      this.attempts.push(new Attempt(n == 1 ? "primary" : "attempt-" + n.toString(), "", n == 1 ? primaryResult : RESULT_UNKNOWN));
    }
  }
}

/** `status=503` for a status, `upstream_failure` for an attempt without an answer, else the result as it is. */
export function triggerOf(result: string): string {
  if (result.length == 3 && isDigits(result)) return "status=" + result;
  if (result == RESULT_NO_RESPONSE) return "upstream_failure";
  return result;
}

function isDigits(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export class AttemptLog {
  private readonly records: Map<string, AttemptRecord> = new Map<string, AttemptRecord>();
  private lastSweepMs: u64 = 0;

  /** The record the previous attempt of `requestId` left, removed from the table; null when none. */
  take(requestId: string): AttemptRecord | null {
    if (!this.records.has(requestId)) return null;
    const record = this.records.get(requestId);
    this.records.delete(requestId);
    return record;
  }

  /** Leaves `record` for the next attempt; false (not kept) when the table is full even after dropping stale entries. */
  put(requestId: string, record: AttemptRecord, nowMs: u64): bool {
    record.storedMs = nowMs;
    if (this.records.size >= MAX_RECORDS || nowMs - this.lastSweepMs >= RECORD_TTL_MS) {
      this.dropOlderThan(nowMs);
      this.lastSweepMs = nowMs;
    }
    if (this.records.size >= MAX_RECORDS) return false;
    this.records.set(requestId, record);
    return true;
  }

  get size(): i32 {
    return this.records.size;
  }

  dropOlderThan(nowMs: u64): void {
    const keys = this.records.keys();
    for (let i = 0; i < keys.length; i++) {
      if (nowMs - this.records.get(keys[i]).storedMs >= RECORD_TTL_MS) this.records.delete(keys[i]);
    }
  }
}
