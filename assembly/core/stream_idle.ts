// streamIdleTimeout in the dispatch mode: has a flowing answer gone silent? Pure.
//
// Reading the clock at every chunk would cost a host call per chunk of every watched stream. The
// glue counts chunks instead (no host call), and the root's tick looks at the count every quarter of
// the timeout: a stream whose count has not moved for the timeout is silent. Its last chunk came at
// most a check period before the check that last saw it move, so a silent stream is found between
// streamIdleTimeout and streamIdleTimeout + a quarter of it (+ the tick) after its last chunk.

/** The shortest check period: the root's tick runs every 10 ms. */
const MIN_CHECK_MS: u64 = 10;

export class StreamIdleWatch {
  /** Body chunks seen so far (the glue counts them). */
  chunks: u32 = 0;
  private chunksAtCheck: u32 = 0;
  /** When a check last saw the count move (or the watch started), ms. */
  private movedAtMs: u64;
  readonly checkEveryMs: u64;

  constructor(public readonly idleMs: u32, nowMs: u64) {
    this.movedAtMs = nowMs;
    const quarter = <u64>idleMs / 4;
    this.checkEveryMs = quarter > MIN_CHECK_MS ? quarter : MIN_CHECK_MS;
  }

  /** A check at `nowMs`: true when no chunk came for idleMs (the stream is to be cut). */
  silentAt(nowMs: u64): bool {
    if (this.chunks != this.chunksAtCheck) {
      this.chunksAtCheck = this.chunks;
      this.movedAtMs = nowMs;
      return false;
    }
    return nowMs >= this.movedAtMs + <u64>this.idleMs;
  }

  /** When to check next after a check at `nowMs`. */
  nextCheckMs(nowMs: u64): u64 {
    return nowMs + this.checkEveryMs;
  }
}
