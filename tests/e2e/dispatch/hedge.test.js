// Issue 28, hedging in the dispatch mode (docs/dispatch-mode.md, "Hedging"): with `hedge`, at
// firstPacketTimeout the backup is called and the primary kept; if the primary's first content comes
// before the backup's answer is complete, the primary is served and the backup's answer dropped (a
// dispatched call cannot be cancelled); else the backup's answer is served and the primary cancelled.
// At most hedge.maxInFlight requests per worker race; past that, the primary is kept only as a last resort.
const { startEnvoy, counter } = require("../support/envoy");
const { request, abortAfter, sseEventTimes: eventTimes } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { hedgeCounters, raceOneLatePrimary } = require("../support/hedge_checks");

const m = useMocks({ primary: "primary", backupA: "backup-a" });
let envoy;

const T = 600; // firstPacketTimeout
const BACKUP_FIRST_MS = 0.5 * T;
const EVENTS = ['{"choices":[{"delta":{"content":"t0"}}]}', '{"choices":[{"delta":{"content":"t1"}}]}'];
const STREAM_CHAT = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hello" }] };
const MARGIN_MS = 250;

const config = (maxInFlight, timeout = T) => ({
  backups: [{ service: "backup-a", model: "backup-model-a", headers: { authorization: "Bearer key-a" } }],
  firstPacketTimeout: timeout,
  hedge: { maxInFlight },
});
const start = (maxInFlight, timeout) => startEnvoy({
  pluginConfig: config(maxInFlight, timeout), clusters: { primary: m.primary.port, "backup-a": m.backupA.port }, routeTimeoutMs: 30000,
});

beforeAll(async () => {
  envoy = await start(10);
  // One request first: the module's first run on the worker is not what is timed.
  await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
}, 30000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe("dispatch mode: hedge (race a slow primary)", () => {
  test.each([
    [0.8, "primary"],
    [1.2, "primary"],
    [3, "backup-a"],
  ])("primary's first token at %sx firstPacketTimeout, backup's at 0.5x: the client gets the earlier (%s), the other is dropped", async (factor, winner) => {
    const primaryFirst = factor * T;
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: primaryFirst } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: BACKUP_FIRST_MS } });
    const before = await hedgeCounters(envoy);
    const res = await request(envoy.port, { body: STREAM_CHAT, headers: { authorization: "Bearer client-key" }, timeoutMs: 10000 });
    await sleep(BACKUP_FIRST_MS + 200); // the loser's end (or its dropped answer) comes in
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe(winner);
    const times = eventTimes(res);
    expect(times).toHaveLength(EVENTS.length);
    // The backup's answer is complete when its last event is written (about 0.5x after its call).
    const earlier = Math.min(primaryFirst, T + BACKUP_FIRST_MS);
    expect(times[0]).toBeGreaterThan(earlier - 50);
    expect(times[0]).toBeLessThan(earlier + MARGIN_MS);
    const grew = (await hedgeCounters(envoy)).map((v, i) => v - before[i]);
    if (factor < 1) {
      expect(m.backupA.requests).toHaveLength(0);
      expect(grew).toEqual([0, 0, 0, 0]);
      expect(res.headers["x-ai-fallback-attempts"]).toBeUndefined();
    } else if (winner === "primary") {
      expect(m.backupA.requests).toHaveLength(1);
      expect(m.backupA.requests[0].headers.authorization).toBe("Bearer key-a");
      expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=200, backup-a;model=backup-model-a;result=hedge_lost");
      expect(grew).toEqual([1, 1, 0, 0]);
    } else {
      expect(m.primary.requests[0].cancelledAt).not.toBeNull();
      expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
      expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
      expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=hedge_lost, backup-a;model=backup-model-a;result=200");
      expect(grew).toEqual([1, 0, 1, 0]);
    }
    expect(m.primary.requests[0].headers.authorization).toBe("Bearer client-key");
    console.log(`dispatch hedge, primary at ${factor}x: served by ${res.headers["x-served-by"]}, first event at ${Math.round(times[0])} ms (earlier of the two: ${earlier} ms)`);
  }, 15000);

  test("the bound: of 200 concurrent slow requests, hedge.maxInFlight race; the others keep the primary as a last resort only", async () => {
    const LIMIT = 5;
    const TIMEOUT = 1500;
    const bounded = await start(LIMIT, TIMEOUT);
    // Every primary sends its first token at one moment, after every request's timer has fired (the
    // requests reach Envoy within about a second even on a loaded machine), and every backup its own
    // later: the racing requests are won by their primary, and no place frees while timers still fire.
    const sentAt = Date.now();
    const primaryAt = sentAt + 1.85 * TIMEOUT;
    const backupAt = sentAt + 2.3 * TIMEOUT;
    m.primary.behave(() => ({ sse: { events: EVENTS, firstDelayMs: Math.max(0, primaryAt - Date.now()) } }));
    m.backupA.behave(() => ({ sse: { events: EVENTS, firstDelayMs: Math.max(0.5 * TIMEOUT, backupAt - Date.now()) } }));
    const before = await hedgeCounters(bounded);
    const results = await Promise.all(Array.from({ length: 200 }, () => request(bounded.port, { body: STREAM_CHAT, timeoutMs: 15000 })));
    await sleep(200);
    const statuses = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    expect(statuses).toEqual({ 200: 200 });
    const byPrimary = results.filter((r) => r.headers["x-served-by"] === "primary").length;
    const [started, wonByPrimary, wonByBackup, overLimit] = (await hedgeCounters(bounded)).map((v, i) => v - before[i]);
    // The raced ones are won by their primary; the others wait for the backup (the primary kept as a last resort).
    expect(byPrimary).toBe(LIMIT);
    expect([started, wonByPrimary, wonByBackup, overLimit]).toEqual([LIMIT, LIMIT, 0, 200 - LIMIT]);
    // Their places were given back: the next slow request races again.
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: 1.2 * TIMEOUT } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: 0.5 * TIMEOUT } });
    const next = await request(bounded.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expect(next.headers["x-served-by"]).toBe("primary");
    console.log(`dispatch hedge bound: ${byPrimary} of 200 raced (maxInFlight ${LIMIT}), ${overLimit} over the limit`);
    await bounded.stop();
  }, 30000);

  test("a client that leaves mid-race gives back its place, its copy and its stream: the next slow request races again", async () => {
    const TIMEOUT = 400;
    const single = await start(1, TIMEOUT);
    // The primary and the backup both still silent when the client goes, 150 ms into the race; the
    // backup's answer comes later still, for a request nobody waits for.
    m.primary.behave({ sse: { events: EVENTS, firstDelayMs: 3000 } });
    m.backupA.behave({ sse: { events: EVENTS, firstDelayMs: 600 } });
    const before = await hedgeCounters(single);
    const left = await abortAfter(single.port, { body: STREAM_CHAT, timeoutMs: 10000 }, TIMEOUT + 150);
    expect(left.aborted).toBe(true);
    expect(m.backupA.requests).toHaveLength(1); // the race had started
    await sleep(1000); // the dropped backup's answer arrives
    let stats = await single.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
    // Its place among hedge.maxInFlight (1) is free: the next late primary is raced, not over the limit.
    const { res: next, grew } = await raceOneLatePrimary({ envoy: single, mocks: m, events: EVENTS, body: STREAM_CHAT, timeoutMs: TIMEOUT, before });
    expect(next.status).toBe(200);
    expect(next.headers["x-served-by"]).toBe("backup-a");
    const [started, , wonByBackup, overLimit] = grew;
    expect([started, wonByBackup, overLimit]).toEqual([2, 1, 0]);
    await single.stop();
  }, 20000);
});
