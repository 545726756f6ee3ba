// The upstream role's root context (root_id "ai-fallback-upstream"): one per cluster's upstream
// filter. Its configuration picks the room: `{"guard": {...}}` (the primary guard, guard_stream.ts),
// or, in the streamed mode, an attempt of the chain, `{"attempt": n, ...}` (upstream_stream.ts: the
// primary's result recorded, a backup's request rewritten and its answer reported). Parsed once.
import { BufferType, LogLevel, MetricType } from "../abi/enums";
import { HttpContext, RootContext } from "../abi/context";
import { defineMetric, getBufferBytes, incrementMetric, log } from "../abi/hostcalls";
import { CREDENTIAL_HEADERS, ServicesConfig, UpstreamConfig } from "../core/config/config";
import { isServicesConfig, parseServicesConfig, parseUpstreamConfig } from "../core/config/config_parse";
import { COUNTER_NEVER_TRIGGER, HedgeCounters } from "../host/shared_counters";
import { LogLimiter } from "../core/log_limiter";
import { defineBudgetMetrics, vmBudget } from "../host/vm_budget";
import { AttemptLog } from "./attempt_log";
import { GuardConfig, parseGuardConfig } from "./guard_config";
import { UpstreamMetrics } from "./upstream_metrics";

export const UPSTREAM_ROOT_ID = "ai-fallback-upstream";

/** One per VM (so per worker), shared by every cluster's filter: all attempts of a request run on one worker. Its entries count against the VM's budget. */
export const attemptLog = new AttemptLog(vmBudget);
/** A full attempt log is said at most once a minute per worker. */
export const attemptLogFull = new LogLimiter(60_000);

export class UpstreamRoot extends RootContext {
  // The streams of its two rooms, set by the entry point (main.ts), so that the root does not import
  // the streams that import it.
  static guardStreamFactory: (id: u32, root: UpstreamRoot) => HttpContext = (id: u32, root: UpstreamRoot): HttpContext =>
    new HttpContext(id, root);
  static attemptStreamFactory: (id: u32, root: UpstreamRoot) => HttpContext = (id: u32, root: UpstreamRoot): HttpContext =>
    new HttpContext(id, root);

  /** An attempt of the streamed mode's chain. */
  config: UpstreamConfig | null = null;
  /** Null on the primary's filter, which counts nothing. */
  metrics: UpstreamMetrics | null = null;
  /** The one-cluster layout: every service's attempt configuration, by the name its endpoints carry. */
  services: ServicesConfig | null = null;
  /** Per service (as `services`): its backup's counters, null for the primary. */
  serviceMetrics: (UpstreamMetrics | null)[] = [];
  /** The hedging counters, where attempts may overlap (`hedge`). */
  hedges: HedgeCounters | null = null;
  /** The credential headers an attempt of an unknown service loses: every one the services' backups know. */
  credentialHeaders: string[] = CREDENTIAL_HEADERS;
  guard: GuardConfig | null = null;
  /** A held 2xx has shown the guard a body: Envoy shows bodies after paused headers. */
  heldBodySeen: bool = false;
  /** The hint about allow_on_headers_stop_iteration was logged (once a worker). */
  holdHintLogged: bool = false;
  /** ai_fallback.never_trigger, defined by the primary's filter at its first refusal passed through (0 = not yet). */
  private neverTriggerCounter: u32 = 0;

  /** Counts an error of the primary passed through because its error code is in neverTrigger. */
  countNeverTrigger(): void {
    if (this.neverTriggerCounter == 0) this.neverTriggerCounter = defineMetric(MetricType.Counter, COUNTER_NEVER_TRIGGER);
    incrementMetric(this.neverTriggerCounter, 1);
  }

  onConfigure(size: u32): bool {
    const bytes = getBufferBytes(BufferType.PluginConfiguration, 0, size);
    // Its copies count against the VM's one budget, whose limit ai-fallback's configurations set.
    defineBudgetMetrics();
    const guard = parseGuardConfig(bytes);
    if (guard.isGuard) {
      if (guard.guard == null) return this.refuse(guard.error);
      for (let i = 0; i < guard.warnings.length; i++) log(LogLevel.Warn, "configuration warning (" + UPSTREAM_ROOT_ID + "): " + guard.warnings[i]);
      this.guard = guard.guard;
      return true;
    }
    if (isServicesConfig(bytes)) return this.configureServices(bytes);
    const result = parseUpstreamConfig(bytes);
    const config = result.config;
    if (config == null) return this.refuse(result.error);
    this.config = config;
    const backup = config.backup;
    if (backup !== null && this.metrics == null) this.metrics = new UpstreamMetrics(backup.serviceLabel);
    return true;
  }

  private configureServices(bytes: ArrayBuffer): bool {
    const result = parseServicesConfig(bytes);
    const services = result.config;
    if (services == null) return this.refuse(result.error);
    this.services = services;
    this.serviceMetrics = [];
    for (let i = 0; i < services.configs.length; i++) {
      const config = services.configs[i];
      const backup = config.backup;
      this.serviceMetrics.push(backup !== null ? new UpstreamMetrics(backup.serviceLabel) : null);
      if (backup !== null && backup.credentialHeaders.length > this.credentialHeaders.length) this.credentialHeaders = backup.credentialHeaders;
      if (config.hedge && this.hedges == null) this.hedges = new HedgeCounters();
    }
    return true;
  }

  private refuse(error: string): bool {
    // Critical: the one line that says what to fix sits among the critical lines Envoy ends its start with.
    log(LogLevel.Critical, "invalid configuration (" + UPSTREAM_ROOT_ID + "): " + error);
    return false;
  }

  createHttpContext(id: u32): HttpContext {
    if (this.guard !== null) return UpstreamRoot.guardStreamFactory(id, this);
    return UpstreamRoot.attemptStreamFactory(id, this);
  }
}
