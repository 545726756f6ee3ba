// Deadlines run on a monotonic clock: a step of Envoy's wall clock (NTP, an operator) neither fires
// a pending first-packet deadline early nor delays it. Envoy runs with a test-only LD_PRELOAD shim
// (tests/e2e/support/wallclock/wallclock_shift.c, compiled here with gcc) that shifts CLOCK_REALTIME by the
// seconds written in a file and leaves CLOCK_MONOTONIC alone.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startEnvoy } = require("../support/envoy");
const { useMocks } = require("../support/fixtures");
const { request } = require("../support/client");

const m = useMocks({ primary: "primary", backup: "backup" });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-clock-"));
const shim = path.join(dir, "wallclock_shift.so");
const shiftFile = path.join(dir, "shift");

beforeAll(() => {
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", shim, path.join(__dirname, "..", "support", "wallclock", "wallclock_shift.c")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gcc could not build the wall-clock shim: ${r.error ?? ""}${r.stderr}`);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function streamWithWallClockStep({ firstPacketTimeout, firstPacketAfterMs, stepSeconds }) {
  fs.writeFileSync(shiftFile, "0\n");
  const envoy = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup" }], firstPacketTimeout },
    clusters: { primary: m.primary.port, backup: m.backup.port },
    routeTimeoutMs: 0,
    env: { LD_PRELOAD: shim, WALLCLOCK_SHIFT_FILE: shiftFile },
  });
  try {
    m.primary.behave({ sse: { firstDelayMs: firstPacketAfterMs } });
    const started = Date.now();
    const pending = request(envoy.port, { body: { model: "m", stream: true }, timeoutMs: 10000 });
    // The step comes while the deadline is pending (the shim re-reads its file every 10 ms).
    setTimeout(() => fs.writeFileSync(shiftFile, `${stepSeconds}\n`), 250);
    const r = await pending;
    return { ...r, tookMs: Date.now() - started };
  } finally {
    await envoy.stop();
  }
}

describe("a wall-clock step while a first-packet deadline is pending", () => {
  test("[pass-through] one hour forward does not fire it: the primary's stream, whose first packet comes in time, is served", async () => {
    const r = await streamWithWallClockStep({ firstPacketTimeout: 1500, firstPacketAfterMs: 700, stepSeconds: 3600 });
    expect(r.status).toBe(200);
    expect(r.headers["x-served-by"]).toBe("primary");
    expect(r.headers["x-ai-fallback-trigger"]).toBeUndefined();
  });

  test("one hour back does not delay it: the silent primary is replaced when the timeout has passed", async () => {
    const r = await streamWithWallClockStep({ firstPacketTimeout: 600, firstPacketAfterMs: 4000, stepSeconds: -3600 });
    expect(r.status).toBe(200);
    expect(r.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(r.headers["x-served-by"]).toBe("backup");
    expect(r.tookMs).toBeLessThan(3000);
  });
});
