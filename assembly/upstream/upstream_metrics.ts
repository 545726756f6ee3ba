// The streamed mode's counters, named as the dispatch mode's (metrics.ts) where they mean the same,
// so that one dashboard serves both modes. Defined by the backups' upstream filters only: the
// primary's filter counts nothing, so the happy path costs no metric update.
import { MetricType } from "../abi/enums";
import { defineMetric, incrementMetric } from "../abi/hostcalls";

export class UpstreamMetrics {
  readonly started: u32 = defineMetric(MetricType.Counter, "ai_fallback.started");
  readonly servedByBackup: u32 = defineMetric(MetricType.Counter, "ai_fallback.served_by_backup");
  readonly exhausted: u32 = defineMetric(MetricType.Counter, "ai_fallback.exhausted");
  readonly backupCalls: u32 = defineMetric(MetricType.Counter, "ai_fallback.backup_calls");
  readonly triggerStatus: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.status");
  readonly triggerUpstreamFailure: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.upstream_failure");
  readonly triggerFirstPacketTimeout: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.first_packet_timeout");
  /** This backup's answers that ended the chain (a status outside triggerStatuses). */
  readonly answered: u32;
  /** This backup's attempts that failed (a trigger status, or no answer). */
  readonly failed: u32;

  constructor(service: string) {
    this.answered = defineMetric(MetricType.Counter, "ai_fallback.backup." + service + ".answered");
    this.failed = defineMetric(MetricType.Counter, "ai_fallback.backup." + service + ".failed");
  }

  count(id: u32): void {
    incrementMetric(id, 1);
  }

  countTrigger(trigger: string): void {
    if (trigger.startsWith("status=")) this.count(this.triggerStatus);
    else if (trigger == "upstream_failure") this.count(this.triggerUpstreamFailure);
    else if (trigger == "first_packet_timeout") this.count(this.triggerFirstPacketTimeout);
  }
}
