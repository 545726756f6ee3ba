// At most one log line per interval for a repeated event, with how many were left out. Pure.
export class LogLimiter {
  /** Events since the last line that was let through, not logged themselves. */
  suppressed: i64 = 0;
  private nextMs: u64 = 0;

  constructor(private intervalMs: u64) {}

  /** True when a line may be logged now; otherwise the event is counted as suppressed. */
  allow(nowMs: u64): bool {
    if (nowMs >= this.nextMs) {
      this.nextMs = nowMs + this.intervalMs;
      return true;
    }
    this.suppressed++;
    return false;
  }

  /** The suppressed count for the line being logged, reset to 0. */
  takeSuppressed(): i64 {
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}
