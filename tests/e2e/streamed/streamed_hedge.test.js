// Issue 28, hedging in the streamed mode (docs/streamed-mode.md, "Hedging"): with `hedge`, the
// generator puts the services as priority levels of one cluster, and at firstPacketTimeout Envoy's
// router starts the backup while the primary keeps going. Whichever sends its first content first is
// served; the other is cancelled, and the report names it `hedge_lost`. At most hedge.maxInFlight
// requests per worker race; past that, the primary is abandoned at the timeout as without `hedge`.
const { startEnvoy } = require("../support/envoy");
const { request, abortAfter, sseEventTimes: eventTimes } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { hedgeCounters, raceOneLatePrimary } = require("../support/hedge_checks");
const { STREAM_CHAT, sseEvents, streamedBootstrapFor } = require("../support/streamed_fixtures");
const { SERVICE_MARKER_HEADER } = require("../../../scripts/streamed_config_lib.cjs");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

const T = 600; // firstPacketTimeout
const BACKUP_FIRST_MS = 0.5 * T;
const EVENTS = sseEvents(3);
// Allowance for a loaded 2-core machine shared with other test runs.
const MARGIN_MS = 250;

const plugin = (maxInFlight, timeout = T) => ({
  backups: [
    { service: "backup-a", model: "backup-model-a", headers: { authorization: "Bearer key-a" } },
    { service: "backup-b", model: "backup-model-b", headers: { authorization: "Bearer key-b" } },
  ],
  triggerStatuses: ["5xx", 429],
  firstPacketTimeout: timeout,
  hedge: { maxInFlight },
});

beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin(10)) });
}, 30000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const noMarkerLeft = () => {
  for (const mock of [m.primary, m.backupA, m.backupB]) for (const r of mock.requests) expect(r.headers[SERVICE_MARKER_HEADER]).toBeUndefined();
};

describe("streamed mode: hedge (race a slow primary)", () => {
  test("fail closed: without the service marker an attempt carries neither the client's credential nor its body, and the client gets a 502", async () => {
    const build = streamedBootstrapFor(m, m.primary.port, plugin(10));
    const unmarked = await startEnvoy({
      bootstrap: (ports) => {
        const b = build(ports);
        const services = b.static_resources.clusters.find((c) => c.name === "ai-fallback-services");
        const chain = services.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters;
        chain.splice(chain.findIndex((f) => f.name === "envoy.filters.http.header_mutation"), 1);
        return b;
      },
    });
    const res = await request(unmarked.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client-key", cookie: "session=s" }, timeoutMs: 10000 });
    expect(res.status).toBe(502);
    expect(res.json().error.type).toBe("ai_fallback_misconfigured");
    const sent = [...m.primary.requests, ...m.backupA.requests, ...m.backupB.requests];
    expect(sent.length).toBeGreaterThan(0);
    for (const r of sent) {
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers.cookie).toBeUndefined();
      expect(r.body.length).toBe(0);
    }
    await unmarked.stop();
  }, 20000);

  test.each([
    [0.8, "primary"],
    [1.2, "primary"],
    [3, "backup-a"],
  ])("primary's first token at %sx firstPacketTimeout, backup's at 0.5x: the client gets the earlier (%s), the other is cancelled", async (factor, winner) => {
    const primaryFirst = factor * T;
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: primaryFirst } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: BACKUP_FIRST_MS } });
    const before = await hedgeCounters(envoy);
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client-key" }, timeoutMs: 10000 });
    await sleep(200); // the loser's cancellation reaches its mock
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe(winner);
    const times = eventTimes(res);
    expect(times).toHaveLength(EVENTS.length);
    const earlier = Math.min(primaryFirst, T + BACKUP_FIRST_MS);
    expect(times[0]).toBeGreaterThan(earlier - 50);
    expect(times[0]).toBeLessThan(earlier + MARGIN_MS);
    noMarkerLeft();
    const after = await hedgeCounters(envoy);
    const grew = after.map((v, i) => v - before[i]);
    if (factor < 1) {
      // First content before the timeout: no race at all.
      expect(m.backupA.requests).toHaveLength(0);
      expect(grew).toEqual([0, 0, 0, 0]);
      expect(res.headers["x-ai-fallback-attempts"]).toBeUndefined();
    } else if (winner === "primary") {
      expect(m.backupA.requests).toHaveLength(1);
      expect(m.backupA.requests[0].headers.authorization).toBe("Bearer key-a");
      expect(m.backupA.requests[0].cancelledAt).not.toBeNull();
      expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=200, backup-a;model=backup-model-a;result=hedge_lost");
      expect(grew).toEqual([1, 1, 0, 0]);
    } else {
      expect(m.primary.requests[0].cancelledAt).not.toBeNull();
      expect(m.backupA.requests[0].cancelledAt).toBeNull();
      expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
      expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
      expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=hedge_lost, backup-a;model=backup-model-a;result=200");
      expect(grew).toEqual([1, 0, 1, 0]);
    }
    expect(m.primary.requests[0].headers.authorization).toBe("Bearer client-key");
    expect(m.backupB.requests).toHaveLength(0);
    console.log(`streamed hedge, primary at ${factor}x: served by ${res.headers["x-served-by"]}, first event at ${Math.round(times[0])} ms (earlier of the two: ${earlier} ms)`);
  }, 15000);

  test("a primary that fails during the race: the backup's answer reports its status", async () => {
    m.primary.behave({ status: 503, delayHeadersMs: 1.2 * T });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: BACKUP_FIRST_MS } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=backup-model-a;result=200");
    noMarkerLeft();
  }, 15000);

  test("the bound: of 200 concurrent slow requests, hedge.maxInFlight race; the others abandon the primary at the timeout", async () => {
    const LIMIT = 5;
    const TIMEOUT = 1500;
    const bounded = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin(LIMIT, TIMEOUT)) });
    // Every primary sends its first token at one moment, after every request's timer has fired (the
    // requests reach Envoy within about a second even on a loaded machine) and before a racing backup's
    // own per-try timeout would start the next backup; every backup later: the racing requests are won
    // by their primary, and no place frees while timers still fire.
    const sentAt = Date.now();
    const primaryAt = sentAt + 1.85 * TIMEOUT;
    const backupAt = sentAt + 2.3 * TIMEOUT;
    m.primary.behave(() => ({ sse: { events: EVENTS, firstDelayMs: Math.max(0, primaryAt - Date.now()) } }));
    m.backupA.behave(() => ({ sse: { events: EVENTS, firstDelayMs: Math.max(0.5 * TIMEOUT, backupAt - Date.now()) } }));
    const before = await hedgeCounters(bounded);
    const results = await Promise.all(Array.from({ length: 200 }, () => request(bounded.port, { body: STREAM_CHAT, timeoutMs: 15000 })));
    await sleep(200);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    const byPrimary = results.filter((r) => r.headers["x-served-by"] === "primary").length;
    const after = await hedgeCounters(bounded);
    const [started, wonByPrimary, wonByBackup, overLimit] = after.map((v, i) => v - before[i]);
    // The raced ones are won by their primary; the others abandoned it at the timeout.
    expect(byPrimary).toBe(LIMIT);
    expect(started).toBe(LIMIT);
    expect(wonByPrimary).toBe(LIMIT);
    expect(wonByBackup).toBe(0);
    expect(overLimit).toBe(200 - LIMIT);
    expect(m.backupA.requests).toHaveLength(200);
    expect(m.primary.requests.filter((r) => r.cancelledAt !== null)).toHaveLength(200 - LIMIT);
    console.log(`streamed hedge bound: ${byPrimary} of 200 raced (maxInFlight ${LIMIT}), ${overLimit} over the limit`);
    // Their places were given back: the next slow request races again.
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: 1.2 * TIMEOUT } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: 0.5 * TIMEOUT } });
    const next = await request(bounded.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expect(next.headers["x-served-by"]).toBe("primary");
    expect(next.headers["x-ai-fallback-attempts"]).toBe("primary;result=200, backup-a;model=backup-model-a;result=hedge_lost");
    await bounded.stop();
  }, 30000);

  test("a client that leaves mid-race gives back its place: the next slow request races again, and the attempts are cancelled", async () => {
    const TIMEOUT = 400;
    const single = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin(1, TIMEOUT)) });
    // Both still silent when the client goes, 150 ms into the race.
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: 3000 } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: 600 } });
    const before = await hedgeCounters(single);
    const left = await abortAfter(single.port, { body: STREAM_CHAT, timeoutMs: 10000 }, TIMEOUT + 150);
    expect(left.aborted).toBe(true);
    await sleep(300);
    expect(m.backupA.requests).toHaveLength(1); // the race had started
    expect(m.primary.requests[0].cancelledAt).not.toBeNull();
    expect(m.backupA.requests[0].cancelledAt).not.toBeNull();
    // Its place among hedge.maxInFlight (1) is free: the next late primary is raced, not over the limit.
    const { res: next, grew } = await raceOneLatePrimary({ envoy: single, mocks: m, events: EVENTS, body: STREAM_CHAT, timeoutMs: TIMEOUT, before });
    expect(next.status).toBe(200);
    expect(next.headers["x-served-by"]).toBe("backup-a");
    const [started, , wonByBackup, overLimit] = grew;
    expect([started, wonByBackup, overLimit]).toEqual([2, 1, 0]);
    noMarkerLeft();
    await single.stop();
  }, 20000);
});
