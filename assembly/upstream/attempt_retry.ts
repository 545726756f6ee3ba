// Same-service retry in the streamed mode (`retry`): after a failed try, which cluster the router's next
// try goes to. The generated route picks each try's cluster by the filter state `wasm.ai_fallback.next`
// (a matcher cluster specifier the router evaluates again on every retry); the failed try's filter
// names its own cluster when the failure is one retry.on retries and tries of its service remain, else
// the next service's (or, after the last service's last try, the route's sink, which has no endpoint).
// Only failed tries get here: a healthy answer does no new work.
import { MapType } from "../abi/enums";
import { getHeader, propertyPath, removeHeader, setProperty, wallClockMs } from "../abi/hostcalls";
import { UpstreamConfig } from "../core/config/config";
import { readsRetryAfter, retryWaitMs } from "../core/retry";
import { retryAfterMs } from "../core/retry_after";
import { AttemptRecord } from "./attempt_log";

const NEXT_PATH = propertyPath(["ai_fallback.next"]);
/** The failed try's cluster: the exhausted reply's `last` (the generator's local_reply_config). */
const LAST_PATH = propertyPath(["ai_fallback.last"]);
/** The filter state value the route sends to its sink cluster: the chain is over, no service is tried again. */
export const CHAIN_OVER = "-";

/** Tries of `service` already listed in `record` (this one included). */
function triesOf(record: AttemptRecord, service: string): i32 {
  let n = 0;
  for (let i = 0; i < record.attempts.length; i++) if (record.attempts[i].service == service) n++;
  return n;
}

/**
 * This try failed (`status` 0: no answer; `timedOut`: a late first packet), its entry already in
 * `record` under `service`: names the next try's cluster for the route. Returns whether another try
 * follows (of this service or the next). `inHeaders`: the answer's headers are at hand (its
 * Retry-After is read, and removed when the chain moves on, so the router does not wait for it).
 */
export function chooseNextTry(config: UpstreamConfig, record: AttemptRecord, service: string, status: i32, timedOut: bool, inHeaders: bool): bool {
  const settings = config.retry!;
  const clusters = config.retryClusters;
  const retryAfter = inHeaders && readsRetryAfter(status)
    ? retryAfterMs(getHeader(MapType.HttpResponseHeaders, "retry-after"), wallClockMs()) : -1;
  const retriesDone = triesOf(record, service) - 1;
  if (retryWaitMs(settings, status, timedOut, retriesDone, retryAfter, 0) >= 0) {
    tellNext(config, clusters[config.attempt - 1]);
    return true;
  }
  if (config.attempt >= clusters.length) {
    tellNext(config, CHAIN_OVER);
    return false;
  }
  if (inHeaders && retryAfter >= 0) removeHeader(MapType.HttpResponseHeaders, "retry-after");
  tellNext(config, clusters[config.attempt]);
  return true;
}

function tellNext(config: UpstreamConfig, cluster: string): void {
  setProperty(NEXT_PATH, String.UTF8.encode(cluster));
  setProperty(LAST_PATH, String.UTF8.encode(config.retryClusters[config.attempt - 1]));
}

/** This try failed in a way never retried on its service (a skipped backup, an error event): names the next service's cluster; whether one follows. */
export function moveOn(config: UpstreamConfig): bool {
  const clusters = config.retryClusters;
  const follows = config.attempt < clusters.length;
  tellNext(config, follows ? clusters[config.attempt] : CHAIN_OVER);
  return follows;
}
