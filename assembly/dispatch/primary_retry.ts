// The primary's same-service retry (the `retry` section) in the dispatch mode: Envoy's router resends
// the request the filters behind this one let through, so they all run for it once, and no copy of it
// is sent around them. The filter only asks for it, with the router's retry headers. A client's own
// copies are replaced: a client never sets how often the primary is tried.
import { MapType } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { byteStringToBuffer } from "../core/bytes";
import { RetrySettings } from "../core/retry";

const RETRY_ON = byteStringToBuffer("x-envoy-retry-on");
const RETRIABLE_STATUS_CODES = byteStringToBuffer("x-envoy-retriable-status-codes");
const MAX_RETRIES = byteStringToBuffer("x-envoy-max-retries");

/** The settings' router header values, encoded once per configuration (not per request). */
class RouterRetryHeaders {
  retryOn: ArrayBuffer;
  statusCodes: ArrayBuffer;
  maxRetries: ArrayBuffer;
  constructor(public settings: RetrySettings) {
    this.retryOn = byteStringToBuffer(settings.routerRetryOn);
    this.statusCodes = byteStringToBuffer(settings.routerStatusCodes);
    this.maxRetries = byteStringToBuffer(settings.attempts.toString());
  }
}

let cached: RouterRetryHeaders | null = null;

function headersFor(settings: RetrySettings): RouterRetryHeaders {
  const c = cached;
  if (c !== null && c.settings === settings) return c;
  const made = new RouterRetryHeaders(settings);
  cached = made;
  return made;
}

/** Sets the retry headers on the primary's request (three host calls, only where `retry` is configured). */
export function askRouterToRetry(settings: RetrySettings): void {
  const h = headersFor(settings);
  host.replaceHeaderBytes(MapType.HttpRequestHeaders, RETRY_ON, h.retryOn);
  if (h.statusCodes.byteLength > 0) host.replaceHeaderBytes(MapType.HttpRequestHeaders, RETRIABLE_STATUS_CODES, h.statusCodes);
  else host.removeHeader(MapType.HttpRequestHeaders, "x-envoy-retriable-status-codes");
  host.replaceHeaderBytes(MapType.HttpRequestHeaders, MAX_RETRIES, h.maxRetries);
}

const ATTEMPT_COUNT = host.propertyPath(["upstream", "request_attempt_count"]);

/** How many times the router tried the primary (1 when Envoy does not say); read on an error only. */
export function attemptCount(): i32 {
  const raw = host.getPropertyAt(ATTEMPT_COUNT);
  if (raw === null || raw.byteLength < 4) return 1;
  const n = load<u32>(changetype<usize>(raw));
  return n >= 1 && n <= 100 ? <i32>n : 1;
}
