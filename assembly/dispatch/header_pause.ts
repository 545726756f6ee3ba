// Whether Envoy honours this filter's pause at the headers (a plain StopIteration, with the body
// still shown to the filter). Envoy does so only with `allow_on_headers_stop_iteration: true` in the
// wasm plugin config (Higress: for modules of ABI 0.2.100, as this one); without it a paused filter
// is shown no body until it continues, so a 2xx held for its first packet would always look stalled
// and every healthy stream would fall back. One per filter configuration (root context), on its worker.
import { LogLevel } from "../abi/enums";
import { logBytes } from "../abi/hostcalls";

export const enum PauseEvidence {
  /** Nothing seen yet: a request held at its headers will tell (a probe). */
  Unknown = 0,
  /** A paused filter was shown body: Envoy honours the pause. */
  Honoured = 1,
  /** A held request's body was shown only once the filter let it go: Envoy does not. */
  NotHonoured = 2,
}

/**
 * A body that arrives within this long after a blind release was Envoy's, held back from the filter:
 * Envoy hands it over right after the release (the same event), a few ms late on a loaded worker; a
 * client silent for the whole hold that sends its body within this window is the rare exception
 * (it would only make this worker stop holding 2xx headers: the safe side).
 */
export const WITHHELD_BODY_MS: u64 = 50;

export class HeaderPause {
  evidence: PauseEvidence = PauseEvidence.Unknown;
  /** A request is held as a probe on this worker (one at a time: without the flag each waits REQUEST_HOLD_MS). */
  probing: bool = false;

  /** Whether a request with a body should be held at its headers to find out. */
  get wantsProbe(): bool {
    return this.evidence == PauseEvidence.Unknown && !this.probing;
  }

  honoured(): void {
    if (this.evidence == PauseEvidence.Unknown) this.evidence = PauseEvidence.Honoured;
  }

  /** Envoy withheld a held request's body: says so once (error level) and returns true the first time. */
  notHonoured(holdMs: u64, higressNote: string, requestIdSuffix: string): bool {
    if (this.evidence == PauseEvidence.NotHonoured) return false;
    this.evidence = PauseEvidence.NotHonoured;
    logBytes(LogLevel.Error, "allow_on_headers_stop_iteration is not set in this filter's wasm plugin config: Envoy showed it " +
      "no request body while the request's headers waited. On this worker, streaming answers' 2xx headers are no longer " +
      "held for their first packet (firstPacketTimeout applies until response headers arrive; a stream that stalls after " +
      "them is not rescued), and a request held for its body (backendErrorsOnly: false) waits " + holdMs.toString() +
      " ms for nothing. Set allow_on_headers_stop_iteration: true" + higressNote + requestIdSuffix);
    return true;
  }
}
