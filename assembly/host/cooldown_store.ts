// The cooldown table every worker shares (core/cooldown.ts is its state machine): kept in
// proxy-wasm shared data under one key, changed with compare-and-swap, and cached in the VM. The
// happy path reads one field of the cache (`anyTracked`); the cache is refreshed from shared data
// on the roots' tick (refresh) and after each change this VM makes. Shared by every role of the VM.
import { LogLevel, MetricType, WasmResult } from "../abi/enums";
import { defineMetric, getSharedData, incrementMetric, logBytes, setSharedData } from "../abi/hostcalls";
import { byteStringFromMemory, byteStringToBuffer } from "../core/bytes";
import {
  Admission, CooldownSettings, ServiceState, admission, claimProbe, coolingCount, formatTable, parseTable, recordFailure, recordSuccess,
} from "../core/cooldown";

const TABLE_KEY = String.UTF8.encode("ai_fallback.cooldown");
/** How often a tick reads the table that other workers may have changed, at most. */
export const COOLDOWN_REFRESH_MS: u64 = 100;
/** Tries of a change that lost its compare-and-swap to another worker's. */
const CAS_TRIES = 8;

export const COUNTER_COOLDOWN_SKIPPED = "ai_fallback.cooldown.skipped";
export const COUNTER_COOLDOWN_PROBES = "ai_fallback.cooldown.probes";
export const GAUGE_COOLING_SERVICES = "ai_fallback.cooldown.cooling_services";

const enum Change {
  Failure = 0,
  Success = 1,
  ClaimProbe = 2,
}

class CooldownStore {
  /** Service (cluster name) -> its state, as this VM last read or wrote it. */
  table: Map<string, ServiceState> = new Map<string, ServiceState>();
  /** Some service has failed or cools: the one thing a healthy request looks at. */
  anyTracked: bool = false;
  /** Requests of this VM told to skip the primary that its guard has not answered yet (upstream/guard_stream.ts). */
  pendingSkips: i32 = 0;
  private cas: u32 = 0;
  private refreshedMs: u64 = 0;
  private skippedId: u32 = 0;
  private probesId: u32 = 0;
  private gaugeId: u32 = 0;
  private metricsDefined: bool = false;

  /** From a tick: what other workers changed, read at most every COOLDOWN_REFRESH_MS (unchanged: nothing parsed). */
  refresh(nowMs: u64): void {
    if (nowMs - this.refreshedMs < COOLDOWN_REFRESH_MS) return;
    this.refreshedMs = nowMs;
    const shared = getSharedData(TABLE_KEY);
    if (shared.value === null || shared.cas == this.cas) return;
    this.take(parseTable(textOf(shared.value!)), shared.cas);
  }

  /** Whether a request may call `service` now: Use, Skip, or Probe (this request was given the one probe). */
  admit(service: string, nowMs: u64, leaseMs: u64): Admission {
    if (!this.anyTracked || !this.table.has(service)) return Admission.Use;
    const seen = admission(this.table.get(service), nowMs);
    if (seen != Admission.Probe) return seen;
    return this.change(service, Change.ClaimProbe, null, nowMs, -1, leaseMs) ? Admission.Probe : Admission.Skip;
  }

  /** `service` failed (`retryAfterMs` >= 0: it said when to come back). */
  failed(service: string, settings: CooldownSettings, nowMs: u64, retryAfterMs: i64): void {
    this.change(service, Change.Failure, settings, nowMs, retryAfterMs, 0);
  }

  /** `service` answered: used again at once. Costs nothing while the table knows nothing of it. */
  answered(service: string, nowMs: u64): void {
    if (!this.anyTracked || !this.table.has(service)) return;
    this.change(service, Change.Success, null, nowMs, -1, 0);
  }

  countSkipped(): void {
    this.defineMetrics();
    incrementMetric(this.skippedId, 1);
  }

  countProbe(): void {
    this.defineMetrics();
    incrementMetric(this.probesId, 1);
  }

  /** Read, change, write back if no other worker wrote meanwhile (else again). Returns whether the change was made. */
  private change(service: string, what: Change, settings: CooldownSettings | null, nowMs: u64, retryAfterMs: i64, leaseMs: u64): bool {
    for (let i = 0; i < CAS_TRIES; i++) {
      const shared = getSharedData(TABLE_KEY);
      const table = shared.value === null ? new Map<string, ServiceState>() : parseTable(textOf(shared.value!));
      const before = coolingCount(table);
      const state = table.has(service) ? table.get(service) : new ServiceState();
      let made = true;
      let entered = false;
      let left = false;
      if (what == Change.Failure) {
        entered = recordFailure(state, settings!, nowMs, retryAfterMs);
      } else if (what == Change.Success) {
        if (!state.cooling && state.failures == 0) made = false;
        else left = recordSuccess(state);
      } else {
        if (admission(state, nowMs) == Admission.Probe) claimProbe(state, nowMs, leaseMs);
        else made = false;
      }
      if (!made) {
        this.take(table, shared.cas);
        return false;
      }
      table.set(service, state);
      const text = formatTable(table);
      const result = setSharedData(TABLE_KEY, byteStringToBuffer(text), shared.cas);
      if (result == WasmResult.CasMismatch) continue;
      if (result != WasmResult.Ok) return false;
      // The new token is not returned by a write: the next refresh reads the table again.
      this.take(parseTable(text), 0);
      this.showCooling(coolingCount(this.table) - before);
      if (entered) {
        logBytes(LogLevel.Warn, "cooldown: " + service + " is skipped for " + (state.coolUntilMs - nowMs).toString() +
          " ms, then probed by one request" + (retryAfterMs >= 0 ? " (its Retry-After)" : " (" + (settings!.failures).toString() + " failures)"));
      }
      if (left) logBytes(LogLevel.Warn, "cooldown: " + service + " answered and is used again");
      if (what == Change.ClaimProbe) this.countProbe();
      return true;
    }
    return false;
  }

  private take(table: Map<string, ServiceState>, cas: u32): void {
    this.table = table;
    this.cas = cas;
    this.anyTracked = table.size > 0;
  }

  /** The gauge moves by this VM's change of the shared count: summed over workers, it is the count. */
  private showCooling(delta: i32): void {
    if (delta == 0) return;
    this.defineMetrics();
    incrementMetric(this.gaugeId, delta);
  }

  private defineMetrics(): void {
    if (this.metricsDefined) return;
    this.metricsDefined = true;
    this.skippedId = defineMetric(MetricType.Counter, COUNTER_COOLDOWN_SKIPPED);
    this.probesId = defineMetric(MetricType.Counter, COUNTER_COOLDOWN_PROBES);
    this.gaugeId = defineMetric(MetricType.Gauge, GAUGE_COOLING_SERVICES);
  }
}

/** Shared data's bytes as a byte string (service names are byte strings, as Envoy gives them). */
function textOf(bytes: ArrayBuffer): string {
  return byteStringFromMemory(changetype<usize>(bytes), bytes.byteLength);
}

/** One per VM: every role of the VM (and so every filter on a worker) reads the same. */
export const cooldownStore = new CooldownStore();
