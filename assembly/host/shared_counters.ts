// The counters both modes define (dispatch/metrics.ts and upstream/upstream_metrics.ts): one name
// each, so that one dashboard serves both modes. Envoy shows them under `wasmcustom.` in /stats.
import { MetricType } from "../abi/enums";
import { defineMetric } from "../abi/hostcalls";

export const COUNTER_STARTED = "ai_fallback.started";
export const COUNTER_SERVED_BY_BACKUP = "ai_fallback.served_by_backup";
export const COUNTER_EXHAUSTED = "ai_fallback.exhausted";
export const COUNTER_BACKUP_CALLS = "ai_fallback.backup_calls";
export const COUNTER_TRIGGER_STATUS = "ai_fallback.trigger.status";
export const COUNTER_TRIGGER_UPSTREAM_FAILURE = "ai_fallback.trigger.upstream_failure";
export const COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT = "ai_fallback.trigger.first_packet_timeout";
/** firstPacket "content": a streaming 2xx whose first event was an error. */
export const COUNTER_TRIGGER_STREAM_ERROR = "ai_fallback.trigger.stream_error";
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
