// The counters both modes define (dispatch/metrics.ts and upstream/upstream_metrics.ts): one name
// each, so that one dashboard serves both modes. Envoy shows them under `wasmcustom.` in /stats.
import { MetricType } from "../abi/enums";
import { defineMetric, incrementMetric } from "../abi/hostcalls";

export const COUNTER_STARTED = "ai_fallback.started";
export const COUNTER_SERVED_BY_BACKUP = "ai_fallback.served_by_backup";
export const COUNTER_EXHAUSTED = "ai_fallback.exhausted";
export const COUNTER_BACKUP_CALLS = "ai_fallback.backup_calls";
export const COUNTER_TRIGGER_STATUS = "ai_fallback.trigger.status";
export const COUNTER_TRIGGER_UPSTREAM_FAILURE = "ai_fallback.trigger.upstream_failure";
export const COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT = "ai_fallback.trigger.first_packet_timeout";
/** firstPacket "content": a streaming 2xx whose first event was an error. */
export const COUNTER_TRIGGER_STREAM_ERROR = "ai_fallback.trigger.stream_error";
/** Model service errors passed through unreplayed: their error code is in neverTrigger. */
export const COUNTER_NEVER_TRIGGER = "ai_fallback.never_trigger";
/** Backups with a model override skipped: the request body's model could not be rewritten. */
export const COUNTER_NOT_REWRITABLE = "ai_fallback.not_rewritable";

/** A backup's own counter: `ai_fallback.backup.<service>.answered` (its answer ended the chain) or `.failed` (called, and failed). */
export function backupCounterName(service: string, what: string): string {
  return "ai_fallback.backup." + service + "." + what;
}

/** One backup's two counters (both modes). */
export class BackupCounters {
  readonly answered: u32;
  readonly failed: u32;
  constructor(service: string) {
    this.answered = defineMetric(MetricType.Counter, backupCounterName(service, "answered"));
    this.failed = defineMetric(MetricType.Counter, backupCounterName(service, "failed"));
  }
}

/** Hedging (`hedge`): a backup started while the primary kept going. */
export const COUNTER_HEDGE_STARTED = "ai_fallback.hedge.started";
/** A race the primary won: its first content came before the backup's answer (the backup's was cancelled or dropped). */
export const COUNTER_HEDGE_WON_BY_PRIMARY = "ai_fallback.hedge.won_by_primary";
/** A race a backup won: the primary was cancelled. */
export const COUNTER_HEDGE_WON_BY_BACKUP = "ai_fallback.hedge.won_by_backup";
/** A slow request that did not race because `hedge.maxInFlight` requests of its worker already could: the primary was abandoned. */
export const COUNTER_HEDGE_OVER_LIMIT = "ai_fallback.hedge.over_limit";

/** The hedging counters (both modes), defined only where `hedge` is configured. */
export class HedgeCounters {
  readonly started: u32 = defineMetric(MetricType.Counter, COUNTER_HEDGE_STARTED);
  readonly wonByPrimary: u32 = defineMetric(MetricType.Counter, COUNTER_HEDGE_WON_BY_PRIMARY);
  readonly wonByBackup: u32 = defineMetric(MetricType.Counter, COUNTER_HEDGE_WON_BY_BACKUP);
  readonly overLimit: u32 = defineMetric(MetricType.Counter, COUNTER_HEDGE_OVER_LIMIT);

  count(id: u32): void {
    incrementMetric(id, 1);
  }
}
