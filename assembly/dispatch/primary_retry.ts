// The primary's same-service retry (the `retry` section) in the dispatch mode: Envoy's router resends
// the request the filters behind this one let through, so they all run for it once, and no copy of it
// is sent around them. The filter only asks for it, with the router's retry headers. A client's own
// copies are replaced: a client never sets how often the primary is tried.
import { MapType } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { RetrySettings } from "../core/retry";

/** The settings' router headers, computed once per configuration (not per request). */
class RouterRetryHeaders {
  constructor(public settings: RetrySettings, public retryOn: string, public statusCodes: string, public maxRetries: string) {}
}

let cached: RouterRetryHeaders | null = null;

function headersFor(settings: RetrySettings): RouterRetryHeaders {
  const c = cached;
  if (c !== null && c.settings === settings) return c;
  const made = new RouterRetryHeaders(settings, settings.routerRetryOn, settings.routerStatusCodes, settings.attempts.toString());
  cached = made;
  return made;
}

/** Sets the retry headers on the primary's request (three host calls, only where `retry` is configured). */
export function askRouterToRetry(settings: RetrySettings): void {
  const h = headersFor(settings);
  host.replaceHeader(MapType.HttpRequestHeaders, "x-envoy-retry-on", h.retryOn);
  if (h.statusCodes.length > 0) host.replaceHeader(MapType.HttpRequestHeaders, "x-envoy-retriable-status-codes", h.statusCodes);
  else host.removeHeader(MapType.HttpRequestHeaders, "x-envoy-retriable-status-codes");
  host.replaceHeader(MapType.HttpRequestHeaders, "x-envoy-max-retries", h.maxRetries);
}

const ATTEMPT_COUNT = host.propertyPath(["upstream", "request_attempt_count"]);

/** How many times the router tried the primary (1 when Envoy does not say). */
export function attemptCount(): i32 {
  const raw = host.getPropertyAt(ATTEMPT_COUNT);
  if (raw === null || raw.byteLength < 4) return 1;
  const n = load<u32>(changetype<usize>(raw));
  return n >= 1 && n <= 100 ? <i32>n : 1;
}
