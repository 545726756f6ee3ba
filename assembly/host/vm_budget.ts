// The one memory budget of this VM (memory_budget.ts), shared by every root context the VM runs:
// ai-fallback's configurations, the primary guard's, the streamed mode's roles. Envoy runs every
// plugin configuration with the same vm_id in one VM per worker, and V8 caps that VM as a whole, so
// one budget covers all of them. Also its gauge, its counter and its rate-limited log line.
import { LogLevel, MetricType } from "../abi/enums";
import { defineMetric, incrementMetric, logBytes, monotonicMs } from "../abi/hostcalls";
import { DEFAULT_MAX_KEPT_BYTES_PER_WORKER } from "../core/config/config";
import { LogLimiter } from "../core/log_limiter";
import { BudgetLimits, MemoryBudget } from "../core/memory_budget";

/** At most one "over budget" log line per this long (per worker), with the count of those left out. */
const OVER_BUDGET_LOG_INTERVAL_MS: u64 = 1000;

/** Every byte any role of the module allocates for in-flight requests in this VM is taken from here first. */
export const vmBudget = new MemoryBudget(<i64>DEFAULT_MAX_KEPT_BYTES_PER_WORKER);
const limits = new BudgetLimits(<i64>DEFAULT_MAX_KEPT_BYTES_PER_WORKER);

/** A configuration that sets maxKeptBytesPerWorker (its default counts too): the smallest one wins. */
export function setBudgetLimit(rootId: u32, limit: i64): void {
  limits.set(rootId, limit);
  vmBudget.limit = limits.current;
}

/** The root context is gone: its limit no longer counts. */
export function forgetBudgetLimit(rootId: u32): void {
  limits.forget(rootId);
  vmBudget.limit = limits.current;
}

/** The budget's gauge and counter, defined once per VM by the first root context configured. */
class BudgetMetrics {
  /** Requests (or backup attempts, or held bodies) given up because the budget could not hold them. */
  readonly overBudget: u32 = defineMetric(MetricType.Counter, "ai_fallback.over_budget");
  /** Bytes of the budget in use, as of the last stream that held some of it ended: 0 when nothing is in flight. */
  readonly keptBytes: u32 = defineMetric(MetricType.Gauge, "ai_fallback.kept_bytes");
  /** vmBudget.used as the gauge last showed it. */
  shownBytes: i64 = 0;
  readonly log: LogLimiter = new LogLimiter(OVER_BUDGET_LOG_INTERVAL_MS);
}

let metrics: BudgetMetrics | null = null;

/** Called by every root context's configure (a metric is defined in a host callback, not at load). */
export function defineBudgetMetrics(): void {
  if (metrics == null) metrics = new BudgetMetrics();
}

/** A stream that held some of the budget ended: the gauge follows what is in use. */
export function showKeptBytes(): void {
  const m = metrics;
  if (m === null || vmBudget.used == m.shownBytes) return;
  incrementMetric(m.keptBytes, vmBudget.used - m.shownBytes);
  m.shownBytes = vmBudget.used;
}

/**
 * The budget could not hold what a request needed: counted, and logged at most once a second per
 * worker (a flood of large requests must not flood the log too). `what` says what was given up.
 */
export function overBudget(what: string, requestIdSuffix: string): void {
  const m = metrics;
  if (m === null) return;
  incrementMetric(m.overBudget, 1);
  if (!m.log.allow(monotonicMs())) return;
  const left = m.log.takeSuppressed();
  logBytes(LogLevel.Info, "over the memory budget (maxKeptBytesPerWorker " + vmBudget.limit.toString() + ", in use " +
    vmBudget.used.toString() + "): " + what + requestIdSuffix +
    (left > 0 ? " (" + left.toString() + " more such decisions in the last second not logged)" : ""));
}
