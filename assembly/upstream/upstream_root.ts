// The upstream role's root context (root_id "ai-fallback-upstream"): one per cluster's upstream
// filter. Its configuration picks the room: `{"guard": {...}}` on the primary's cluster (the
// primary guard, guard_stream.ts), or a backup entry on a backup's cluster in the streamed mode
// (upstream_stream.ts). Parsed once.
import { BufferType, LogLevel } from "../abi/enums";
import { HttpContext, RootContext } from "../abi/context";
import { getBufferBytes, log } from "../abi/hostcalls";
import { Backup, DEFAULT_MAX_KEPT_BYTES_PER_WORKER, parseBackupEntry } from "../config";
import { MemoryBudget } from "../memory_budget";
import { GuardConfig, parseGuardConfig } from "./guard_config";
import { GuardStream } from "./guard_stream";
import { UpstreamStream } from "./upstream_stream";

export const UPSTREAM_ROOT_ID = "ai-fallback-upstream";

export class UpstreamRoot extends RootContext {
  backup: Backup | null = null;
  guard: GuardConfig | null = null;
  /** What the guard's request copies may hold in this VM (one per worker). */
  budget: MemoryBudget = new MemoryBudget(DEFAULT_MAX_KEPT_BYTES_PER_WORKER);
  /** A held 2xx has shown the guard a body: Envoy shows bodies after paused headers. */
  heldBodySeen: bool = false;
  /** The hint about allow_on_headers_stop_iteration was logged (once a worker). */
  holdHintLogged: bool = false;

  onConfigure(size: u32): bool {
    const bytes = getBufferBytes(BufferType.PluginConfiguration, 0, size);
    const guard = parseGuardConfig(bytes);
    if (guard.isGuard) {
      if (guard.guard == null) return this.refuse(guard.error);
      this.guard = guard.guard;
      return true;
    }
    const result = parseBackupEntry(bytes, "backup");
    if (result.backup == null) return this.refuse(result.error);
    this.backup = result.backup;
    return true;
  }

  private refuse(error: string): bool {
    log(LogLevel.Error, "invalid configuration (" + UPSTREAM_ROOT_ID + "): " + error);
    return false;
  }

  createHttpContext(id: u32): HttpContext {
    if (this.guard !== null) return new GuardStream(id, this);
    return new UpstreamStream(id, this);
  }
}
