// The filter's Envoy counters. Envoy shows them under `wasmcustom.` in /stats; Prometheus output
// drops that prefix (ai_fallback_started and so on). Names are documented in README.md.
import { MetricType } from "./abi/enums";
import { defineMetric, incrementMetric } from "./abi/hostcalls";
import { TriggerKind } from "./policy";

export class Metrics {
  readonly started: u32 = defineMetric(MetricType.Counter, "ai_fallback.started");
  readonly servedByBackup: u32 = defineMetric(MetricType.Counter, "ai_fallback.served_by_backup");
  readonly exhausted: u32 = defineMetric(MetricType.Counter, "ai_fallback.exhausted");
  readonly notReplayable: u32 = defineMetric(MetricType.Counter, "ai_fallback.not_replayable");
  readonly preempted: u32 = defineMetric(MetricType.Counter, "ai_fallback.preempted");
  readonly backupCalls: u32 = defineMetric(MetricType.Counter, "ai_fallback.backup_calls");
  /** Requests (or backup attempts) given up because the VM's memory budget could not hold them. */
  readonly overBudget: u32 = defineMetric(MetricType.Counter, "ai_fallback.over_budget");
  readonly triggerStatus: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.status");
  readonly triggerUpstreamFailure: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.upstream_failure");
  readonly triggerIntercepted: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.intercepted");
  readonly triggerFirstPacketTimeout: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.first_packet_timeout");
  // Work in flight, summed over workers: both return to 0 when no stream waits (a leak would show).
  // Kept with +1/-1 increments so that workers add up rather than overwrite each other.
  readonly pendingBackupCalls: u32 = defineMetric(MetricType.Gauge, "ai_fallback.pending_backup_calls");
  readonly streamTimers: u32 = defineMetric(MetricType.Gauge, "ai_fallback.timers");
  /** Stream contexts alive (created and not yet ended): 0 when no request is in flight. */
  readonly streams: u32 = defineMetric(MetricType.Gauge, "ai_fallback.streams");
  /** Bytes of the memory budget in use, as of the last stream that ended: 0 when nothing is in flight. */
  readonly keptBytes: u32 = defineMetric(MetricType.Gauge, "ai_fallback.kept_bytes");

  adjust(id: u32, delta: i64): void {
    incrementMetric(id, delta);
  }

  count(id: u32): void {
    incrementMetric(id, 1);
  }

  countTrigger(kind: TriggerKind): void {
    switch (kind) {
      case TriggerKind.Status: this.count(this.triggerStatus); break;
      case TriggerKind.UpstreamFailure: this.count(this.triggerUpstreamFailure); break;
      case TriggerKind.Intercepted: this.count(this.triggerIntercepted); break;
      case TriggerKind.FirstPacketTimeout: this.count(this.triggerFirstPacketTimeout); break;
    }
  }
}
