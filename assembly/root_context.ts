// The root context: parses the configuration once, owns the counters, and keeps the first-packet
// deadlines of its worker's streams behind the one tick timer proxy-wasm gives a root context.
import { BufferType, LogLevel } from "./abi/enums";
import { HttpContext, RootContext } from "./abi/context";
import { currentTimeMs, getBufferBytes, log, setEffectiveContext, setTickPeriodMs } from "./abi/hostcalls";
import { httpContext } from "./abi/registry";
import { Config, parseConfig } from "./config";
import { Metrics } from "./metrics";
import { FallbackStream } from "./stream_context";

/** Timer granularity: first-packet timeouts fire up to this much late (see bench/). */
export const TICK_PERIOD_MS: u32 = 10;

export class FallbackRoot extends RootContext {
  config: Config | null = null;
  metrics: Metrics | null = null;
  /** stream id -> first-packet deadline (ms). */
  private deadlines: Map<u32, u64> = new Map<u32, u64>();
  private ticking: bool = false;

  onConfigure(size: u32): bool {
    const result = parseConfig(getBufferBytes(BufferType.PluginConfiguration, 0, size));
    if (result.config == null) {
      log(LogLevel.Error, "invalid configuration: " + result.error);
      return false;
    }
    this.config = result.config;
    if (this.metrics == null) this.metrics = new Metrics();
    return true;
  }

  createHttpContext(id: u32): HttpContext {
    return new FallbackStream(id, this);
  }

  /** Arms a stream's first-packet deadline; the tick starts only when the first deadline appears. */
  armDeadline(streamId: u32, deadlineMs: u64): void {
    if (!this.deadlines.has(streamId)) this.metrics!.adjust(this.metrics!.firstPacketTimers, 1);
    this.deadlines.set(streamId, deadlineMs);
    if (!this.ticking) {
      this.ticking = true;
      setTickPeriodMs(TICK_PERIOD_MS);
    }
  }

  disarmDeadline(streamId: u32): void {
    if (!this.deadlines.has(streamId)) return;
    this.deadlines.delete(streamId);
    this.metrics!.adjust(this.metrics!.firstPacketTimers, -1);
  }

  onTick(): void {
    const now = currentTimeMs();
    const ids = this.deadlines.keys();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (this.deadlines.get(id) > now) continue;
      this.disarmDeadline(id);
      const stream = httpContext(id);
      if (stream == null) continue;
      setEffectiveContext(id);
      (stream as FallbackStream).onFirstPacketDeadline(now);
    }
    // Stop ticking when nothing waits, so an idle worker gets no ticks.
    if (this.deadlines.size == 0 && this.ticking) {
      this.ticking = false;
      setTickPeriodMs(0);
    }
  }
}
