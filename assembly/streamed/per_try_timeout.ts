// The streamed mode's first-packet timeout, as Envoy's router can carry it. Pure.
//
// The router's per-try timeout runs until the attempt's response headers; with the primary guard
// holding a streaming 2xx's headers until its first body byte, it runs until that byte. A request
// header sets it per request: streaming requests get firstPacketTimeout; every other request none
// (a slow non-streaming answer is not a late first packet), so a client's own value is removed.
import { Policy } from "../config";

/** Envoy reads it at the router's request headers (and strips it from external clients' requests). */
export const PER_TRY_TIMEOUT_HEADER = "x-envoy-upstream-rq-per-try-timeout-ms";

/** The per-try timeout (ms) a request gets; 0 = none (the header is removed). */
export function perTryTimeoutMs(policy: Policy, streaming: bool): u32 {
  return streaming ? policy.firstPacketTimeoutMs : 0;
}
