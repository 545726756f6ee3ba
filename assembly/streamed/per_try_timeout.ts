// The streamed mode's first-packet timeout, as Envoy's router can carry it. Pure.
//
// The router's per-try timeout runs until the attempt's response headers; with the primary guard
// holding a streaming 2xx's headers until its first body byte, it runs until that byte. A request
// header sets it per request: streaming requests of the methods that fall back get firstPacketTimeout;
// every other request none (a slow non-streaming answer is not a late first packet, and a request the
// route does not retry would only be cut off), so a client's own value is removed.
import { Policy } from "../core/config/config";

/** Envoy reads it at the router's request headers (and strips it from external clients' requests). */
export const PER_TRY_TIMEOUT_HEADER = "x-envoy-upstream-rq-per-try-timeout-ms";

/** Whether a request of `method` may get a per-try timeout: only those that fall back (`methods`) are retried. */
export function perTryTimeoutApplies(policy: Policy, method: string | null): bool {
  return policy.firstPacketTimeoutMs > 0 && method !== null && policy.methods.includes(method);
}

/** The per-try timeout (ms) a request that may have one gets; 0 = none (the header is removed). */
export function perTryTimeoutMs(policy: Policy, streaming: bool): u32 {
  return streaming ? policy.firstPacketTimeoutMs : 0;
}

/**
 * `hedge`: Envoy's router hedges on the per-try timeout of a request that carries it (starts the next
 * attempt and keeps the one that timed out); without it the attempt is reset and retried. Envoy strips
 * it from external clients' requests, like the per-try timeout header.
 */
export const HEDGE_HEADER = "x-envoy-hedge-on-per-try-timeout";
