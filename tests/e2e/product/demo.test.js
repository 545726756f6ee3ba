// `npm run demo` (envoy/demo.mjs) keeps showing what the README's first lines promise: the answer of
// a failing primary comes from the backup (dispatch mode, also after a stalled stream), and in the
// streamed mode the backup's events reach the client as the backup writes them.
const { execFile } = require("node:child_process");
const path = require("node:path");

const DEMO = path.join(__dirname, "..", "..", "..", "envoy", "demo.mjs");
// The demo's backup writes its first event 200 ms after its request, then one every 400 ms.
const FIRST_MS = 200;
const INTERVAL_MS = 400;
// Allowance for a loaded 2-core machine shared with other test runs.
const MARGIN_MS = 300;

function runDemo() {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO], { timeout: 60000 }, (error, stdout, stderr) => resolve({ code: error ? error.code ?? 1 : 0, stdout, stderr }));
  });
}

test("the demo shows a dispatch fallback, a first-packet fallback, and a streamed fallback whose events arrive as written", async () => {
  const { code, stdout, stderr } = await runDemo();
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const [dispatch, streamed] = stdout.split("--- streamed mode");
  expect(streamed).toBeDefined();
  // Dispatch mode: the primary alone fails, the same request through Envoy is the backup's.
  expect(dispatch).toMatch(/--- the primary model service alone: HTTP 503/);
  expect(dispatch).toMatch(/--- the same request through Envoy with ai-fallback: HTTP 200\nx-served-by: backup-qwen/);
  expect(dispatch).toMatch(/the backup received model: qwen-plus/);
  expect(dispatch).toMatch(/primary stalls after its headers \(answered after \d+ ms\): HTTP 200[\s\S]*x-ai-fallback-trigger: first_packet_timeout/);
  // Streamed mode: reported as such, and each event printed with its arrival time.
  expect(streamed).toMatch(/^HTTP 200 after \d+ ms$/m);
  expect(streamed).toMatch(/^x-ai-fallback-attempts: primary;result=503, backup-qwen;model=qwen-plus;result=200$/m);
  const events = [...streamed.matchAll(/^\+\s*(\d+) ms {2}data: (.*)$/gm)].map((m) => ({ at: Number(m[1]), data: m[2] }));
  expect(events.map((e) => e.data).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d).choices[0].delta.content).join(""))
    .toBe("Hello from the streamed backup");
  const times = events.filter((e) => e.data !== "[DONE]").map((e) => e.at);
  expect(times[0]).toBeLessThan(FIRST_MS + MARGIN_MS);
  for (let i = 1; i < times.length; i++) {
    expect(times[i] - times[i - 1]).toBeGreaterThan(INTERVAL_MS - MARGIN_MS);
    expect(times[i] - times[i - 1]).toBeLessThan(INTERVAL_MS + MARGIN_MS);
  }
}, 70000);
