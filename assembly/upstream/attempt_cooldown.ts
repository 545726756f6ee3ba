// The streamed mode's attempts and the cooldown (core/cooldown.ts): each attempt's filter records
// its service's answer in the shared table (a failure always; a success only while the table tracks
// some service, so a healthy request costs nothing), and a backup reports the services the chain
// started past as `cooling`.
import { MapType } from "../abi/enums";
import { getHeader, monotonicMs, wallClockMs } from "../abi/hostcalls";
import { UpstreamConfig } from "../core/config/config";
import { countsAsDown } from "../core/cooldown";
import { utf8ByteString } from "../core/bytes";
import { retryAfterMs } from "../core/retry_after";
import { cooldownStore } from "../host/cooldown_store";
import { readSkipped } from "../host/streamed_start_signal";
import { AttemptRecord } from "./attempt_log";

/** This attempt's service: its backup's cluster, or the primary's (cooldown.primary). */
function serviceOf(config: UpstreamConfig): string {
  const backup = config.backup;
  return backup !== null ? backup.serviceLabel : utf8ByteString(config.cooldown!.primary);
}

/** The attempt's response headers came with `status`. */
export function noteAnswer(config: UpstreamConfig, status: i32): void {
  if (!countsAsDown(status)) {
    if (status < 400 && cooldownStore.anyTracked) cooldownStore.answered(serviceOf(config), monotonicMs());
    return;
  }
  const retryAfter = status == 429 || status == 503 ? retryAfterMs(getHeader(MapType.HttpResponseHeaders, "retry-after"), wallClockMs()) : -1;
  cooldownStore.failed(serviceOf(config), config.cooldown!, monotonicMs(), retryAfter);
}

/** The attempt got no answer (connect failure, reset, a per-try timeout). */
export function noteNoAnswer(config: UpstreamConfig): void {
  cooldownStore.failed(serviceOf(config), config.cooldown!, monotonicMs(), -1);
}

/** A backup's record that nothing came before: the attempts the chain started past, as `cooling`. */
export function skippedBefore(record: AttemptRecord): void {
  const skipped = readSkipped();
  for (let i = 0; i < skipped.length; i++) record.attempts.push(skipped[i]);
}
