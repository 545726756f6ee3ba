// The streamed mode's counters, named as the dispatch mode's (host/shared_counters.ts) where they mean the same,
// so that one dashboard serves both modes. Defined by the backups' upstream filters only: the
// primary's filter counts nothing, so the happy path costs no metric update.
import { MetricType } from "../abi/enums";
import { defineMetric, incrementMetric } from "../abi/hostcalls";
import {
  COUNTER_STARTED, COUNTER_SERVED_BY_BACKUP, COUNTER_EXHAUSTED, COUNTER_BACKUP_CALLS, COUNTER_TRIGGER_STATUS, COUNTER_TRIGGER_UPSTREAM_FAILURE, COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT,
  COUNTER_TRIGGER_STREAM_ERROR, COUNTER_NOT_REWRITABLE, BackupCounters,
} from "../host/shared_counters";

export class UpstreamMetrics {
  readonly started: u32 = defineMetric(MetricType.Counter, COUNTER_STARTED);
  readonly servedByBackup: u32 = defineMetric(MetricType.Counter, COUNTER_SERVED_BY_BACKUP);
  readonly exhausted: u32 = defineMetric(MetricType.Counter, COUNTER_EXHAUSTED);
  readonly backupCalls: u32 = defineMetric(MetricType.Counter, COUNTER_BACKUP_CALLS);
  readonly triggerStatus: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_STATUS);
  readonly triggerUpstreamFailure: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_UPSTREAM_FAILURE);
  readonly triggerFirstPacketTimeout: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT);
  readonly triggerStreamError: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_STREAM_ERROR);
  readonly notRewritable: u32 = defineMetric(MetricType.Counter, COUNTER_NOT_REWRITABLE);
  /** This backup's answers that ended the chain (a status outside triggerStatuses). */
  readonly answered: u32;
  /** This backup's attempts that failed (a trigger status, or no answer). */
  readonly failed: u32;

  constructor(service: string) {
    const own = new BackupCounters(service);
    this.answered = own.answered;
    this.failed = own.failed;
  }

  count(id: u32): void {
    incrementMetric(id, 1);
  }

  countTrigger(trigger: string): void {
    if (trigger.startsWith("status=")) this.count(this.triggerStatus);
    else if (trigger == "upstream_failure") this.count(this.triggerUpstreamFailure);
    else if (trigger == "first_packet_timeout") this.count(this.triggerFirstPacketTimeout);
    else if (trigger == "stream_error") this.count(this.triggerStreamError);
  }
}
