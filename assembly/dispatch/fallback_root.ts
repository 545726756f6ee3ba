// The root context: parses the configuration once, owns the counters, and keeps the first-packet
// deadlines of its worker's streams behind the one tick timer proxy-wasm gives a root context.
import { HedgeCounters } from "../host/shared_counters";
import { BufferType, LogLevel } from "../abi/enums";
import { HttpContext, RootContext } from "../abi/context";
import { declareRequestProperty, getBufferBytes, log, monotonicMs, setEffectiveContext, setTickPeriodMs } from "../abi/hostcalls";
import { CHAIN_PROPERTY } from "../core/handoff";
import { httpContext } from "../abi/registry";
import { Config } from "../core/config/config";
import { parseConfig } from "../core/config/config_parse";
import { HeaderPause } from "./header_pause";
import { MemoryBudget } from "../core/memory_budget";
import { Metrics } from "./metrics";
import { COOLDOWN_REFRESH_MS, cooldownStore } from "../host/cooldown_store";
import { defineBudgetMetrics, forgetBudgetLimit, overBudget, setBudgetLimit, showKeptBytes, vmBudget } from "../host/vm_budget";

/** Timer granularity: first-packet timeouts fire up to about this much late (see bench/). */
export const TICK_PERIOD_MS: u32 = 10;

/** How long a request may be held at its headers waiting for its body (backendErrorsOnly: false). */
export const REQUEST_HOLD_MS: u64 = 1000;

export class FallbackRoot extends RootContext {
  /** Makes this filter's stream contexts; set by the entry point (main.ts). */
  static streamFactory: (id: u32, root: FallbackRoot) => HttpContext = (id: u32, root: FallbackRoot): HttpContext =>
    new HttpContext(id, root);

  config: Config | null = null;
  metrics: Metrics | null = null;
  /** A held 2xx has delivered body to this filter: Envoy shows bodies after paused headers. */
  heldBodySeen: bool = false;
  /** Whether Envoy honours this filter's pause at the headers (allow_on_headers_stop_iteration). */
  readonly pause: HeaderPause = new HeaderPause();
  /** Every byte this VM allocates for in-flight requests is taken from here first (one for the whole VM). */
  readonly budget: MemoryBudget = vmBudget;
  /** stream id -> first-packet deadline (ms). */
  private deadlines: Map<u32, u64> = new Map<u32, u64>();
  /** No deadline is earlier than this (it may be stale-early after a disarm: one idle scan). */
  private earliestMs: u64 = u64.MAX_VALUE;
  private ticking: bool = false;
  /** `hedge`: this worker's requests racing a backup now (bounded by hedge.maxInFlight). */
  hedgesInFlight: i32 = 0;
  private hedges: HedgeCounters | null = null;

  /** The hedging counters, defined on the first race (or refusal) of this worker. */
  hedgeCounters(): HedgeCounters {
    let hedges = this.hedges;
    if (hedges === null) {
      hedges = new HedgeCounters();
      this.hedges = hedges;
    }
    return hedges;
  }

  onConfigure(size: u32): bool {
    const result = parseConfig(getBufferBytes(BufferType.PluginConfiguration, 0, size));
    if (result.config == null) {
      // Critical: the one line that says what to fix sits among the critical lines Envoy ends its start with.
      log(LogLevel.Critical, "invalid configuration: " + result.error);
      return false;
    }
    for (let i = 0; i < result.warnings.length; i++) log(LogLevel.Warn, "configuration warning: " + result.warnings[i]);
    const config = result.config!;
    this.config = config;
    // Defined at once, so that they show (at 0) before the first race.
    if (config.global.hedgeMaxInFlight > 0) this.hedgeCounters();
    setBudgetLimit(this.id, <i64>config.maxKeptBytesPerWorker);
    defineBudgetMetrics();
    if (this.metrics == null) this.metrics = new Metrics();
    // The handoff carries its chain across Higress's recreated streams in a property of request life.
    if (usesHandoff(config)) declareRequestProperty(CHAIN_PROPERTY);
    // The cooldown table other workers change is read on a slow tick (the fast one while deadlines wait).
    if (!this.ticking && this.idleTickMs() > 0) setTickPeriodMs(this.idleTickMs());
    return true;
  }

  onDelete(): void {
    forgetBudgetLimit(this.id);
  }

  createHttpContext(id: u32): HttpContext {
    const metrics = this.metrics;
    if (metrics !== null) metrics.streams.up();
    return FallbackRoot.streamFactory(id, this);
  }

  /** A stream ended (its one teardown ran): the gauges follow. */
  streamEnded(): void {
    const metrics = this.metrics;
    if (metrics === null) return;
    metrics.streams.down();
    showKeptBytes();
  }

  /** The budget could not hold what a request needed: counted and logged (vm_budget.ts). */
  overBudget(what: string, requestIdSuffix: string): void {
    overBudget(what, requestIdSuffix);
  }

  /** Arms a stream's deadline; the tick starts only when the first deadline appears. */
  armDeadline(streamId: u32, deadlineMs: u64): void {
    if (!this.deadlines.has(streamId)) this.metrics!.streamTimers.up();
    this.deadlines.set(streamId, deadlineMs);
    if (deadlineMs < this.earliestMs) this.earliestMs = deadlineMs;
    if (!this.ticking) {
      this.ticking = true;
      setTickPeriodMs(TICK_PERIOD_MS);
    }
  }

  disarmDeadline(streamId: u32): void {
    if (!this.deadlines.has(streamId)) return;
    this.deadlines.delete(streamId);
    this.metrics!.streamTimers.down();
  }

  onTick(): void {
    const now = monotonicMs();
    if (now >= this.earliestMs) this.fireDue(now);
    const config = this.config;
    if (config !== null && config.cooldown !== null) cooldownStore.refresh(now);
    // Slow down when nothing waits: an idle worker gets no ticks, or only the cooldown's.
    if (this.deadlines.size == 0 && this.ticking) {
      this.ticking = false;
      this.earliestMs = u64.MAX_VALUE;
      setTickPeriodMs(this.idleTickMs());
    }
  }

  /** The tick period while no deadline waits: the cooldown table's refresh, or none. */
  private idleTickMs(): u32 {
    const config = this.config;
    return config !== null && config.cooldown !== null ? <u32>COOLDOWN_REFRESH_MS : 0;
  }

  private fireDue(now: u64): void {
    const ids = this.deadlines.keys();
    let earliest = u64.MAX_VALUE;
    // A stream may arm a new deadline from its onDeadline (a poll for its upstream): armDeadline
    // lowers earliestMs from here, and the minimum is kept below.
    this.earliestMs = u64.MAX_VALUE;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const deadline = this.deadlines.get(id);
      if (deadline > now) {
        if (deadline < earliest) earliest = deadline;
        continue;
      }
      this.disarmDeadline(id);
      const stream = httpContext(id);
      if (stream == null) continue;
      setEffectiveContext(id);
      stream.onDeadline(now);
    }
    if (earliest < this.earliestMs) this.earliestMs = earliest;
  }
}

function usesHandoff(config: Config): bool {
  if (config.global.handoff) return true;
  for (let i = 0; i < config.rules.length; i++) if (config.rules[i].policy.handoff) return true;
  return false;
}
