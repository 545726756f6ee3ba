// The per-VM memory budget, the byte sink whose allocation it counts, and the log limiter for
// over-budget decisions (assembly/core/memory_budget.ts, byte_sink.ts, log_limiter.ts).
const { load } = require("../support/wasm");
const w = load();

describe("memory budget", () => {
  test("takes while the limit allows, refuses past it without taking anything, and counts the peak", () => {
    expect(w.budgetScript(100, "a+60 b+40 b+1 a-10 b+10 b+1")).toBe("ok ok no ok no used=100,peak=100");
  });

  test("a stream's release gives back everything it still holds, once", () => {
    expect(w.budgetScript(1000, "a+300 a-100 b+50 a! a! a+900 b+100")).toBe("ok ok ok no used=950,peak=950");
  });

  test("a share never gives back more than it took", () => {
    expect(w.budgetScript(100, "a+30 a-50 b+100")).toBe("ok ok used=100,peak=100");
  });
});

describe("the VM budget's limit when several configurations share the VM", () => {
  test("the smallest configured limit wins; with none, the default; a configuration that is gone no longer counts", () => {
    expect(w.budgetLimitsScript(1000, "3=500 4=800 4=200 4x 3x")).toBe("500 500 200 500 1000");
    expect(w.budgetLimitsScript(1000, "5=4000")).toBe("4000");
  });
});

describe("byte sink", () => {
  test("with content-length the copy is allocated once, exactly", () => {
    expect(w.sinkGrowth(5000, 1 << 30, [1000, 3000, 1000])).toBe("5000 5000 5000 intact 0");
  });

  test("without it, capacity doubles from 1 KiB, never past the limit beyond what is appended", () => {
    expect(w.sinkGrowth(0, 1 << 30, [100, 1000, 3000])).toBe("1024 2048 8192 intact 0");
    expect(w.sinkGrowth(0, 3000, [100, 1000, 1900])).toBe("1024 2048 3000 intact 0");
    expect(w.sinkGrowth(0, 3000, [2000, 2000])).toBe("2048 4000 intact 0");
  });
});

describe("over-budget log limiter", () => {
  test("lets one line a second through and reports how many it left out", () => {
    expect(w.limiterScript(1000, [5000, 5001, 5500, 6000, 6001, 9000])).toBe("ynnyny 3");
  });
});
