// The streamed mode's root context (root_id "ai-fallback-upstream"): one per backup cluster's
// upstream filter, holding that backup's entry, parsed once.
import { BufferType, LogLevel } from "../abi/enums";
import { HttpContext, RootContext } from "../abi/context";
import { getBufferBytes, log } from "../abi/hostcalls";
import { Backup, parseBackupEntry } from "../config";
import { UpstreamStream } from "./upstream_stream";

export const UPSTREAM_ROOT_ID = "ai-fallback-upstream";

export class UpstreamRoot extends RootContext {
  backup: Backup | null = null;

  onConfigure(size: u32): bool {
    const result = parseBackupEntry(getBufferBytes(BufferType.PluginConfiguration, 0, size), "backup");
    if (result.backup == null) {
      log(LogLevel.Error, "invalid configuration (" + UPSTREAM_ROOT_ID + "): " + result.error);
      return false;
    }
    this.backup = result.backup;
    return true;
  }

  createHttpContext(id: u32): HttpContext {
    return new UpstreamStream(id, this);
  }
}
