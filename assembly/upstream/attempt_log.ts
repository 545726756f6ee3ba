// The streamed mode's memory of one request's attempts, handed from one attempt's upstream filter
// to the next. Pure.
//
// Request-header edits made while the answer comes back (or when the attempt ends) do not reach the
// next attempt, and the router's retry says nothing about why. The request's filter state does reach
// it, but holds bytes, while attempts that overlap (hedge) share one record live. Every attempt of a
// request runs on the same worker, so in the same VM: a table in the module carries the list, keyed
// by the key the module minted for the request and left in its filter state (RequestIdentity: no
// client can choose, share or grow a key). An entry lives only between two
// attempts (the next attempt takes it; an attempt that ends because the client left leaves none); one
// that no attempt takes (the router did not retry) is dropped by the first sweep after RECORD_TTL_MS.
// The table holds at most MAX_RECORDS, and every entry's bytes are taken from the VM's budget.
import { Attempt } from "../core/attempts";
import { RESULT_NO_RESPONSE as NO_RESPONSE } from "../core/fallback_outcome";
import { MemoryBudget } from "../core/memory_budget";

/** An attempt that ended without response headers: connect failure, reset, refused stream or a per-try timeout (Envoy does not tell the filter which). */
export const RESULT_NO_RESPONSE = NO_RESPONSE;
/** The primary's 2xx was given up before its end while its headers were held: the router's per-try timeout (firstPacketTimeout) with the primary guard. */
export const RESULT_FIRST_PACKET_TIMEOUT = "first_packet_timeout";
/** The primary's 2xx began with an error event (firstPacket "content"): the primary guard records it. */
export const RESULT_STREAM_ERROR = "stream_error";
/** The lean streamed mode's primary (no filter on its cluster): the router retried it, why is not known. */
export const RESULT_RETRY = "retry";
/** An earlier attempt that left no entry (Envoy named no request, or the table or the budget was full). */
export const RESULT_UNKNOWN = "unknown";
/** An attempt still in flight while a later one races it (hedge); never shown: the winner reports it as RESULT_HEDGE_LOST. */
export const RESULT_PENDING = "pending";
/** An attempt cancelled because another attempt of the same request sent its first content first (hedge). */
export const RESULT_HEDGE_LOST = "hedge_lost";
export const RECORD_TTL_MS: u64 = 60_000;
export const MAX_RECORDS: i32 = 4096;
/**
 * What one entry costs the budget, at most: its slot in the table (a map of 8-byte keys at a quarter
 * full at worst), the record, its identity and its list (AssemblyScript's allocator: 4 bytes of block
 * header, 16 of object header, blocks of 16 bytes), and per listed attempt its object and its result
 * string ("503", or "attempt-N" for a stand-in). Labels of services and models are the configuration's.
 */
export const ENTRY_BYTES: i64 = 320;
export const ATTEMPT_BYTES: i64 = 96;

/** The bytes an entry with `attempts` listed attempts takes from the budget. */
export function entryBytes(attempts: i32): i64 {
  return ENTRY_BYTES + ATTEMPT_BYTES * <i64>attempts;
}

/** Whether `put` kept the record. */
export const enum Kept {
  Yes = 0,
  /** MAX_RECORDS entries, even after dropping stale ones. */
  Full = 1,
  /** The VM's budget could not hold the entry. */
  OverBudget = 2,
  /** Another request's entry has the same digest: it stays, this one is not kept (neither sees the other's). */
  Collision = 3,
}

/**
 * Which downstream request attempts belong to: a key this VM minted for it (request_identity.ts keeps
 * it in the request's filter state). Keys are never reused in a VM, so two live requests never share one.
 */
export class RequestIdentity {
  constructor(public key: u64) {}

  /** The table's key: a fixed-size digest of the key (splitmix64's finalizer); `sameAs` tells collisions apart. */
  digest(): u64 {
    let h = this.key * 0x9e3779b97f4a7c15;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9;
    h = (h ^ (h >> 27)) * 0x94d049bb133111eb;
    return h ^ (h >> 31);
  }

  sameAs(other: RequestIdentity): bool {
    return this.key == other.key;
  }
}

export class AttemptRecord {
  attempts: Attempt[] = [];
  storedMs: u64 = 0;
  /** Whose record it is (set when it is kept). */
  owner: RequestIdentity | null = null;
  /** What it holds of the budget while it is in the table. */
  chargedBytes: i64 = 0;
  /**
   * Attempts that overlap (hedge) share this one record: it stays in the table while they run, each
   * writes its own result into it, and the first to send content decides the race.
   */
  shared: bool = false;
  /** A shared record's race is over: an attempt's answer went to the client, every pending one lost. */
  decided: bool = false;
  /** It began while the primary was still in flight: a hedge, started by the first-packet timeout. */
  hedged: bool = false;

  /** What started the fallback, as `x-ai-fallback-trigger` says it in the dispatch mode. */
  trigger(): string {
    if (this.hedged) return RESULT_FIRST_PACKET_TIMEOUT;
    if (this.attempts.length == 0) return RESULT_UNKNOWN;
    return triggerOf(this.attempts[0].result);
  }

  /**
   * Stands in for attempts before `attempt` that left no entry (none could be kept, or an upstream
   * cluster without this filter), so that the list keeps its positions. `primaryResult` is what the
   * primary's stand-in says: "unknown", or "retry" when its cluster has no filter (lean mode).
   */
  fillTo(attempt: i32, primaryResult: string = RESULT_UNKNOWN): void {
    while (this.attempts.length < attempt - 1) {
      const n = this.attempts.length + 1;
      this.attempts.push(new Attempt(n == 1 ? "primary" : "attempt-" + n.toString(), "", n == 1 ? primaryResult : RESULT_UNKNOWN));
    }
  }

  /** Whether an attempt other than the one at `index` is still in flight. */
  otherPending(index: i32): bool {
    for (let i = 0; i < this.attempts.length; i++) if (i != index && this.attempts[i].result == RESULT_PENDING) return true;
    return false;
  }

  /** The race is over: every attempt still in flight lost it. */
  losePending(): void {
    for (let i = 0; i < this.attempts.length; i++) if (this.attempts[i].result == RESULT_PENDING) this.attempts[i].result = RESULT_HEDGE_LOST;
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
  private readonly records: Map<u64, AttemptRecord> = new Map<u64, AttemptRecord>();
  private lastSweepMs: u64 = 0;
  /** Bytes the entries hold of the budget. */
  heldBytes: i64 = 0;
  /**
   * Shared records in the table whose race is not decided: while none, a primary's answer has no race
   * to look up (its happy path reads nothing more).
   */
  openRaces: i32 = 0;

  constructor(private readonly budget: MemoryBudget) {}

  /** The record the previous attempt of `owner` left, removed from the table; null when none. */
  take(owner: RequestIdentity): AttemptRecord | null {
    const key = owner.digest();
    if (!this.records.has(key)) return null;
    const record = this.records.get(key);
    if (!record.owner!.sameAs(owner)) return null; // another request's: it stays for its owner
    this.remove(key, record);
    return record;
  }

  /** Whether `owner` has a record waiting for its next attempt. */
  holds(owner: RequestIdentity): bool {
    const key = owner.digest();
    return this.records.has(key) && this.records.get(key).owner!.sameAs(owner);
  }

  /** The record of `owner` in the table, left there; null when none. */
  peek(owner: RequestIdentity): AttemptRecord | null {
    const key = owner.digest();
    if (!this.records.has(key)) return null;
    const record = this.records.get(key);
    return record.owner!.sameAs(owner) ? record : null;
  }

  /** `record` (of `owner`) becomes shared by overlapping attempts and stays in the table; its bytes re-counted. */
  share(owner: RequestIdentity, record: AttemptRecord, nowMs: u64): Kept {
    if (!record.shared) {
      record.shared = true;
      this.openRaces++;
    }
    return this.put(owner, record, nowMs);
  }

  /** The race of a shared record is over (the answer chosen). Still in the table: `drop` it once nobody needs it. */
  decide(record: AttemptRecord): void {
    if (record.decided) return;
    record.decided = true;
    record.losePending();
    if (record.shared) this.openRaces--;
  }

  /** Removes `owner`'s entry if it is `record`. */
  drop(owner: RequestIdentity, record: AttemptRecord): void {
    const key = owner.digest();
    if (this.records.has(key) && this.records.get(key) === record) this.remove(key, record);
  }

  /** Leaves `record` for the next attempt of `owner`, its bytes taken from the budget. */
  put(owner: RequestIdentity, record: AttemptRecord, nowMs: u64): Kept {
    record.storedMs = nowMs;
    record.owner = owner;
    if (this.records.size >= MAX_RECORDS || nowMs - this.lastSweepMs >= RECORD_TTL_MS) {
      this.dropOlderThan(nowMs);
      this.lastSweepMs = nowMs;
    }
    const key = owner.digest();
    if (this.records.has(key)) {
      const earlier = this.records.get(key);
      if (!earlier.owner!.sameAs(owner)) return Kept.Collision;
      if (earlier === record) this.forget(key, earlier); // a shared record put again: its bytes re-counted
      else if (earlier.shared) return this.joinRace(key, earlier, record);
      else this.remove(key, earlier);
    }
    if (this.records.size >= MAX_RECORDS) return Kept.Full;
    const bytes = entryBytes(record.attempts.length);
    if (!this.budget.tryTake(bytes)) return Kept.OverBudget;
    record.chargedBytes = bytes;
    this.heldBytes += bytes;
    this.records.set(key, record);
    return Kept.Yes;
  }

  get size(): i32 {
    return this.records.size;
  }

  dropOlderThan(nowMs: u64): void {
    const keys = this.records.keys();
    for (let i = 0; i < keys.length; i++) {
      const record = this.records.get(keys[i]);
      if (nowMs - record.storedMs >= RECORD_TTL_MS) this.remove(keys[i], record);
    }
  }

  /**
   * The primary (which keeps no reference to a shared record) ended while attempts raced it: its
   * result goes into the shared record unless the race was decided, and a decided record, of which it
   * was the last attempt, leaves the table.
   */
  private joinRace(key: u64, race: AttemptRecord, primary: AttemptRecord): Kept {
    if (race.decided) {
      this.remove(key, race);
      return Kept.Yes;
    }
    if (primary.attempts.length > 0 && race.attempts.length > 0 && race.attempts[0].result == RESULT_PENDING) {
      race.attempts[0].result = primary.attempts[0].result;
    }
    return Kept.Yes;
  }

  private remove(key: u64, record: AttemptRecord): void {
    if (record.shared && !record.decided) {
      record.decided = true;
      this.openRaces--;
    }
    this.forget(key, record);
  }

  private forget(key: u64, record: AttemptRecord): void {
    this.records.delete(key);
    this.budget.give(record.chargedBytes);
    this.heldBytes -= record.chargedBytes;
    record.chargedBytes = 0;
  }
}
