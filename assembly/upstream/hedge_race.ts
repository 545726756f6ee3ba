// Hedging in the streamed mode (`hedge`): attempts of one request overlap. At the per-try timeout
// (firstPacketTimeout) Envoy's router starts the next priority's attempt and keeps the earlier one;
// the first whose response headers reach the router is served and the others are reset. The attempts'
// filters share one record in the attempt log (attempt_log.ts) while they race: each writes its own
// result into it, the winner decides it (every attempt still pending lost: result=hedge_lost) and
// reports it, and the record leaves the table once no attempt needs it.
import { Attempt, formatAttempts } from "../core/attempts";
import { AttemptLog, AttemptRecord, RESULT_HEDGE_LOST, RESULT_PENDING, RequestIdentity } from "./attempt_log";

/** A backup attempt's place in its request's shared record. */
export class RaceEntry {
  constructor(public record: AttemptRecord, public index: i32, public hedge: bool) {}
}

/**
 * A backup's attempt joins its request's record: the one the attempts before it left (a retry, or a
 * race under way), or, when none is there, a new one in which the primary is still in flight (a hedge
 * started by the per-try timeout). Its own result is pending until it answers or ends.
 * `hedge`: an earlier attempt is still in flight, so this attempt races it.
 */
export function joinRecord(log: AttemptLog, owner: RequestIdentity | null, attempt: i32, service: string, model: string, nowMs: u64): RaceEntry {
  let record = owner !== null ? log.peek(owner) : null;
  if (record == null) {
    record = new AttemptRecord();
    record.hedged = true;
    record.fillTo(attempt, RESULT_PENDING);
  } else {
    record.fillTo(attempt);
  }
  const hedge = !record.decided && record.otherPending(-1);
  record.attempts.push(new Attempt(service, model, RESULT_PENDING));
  if (owner !== null) log.share(owner, record, nowMs);
  return new RaceEntry(record, record.attempts.length - 1, hedge);
}

/** The attempts as the report says them: those still in flight lose to the answer that carries it. */
export function reportedAttempts(record: AttemptRecord): string {
  let pending = false;
  for (let i = 0; i < record.attempts.length; i++) if (record.attempts[i].result == RESULT_PENDING) pending = true;
  if (!pending) return formatAttempts(record.attempts);
  const shown: Attempt[] = [];
  for (let i = 0; i < record.attempts.length; i++) {
    const a = record.attempts[i];
    shown.push(a.result == RESULT_PENDING ? new Attempt(a.service, a.model, RESULT_HEDGE_LOST) : a);
  }
  return formatAttempts(shown);
}

/**
 * An attempt's answer is served while others may race: decides the race. Returns whether another
 * attempt was in flight (a race was won). The record leaves the table unless the primary, which keeps
 * no reference to it, is still to end (it drops it then).
 */
export function winRace(log: AttemptLog, owner: RequestIdentity | null, entry: RaceEntry): bool {
  const record = entry.record;
  if (record.decided) return false;
  const raced = record.otherPending(entry.index);
  const primaryRunning = record.attempts.length > 0 && record.attempts[0].result == RESULT_PENDING && entry.index != 0;
  log.decide(record);
  if (!primaryRunning && owner !== null) log.drop(owner, record);
  return raced;
}

/**
 * The primary's first content (its 2xx `status`) came: if backups of its request (`owner`) race it,
 * it wins, and the decided record is returned (for its report); null when no race is open.
 */
export function primaryWinsOpenRace(log: AttemptLog, owner: RequestIdentity | null, status: i32): AttemptRecord | null {
  if (owner === null) return null;
  const record = log.peek(owner);
  if (record === null || !record.shared || record.decided) return null;
  record.attempts[0].result = status.toString();
  winRace(log, owner, new RaceEntry(record, 0, true));
  return record;
}
