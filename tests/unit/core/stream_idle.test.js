// streamIdleTimeout's watch in the dispatch mode (assembly/core/stream_idle.ts): chunks are counted,
// and a check every quarter of the timeout finds a silent answer between streamIdleTimeout and
// streamIdleTimeout + a quarter of it after its last chunk, never earlier.
const { load } = require("../support/wasm");
const w = load();

describe("streamIdleTimeout's watch", () => {
  test("an answer silent from its first chunk is cut at the timeout", () => {
    expect(w.idleCutAt(800, [], 10000)).toBe(800);
  });

  test("after the last chunk: never before the timeout, at most a quarter of it later", () => {
    for (const last of [1, 199, 200, 201, 555, 880]) {
      const cut = w.idleCutAt(800, last > 100 ? [100, last] : [last], 20000);
      expect(cut - last).toBeGreaterThanOrEqual(800);
      expect(cut - last).toBeLessThanOrEqual(800 + 200);
    }
  });

  test("a stream with chunks closer than the timeout is never cut", () => {
    const chunks = Array.from({ length: 50 }, (_, i) => (i + 1) * 790);
    expect(w.idleCutAt(800, chunks, 50 * 790)).toBe(-1);
  });

  test("a timeout under 40 ms is checked every 10 ms (the tick)", () => {
    expect(w.idleCutAt(20, [], 1000)).toBe(20);
    // A chunk at 5 ms is seen by the check at 10: silent from there, cut at the first check 25 ms later or more.
    expect(w.idleCutAt(25, [5], 1000)).toBe(40);
  });
});
