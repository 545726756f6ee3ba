// Same-service retry before the next service (the `retry` section): which failures are retried on the
// service that gave them, and how long to wait first. Pure. Times are ms.

/** The `retry` section of the configuration. */
export class RetrySettings {
  /** Calls of one service after its first, before the next service is tried. */
  attempts: i32 = 1;
  /** The first retry waits between half and all of this; each further retry doubles it (exponential, jittered). */
  backoffMs: u32 = 100;
  /** A 429/503's Retry-After up to this is waited for (then the same service); a longer one moves on at once. */
  maxRetryAfterMs: u32 = 2000;
  /** The statuses retried (the model service's own answers). */
  statuses: i32[] = [500, 502, 503, 504, 429];
  /** "reset": no answer at all (reset, connect failure, refused stream); never a timeout: a slow service stays slow. */
  onReset: bool = true;

  // The primary's retries are Envoy's router's (dispatch mode): the request headers that ask for them.
  /** `x-envoy-retry-on`. */
  get routerRetryOn(): string {
    const codes = this.statuses.length > 0 ? "retriable-status-codes" : "";
    if (!this.onReset) return codes;
    return (codes.length > 0 ? codes + "," : "") + "reset,connect-failure,refused-stream";
  }
  /** `x-envoy-retriable-status-codes` ("" when no status is retried). */
  get routerStatusCodes(): string {
    return this.statuses.join(",");
  }
}

/** Retry-After is read only on these answers (as the cooldown reads it). */
export function readsRetryAfter(status: i32): bool {
  return status == 429 || status == 503;
}

/** Whether a failure is one `settings` retries: `status` 0 is no answer (a reset; not a timeout). */
export function isRetried(settings: RetrySettings, status: i32, timedOut: bool): bool {
  if (timedOut) return false;
  if (status == 0) return settings.onReset;
  return settings.statuses.includes(status);
}

/**
 * The wait before the next call of the same service, or -1 to move on at once: `retriesDone` retries
 * were made already; `retryAfterMs` is the answer's Retry-After (-1 when absent); `entropy` any
 * per-request number (the jitter). A Retry-After over maxRetryAfter moves on: the service said it
 * is busy for longer than a request should wait.
 */
export function retryWaitMs(settings: RetrySettings, status: i32, timedOut: bool, retriesDone: i32, retryAfterMs: i64, entropy: u64): i64 {
  if (retriesDone >= settings.attempts || !isRetried(settings, status, timedOut)) return -1;
  if (retryAfterMs >= 0) return retryAfterMs <= <i64>settings.maxRetryAfterMs ? retryAfterMs : -1;
  return backoffMs(settings.backoffMs, retriesDone, entropy);
}

/** Retry n+1 (n = retriesDone) waits in [d/2, d], d = backoff × 2^n, capped at 2^10 × backoff. */
export function backoffMs(baseMs: u32, retriesDone: i32, entropy: u64): i64 {
  const d = <i64>baseMs << <i64>(retriesDone < 10 ? retriesDone : 10);
  const half = d >> 1;
  if (half == 0) return d;
  // A cheap mix of the entropy, so requests that failed together do not retry together.
  const mixed = (entropy * 0x9E3779B97F4A7C15) >> 33;
  return d - half + <i64>(mixed % <u64>(half + 1));
}
