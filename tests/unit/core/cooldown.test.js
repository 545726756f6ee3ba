// The cooldown's state machine (core/cooldown.ts), its shared table's text, Retry-After and the
// `cooldown` section of the configuration.
const { load } = require("../support/wasm");
const w = load();
const conf = (cooldown) => JSON.stringify({ backups: [{ service: "b" }], cooldown });
const run = (cooldown, events) => w.cooldownScript(conf(cooldown), events.join(";"));

describe("cooldown state", () => {
  const C = { failures: 3, window: 1000, duration: 500 };

  test("failures within the window start the cooldown; then the service is skipped for the duration", () => {
    expect(run(C, ["f@0", "f@100", "a@150", "f@200", "a@201", "a@699"])).toBe("-,-,use,enter,skip,skip|svc 1 700 0 0 0\n");
  });

  test("failures spread beyond the window do not add up", () => {
    expect(run(C, ["f@0", "f@100", "f@1200", "f@1300", "a@1301"]).split("|")[0]).toBe("-,-,-,-,use");
    expect(run(C, ["f@0", "f@100", "f@1200", "f@1300", "f@1400"]).split("|")[0]).toBe("-,-,-,-,enter");
  });

  test("after the duration one request probes (half-open); others are skipped until its result", () => {
    expect(run(C, ["f@0", "f@1", "f@2", "a@502", "a@503", "a@900"]).split("|")[0]).toBe("-,-,enter,probe,skip,skip");
  });

  test("a probe's success puts the service back at once; a failed probe starts the cooldown again", () => {
    expect(run(C, ["f@0", "f@1", "f@2", "a@502", "s@600", "a@601"])).toBe("-,-,enter,probe,leave,use|");
    expect(run(C, ["f@0", "f@1", "f@2", "a@502", "f@600", "a@601", "a@1099", "a@1100"]).split("|")[0]).toBe("-,-,enter,probe,-,skip,skip,probe");
  });

  test("a probe that never reports frees the next probe after its lease (the duration)", () => {
    expect(run(C, ["f@0", "f@1", "f@2", "a@502", "a@1001", "a@1002"]).split("|")[0]).toBe("-,-,enter,probe,skip,probe");
  });

  test("a Retry-After sets the cooldown at once, capped by maxRetryAfter", () => {
    expect(run({ ...C, maxRetryAfter: 10000 }, ["r2000@100", "a@2099", "a@2100"])).toBe("enter,skip,probe|svc 1 2100 2600 0 0\n");
    expect(run({ ...C, maxRetryAfter: 1000 }, ["r60000@0", "a@999", "a@1000"]).split("|")[0]).toBe("enter,skip,probe");
    expect(run({ ...C, maxRetryAfter: 0 }, ["r60000@0", "a@0"]).split("|")[0]).toBe("enter,probe");
  });

  test("a success before the cooldown clears the count", () => {
    expect(run(C, ["f@0", "f@1", "s@2", "f@3", "a@4"]).split("|")[0]).toBe("-,-,-,-,use");
  });
});

describe("the shared table's text", () => {
  test("round trip; untracked services and lines that do not parse are left out", () => {
    const text = "primary 1 700 0 0 0\nbackup-a 0 0 0 2 100\n";
    expect(w.cooldownTableRoundTrip(text)).toBe(text);
    expect(w.cooldownTableRoundTrip("x 0 0 0 0 0\ngarbage\nb 1 5 0 0 0\n")).toBe("b 1 5 0 0 0\n");
    expect(w.cooldownTableRoundTrip("")).toBe("");
  });
});

describe("Retry-After", () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  test("delay-seconds", () => {
    expect(w.retryAfter("2", now)).toBe(2000);
    expect(w.retryAfter(" 0 ", now)).toBe(0);
    expect(w.retryAfter("120", now)).toBe(120000);
  });
  test("an HTTP-date (IMF-fixdate), from the wall clock; a past date is 0", () => {
    expect(w.retryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(w.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now)).toBe(0);
    expect(w.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 30))).toBe(7000);
  });
  test("anything else is not understood (-1)", () => {
    for (const v of ["", "soon", "-1", "1.5", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC"]) expect([v, w.retryAfter(v, now)]).toEqual([v, -1]);
  });
});

describe("the cooldown section of the configuration", () => {
  test("absent: off; present: defaults for what it does not set", () => {
    expect(w.cooldownSummary(JSON.stringify({ backups: [{ service: "b" }] }))).toBe("off");
    expect(w.cooldownSummary(conf({}))).toBe("3 10000 30000 60000 ");
    expect(w.cooldownSummary(conf({ failures: 1, window: 5, duration: 7, maxRetryAfter: 0, primary: "p" }))).toBe("1 5 7 0 p");
  });
  test("bad fields are named, with the expected unit", () => {
    expect(w.cooldownSummary(conf(true))).toMatch(/^error: cooldown: must be an object like/);
    expect(w.cooldownSummary(conf({ failures: 0 }))).toMatch(/^error: cooldown\.failures: must be an integer from 1/);
    expect(w.cooldownSummary(conf({ duration: "30s" }))).toMatch(/^error: cooldown\.duration: must be an integer number of milliseconds/);
    expect(w.cooldownSummary(conf({ durations: 1 }))).toMatch(/^error: cooldown\.durations: unknown field/);
    expect(w.cooldownSummary(conf({ primary: "a b" }))).toMatch(/^error: cooldown\.primary: must be the primary's Envoy cluster name/);
  });
});
