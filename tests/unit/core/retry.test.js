// Same-service retry (issue 27, part 3): the `retry` section of the configuration (core/config/retry_reader.ts),
// which failures are retried and how long to wait (core/retry.ts), and the machine's retried backup.
const { load } = require("../support/wasm");
const w = load();
const conf = (retry, extra = {}) => JSON.stringify({ backups: [{ service: "a" }, { service: "b" }], retry, ...extra });
const RETRY = { attempts: 1, backoff: 100, maxRetryAfter: 2000, on: [500, 502, 503, 504, 429, "reset"] };

describe("the retry section of the configuration", () => {
  test("absent: off; present: defaults for what it does not set", () => {
    expect(w.retrySummary(JSON.stringify({ backups: [{ service: "b" }] }))).toBe("off");
    expect(w.retrySummary(conf({}))).toBe("1 100 2000 500,502,503,504,429 reset | retriable-status-codes,reset,connect-failure,refused-stream / 500,502,503,504,429");
    expect(w.retrySummary(conf({ attempts: 3, backoff: 0, maxRetryAfter: 0, on: [503] }))).toBe("3 0 0 503 - | retriable-status-codes / 503");
    expect(w.retrySummary(conf({ on: ["reset"] }))).toBe("1 100 2000  reset | reset,connect-failure,refused-stream / ");
  });

  test("a rule may set its own; rules inherit the global one", () => {
    const json = JSON.stringify({ backups: [{ service: "b" }], retry: { attempts: 2 }, _rules_: [{ _match_route_: ["r"], retry: { attempts: 4 } }] });
    expect(w.retrySummary(json)).toMatch(/^2 /);
  });

  test("bad fields are named, with the expected unit and the fix", () => {
    expect(w.retrySummary(conf(true))).toMatch(/^error: retry: must be an object like \{"attempts": 1, "backoff": 100/);
    expect(w.retrySummary(conf({ attempts: 0 }))).toBe("error: retry.attempts: must be an integer from 1 to 10, got 0");
    expect(w.retrySummary(conf({ attempts: 11 }))).toMatch(/^error: retry\.attempts: must be an integer from 1 to 10/);
    expect(w.retrySummary(conf({ backoff: "100ms" }))).toBe('error: retry.backoff: must be an integer number of milliseconds from 0 to 60000, got "100ms" (write 100 for 100 ms)');
    expect(w.retrySummary(conf({ maxRetryAfter: "2s" }))).toMatch(/^error: retry\.maxRetryAfter: must be an integer number of milliseconds from 0 to 60000, got "2s" \(write 2000 for 2 s\)/);
    expect(w.retrySummary(conf({ on: [] }))).toMatch(/^error: retry\.on: must be a non-empty array .*to retry nothing, remove retry$/);
    expect(w.retrySummary(conf({ on: [200] }))).toMatch(/^error: retry\.on\[0\]: must be an integer from 400 to 599, got 200/);
    expect(w.retrySummary(conf({ on: ["5xx"] }))).toMatch(/^error: retry\.on\[0\]: must be a non-empty array of status codes \(400 to 599\) and "reset"/);
    expect(w.retrySummary(conf({ on: ["timeout"] }))).toMatch(/^error: retry\.on\[0\]: "timeout" is not retried: a slow service stays slow/);
    expect(w.retrySummary(conf({ tries: 1 }))).toMatch(/^error: retry\.tries: unknown field/);
  });
});

describe("which failures are retried, and the wait", () => {
  const json = conf(RETRY);
  test("a status in on is retried after the back-off, jittered within [backoff/2, backoff]", () => {
    for (let e = 0; e < 50; e++) {
      const wait = w.retryWait(json, 500, false, 0, -1, e);
      expect(wait).toBeGreaterThanOrEqual(50);
      expect(wait).toBeLessThanOrEqual(100);
    }
    const waits = new Set(Array.from({ length: 50 }, (_, e) => w.retryWait(json, 500, false, 0, -1, e * 7919)));
    expect(waits.size).toBeGreaterThan(5);
  });
  test("each further retry doubles the back-off", () => {
    expect(w.retryBackoff(100, 1, 3)).toBeGreaterThanOrEqual(100);
    expect(w.retryBackoff(100, 1, 3)).toBeLessThanOrEqual(200);
    expect(w.retryBackoff(100, 2, 3)).toBeGreaterThanOrEqual(200);
    expect(w.retryBackoff(0, 0, 3)).toBe(0);
    expect(w.retryBackoff(1, 0, 3)).toBe(1);
  });
  test("a Retry-After up to maxRetryAfter is the wait; a longer one moves on at once", () => {
    expect(w.retryWait(json, 429, false, 0, 1000, 1)).toBe(1000);
    expect(w.retryWait(json, 429, false, 0, 2000, 1)).toBe(2000);
    expect(w.retryWait(json, 429, false, 0, 2001, 1)).toBe(-1);
    expect(w.retryWait(json, 503, false, 0, 0, 1)).toBe(0);
  });
  test("no answer is retried under \"reset\", a timeout never; a status not in on never; no more than attempts", () => {
    expect(w.retryWait(json, 0, false, 0, -1, 1)).toBeGreaterThanOrEqual(50);
    expect(w.retryWait(json, 0, true, 0, -1, 1)).toBe(-1);
    expect(w.retryWait(json, 400, false, 0, -1, 1)).toBe(-1);
    expect(w.retryWait(json, 500, false, 1, -1, 1)).toBe(-1);
    expect(w.retryWait(conf({ on: [500] }), 0, false, 0, -1, 1)).toBe(-1);
  });
});

describe("the machine retries a backup before the next", () => {
  const start = "end\nheaders 503\n";
  test("a backup's 500 waits, then the same backup is called again; its 200 is served", () => {
    const out = w.runMachine(conf(RETRY), start + "answer 500\nat 1200\nretrydue\nanswer 200");
    expect(out).toMatch(/answer 500 -> wait-retry at 10\d\d \(falling-back\)/);
    expect(out).toMatch(/retrydue -> dispatch a \d+ \(falling-back\)/);
    expect(out).toMatch(/attempts: primary;result=503, a;model=pass-through;result=500, a;model=pass-through;result=200/);
  });
  test("retries used up: the next backup", () => {
    const out = w.runMachine(conf(RETRY), start + "answer 500\nretrydue\nanswer 500");
    expect(out).toMatch(/answer 500 -> dispatch b/);
  });
  test("a Retry-After over maxRetryAfter: the next backup at once", () => {
    expect(w.runMachine(conf(RETRY), start + "answer 429 5000")).toMatch(/answer 429 5000 -> dispatch b/);
    expect(w.runMachine(conf(RETRY), start + "answer 429 1000")).toMatch(/answer 429 1000 -> wait-retry at 2000/);
  });
  test("a retry that would end past fallbackDeadline is not waited for", () => {
    expect(w.runMachine(conf(RETRY, { fallbackDeadline: 1000 }), start + "answer 429 1000")).toMatch(/answer 429 1000 -> dispatch b/);
  });
  test("Envoy's own reply for a call with no answer counts as a reset", () => {
    expect(w.runMachine(conf(RETRY), start + "answer 503 noanswer")).toMatch(/-> wait-retry/);
    expect(w.runMachine(conf({ on: [500] }), start + "answer 503 noanswer")).toMatch(/-> dispatch b/);
  });
  test("without retry a failed backup moves on at once", () => {
    expect(w.runMachine(JSON.stringify({ backups: [{ service: "a" }, { service: "b" }] }), start + "answer 500")).toMatch(/answer 500 -> dispatch b/);
  });
  test("the router's tries of the primary are reported before its result", () => {
    expect(w.runMachine(conf(RETRY), "end\ntries 2\nheaders 503\nanswer 200")).toMatch(/attempts: primary;result=retry, primary;result=503, a;model=pass-through;result=200/);
  });
});
