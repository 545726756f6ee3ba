// The streamed mode's downstream root context (root_id "ai-fallback-streamed"): the same plugin
// configuration as the dispatch mode (the generator passes it whole), of which it uses the global
// firstPacketTimeout, maxRequestBodyBytes, firstPacket (told to the primary guard) and
// maxKeptBytesPerWorker (the VM's one budget, which its body scan counts against).
import { BufferType, LogLevel } from "../abi/enums";
import { HttpContext, RootContext } from "../abi/context";
import { getBufferBytes, log, monotonicMs, setTickPeriodMs } from "../abi/hostcalls";
import { Policy } from "../core/config/config";
import { CooldownSettings } from "../core/cooldown";
import { COOLDOWN_REFRESH_MS, cooldownStore } from "../host/cooldown_store";
import { parseConfig } from "../core/config/config_parse";
import { defineBudgetMetrics, forgetBudgetLimit, setBudgetLimit } from "../host/vm_budget";
import { HedgeCounters } from "../host/shared_counters";

export const STREAMED_ROOT_ID = "ai-fallback-streamed";

export class StreamedRoot extends RootContext {
  /** Makes its streams; set by the entry point (main.ts), so that the root does not import the stream that imports it. */
  static streamFactory: (id: u32, root: StreamedRoot) => HttpContext = (id: u32, root: StreamedRoot): HttpContext =>
    new HttpContext(id, root);

  policy: Policy | null = null;
  /** `hedge`: this worker's requests that may race a backup now (given the hedge header, first content not yet answered). */
  hedgesInFlight: i32 = 0;
  hedges: HedgeCounters | null = null;
  /** Skip services known to be down (null: off); its `primary` names the primary's cluster (the generator sets it). */
  cooldown: CooldownSettings | null = null;

  onConfigure(size: u32): bool {
    const result = parseConfig(getBufferBytes(BufferType.PluginConfiguration, 0, size));
    if (result.config == null) {
      // Critical: the one line that says what to fix sits among the critical lines Envoy ends its start with.
      log(LogLevel.Critical, "invalid configuration (" + STREAMED_ROOT_ID + "): " + result.error);
      return false;
    }
    this.policy = result.config!.global;
    if (this.policy!.hedgeMaxInFlight > 0 && this.hedges == null) this.hedges = new HedgeCounters();
    this.cooldown = result.config!.cooldown;
    if (this.cooldown !== null && this.cooldown!.primary.length == 0) {
      log(LogLevel.Critical, "invalid configuration (" + STREAMED_ROOT_ID + "): cooldown.primary: required in the streamed mode " +
        "(the primary's cluster name; the generator, scripts/streamed-config.mjs, sets it)");
      return false;
    }
    // The cooldown table other workers change is read on the tick.
    setTickPeriodMs(this.cooldown !== null ? <u32>COOLDOWN_REFRESH_MS : 0);
    setBudgetLimit(this.id, <i64>result.config!.maxKeptBytesPerWorker);
    defineBudgetMetrics();
    return true;
  }

  onTick(): void {
    if (this.cooldown !== null) cooldownStore.refresh(monotonicMs());
  }

  onDelete(): void {
    forgetBudgetLimit(this.id);
  }

  createHttpContext(id: u32): HttpContext {
    return StreamedRoot.streamFactory(id, this);
  }
}
