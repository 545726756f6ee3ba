// The filter's Envoy counters. Envoy shows them under `wasmcustom.` in /stats; Prometheus output
// drops that prefix (ai_fallback_started and so on). Names are documented in README.md.
import { MetricType } from "../abi/enums";
import { defineMetric, incrementMetric } from "../abi/hostcalls";
import { TriggerKind } from "../core/policy";
import {
  COUNTER_STARTED, COUNTER_SERVED_BY_BACKUP, COUNTER_EXHAUSTED, COUNTER_BACKUP_CALLS, COUNTER_TRIGGER_STATUS, COUNTER_TRIGGER_UPSTREAM_FAILURE, COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT,
  COUNTER_TRIGGER_STREAM_ERROR, COUNTER_NOT_REWRITABLE, COUNTER_NEVER_TRIGGER, BackupCounters,
} from "../host/shared_counters";

export class Metrics {
  readonly started: u32 = defineMetric(MetricType.Counter, COUNTER_STARTED);
  readonly servedByBackup: u32 = defineMetric(MetricType.Counter, COUNTER_SERVED_BY_BACKUP);
  readonly exhausted: u32 = defineMetric(MetricType.Counter, COUNTER_EXHAUSTED);
  readonly notReplayable: u32 = defineMetric(MetricType.Counter, "ai_fallback.not_replayable");
  readonly preempted: u32 = defineMetric(MetricType.Counter, "ai_fallback.preempted");
  readonly notRewritable: u32 = defineMetric(MetricType.Counter, COUNTER_NOT_REWRITABLE);
  readonly neverTrigger: u32 = defineMetric(MetricType.Counter, COUNTER_NEVER_TRIGGER);
  readonly backupCalls: u32 = defineMetric(MetricType.Counter, COUNTER_BACKUP_CALLS);
  /** Calls of a service again after its failure (`retry`): a backup's retries, and the primary's the router made before a fallback. */
  readonly retries: u32 = defineMetric(MetricType.Counter, "ai_fallback.retries");
  readonly triggerStatus: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_STATUS);
  readonly triggerUpstreamFailure: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_UPSTREAM_FAILURE);
  readonly triggerIntercepted: u32 = defineMetric(MetricType.Counter, "ai_fallback.trigger.intercepted");
  readonly triggerFirstPacketTimeout: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_FIRST_PACKET_TIMEOUT);
  readonly triggerStreamError: u32 = defineMetric(MetricType.Counter, COUNTER_TRIGGER_STREAM_ERROR);
  /** Answers cut because they went silent for streamIdleTimeout after they began. */
  readonly streamIdleCuts: u32 = defineMetric(MetricType.Counter, "ai_fallback.stream_idle_cut");
  /** Envoy was found not to honour this filter's header pause (allow_on_headers_stop_iteration unset): once per worker. */
  readonly pauseNotHonoured: u32 = defineMetric(MetricType.Counter, "ai_fallback.pause_not_honoured");
  // Work in flight, summed over workers: each returns to 0 when nothing waits (a leak would show).
  readonly pendingBackupCalls: InFlightGauge = new InFlightGauge("ai_fallback.pending_backup_calls");
  readonly streamTimers: InFlightGauge = new InFlightGauge("ai_fallback.timers");
  /** Stream contexts alive (created and not yet ended): 0 when no request is in flight. */
  readonly streams: InFlightGauge = new InFlightGauge("ai_fallback.streams");
  // ai_fallback.over_budget and ai_fallback.kept_bytes belong to the VM's one budget (vm_budget.ts).

  /** Per backup, defined at its first fallback (a backup never tried costs no metric). */
  private backups: Map<string, BackupCounters> = new Map<string, BackupCounters>();

  count(id: u32): void {
    incrementMetric(id, 1);
  }

  backup(service: string): BackupCounters {
    if (this.backups.has(service)) return this.backups.get(service);
    const counters = new BackupCounters(service);
    this.backups.set(service, counters);
    return counters;
  }

  countTrigger(kind: TriggerKind): void {
    switch (kind) {
      case TriggerKind.Status: this.count(this.triggerStatus); break;
      case TriggerKind.UpstreamFailure: this.count(this.triggerUpstreamFailure); break;
      case TriggerKind.Intercepted: this.count(this.triggerIntercepted); break;
      case TriggerKind.FirstPacketTimeout: this.count(this.triggerFirstPacketTimeout); break;
      case TriggerKind.StreamError: this.count(this.triggerStreamError); break;
    }
  }
}

/**
 * A gauge of things in flight on this worker, updated lazily: a new high is shown at once (the gauge
 * is never below the true count), a fall only when the count reaches 0 or drops below half of what
 * the gauge shows. A worker under steady load makes no host call for it; an exact +1/-1 cost two host
 * calls per request. Envoy sums the workers' updates (each moves the gauge by its own difference).
 */
export class InFlightGauge {
  private readonly id: u32;
  private count: i64 = 0;
  private shown: i64 = 0;

  constructor(name: string) {
    this.id = defineMetric(MetricType.Gauge, name);
  }

  up(): void {
    this.count++;
    if (this.count > this.shown) this.show();
  }

  down(): void {
    if (this.count == 0) return;
    this.count--;
    if (this.count == 0 || this.count < this.shown >> 1) this.show();
  }

  private show(): void {
    incrementMetric(this.id, this.count - this.shown);
    this.shown = this.count;
  }
}
