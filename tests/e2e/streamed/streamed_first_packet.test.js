// Issue 12 item 3, the first-packet timeout of the streamed mode (docs/streamed-mode.md): the
// generated configuration puts the primary guard on the primary's cluster and the module's
// "ai-fallback-streamed" role before the router, which gives streaming requests the router's per-try
// timeout = firstPacketTimeout. A primary that sends no headers, or 200 headers and then nothing,
// is left for the next priority group; the backup's SSE then reaches the client as it is written.
const { startEnvoy, counter } = require("../support/envoy");
const { request, sseEventTimes: eventTimes } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, sseEvents, streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

const FIRST_PACKET_TIMEOUT_MS = 600;
const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
// The backup writes its first event 300 ms after its request, then one a second: ~4.3 s.
const BACKUP_FIRST_MS = 300;
const INTERVAL_MS = 1000;
const EVENTS = sseEvents(5);
const backupStream = { sse: { events: EVENTS, firstDelayMs: BACKUP_FIRST_MS, intervalMs: INTERVAL_MS } };
// Allowance for a loaded 2-core machine shared with other test runs: Envoy's retry back-off
// (at most 1-5 ms), connecting to the backup, the module's callbacks, and scheduling.
const MARGIN_MS = 400;
// The client's first backup event: the per-try timeout ends the primary's attempt at
// FIRST_PACKET_TIMEOUT_MS after the request (Envoy's timer starts when the request went upstream),
// the retry reaches the backup at once (back-off <= 5 ms), the backup writes its first event
// BACKUP_FIRST_MS later, and it is forwarded as it comes (no buffering).
const FIRST_EVENT_BOUND_MS = FIRST_PACKET_TIMEOUT_MS + BACKUP_FIRST_MS + MARGIN_MS;

const PLUGIN = {
  backups: [
    { service: "backup-a", model: "backup-model-a", headers: { authorization: "Bearer key-a" } },
    { service: "backup-b", model: "backup-model-b", headers: { authorization: "Bearer key-b" } },
  ],
  triggerStatuses: ["5xx", 429],
  firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS,
  keepAliveIsNotFirstPacket: true,
};

/** A streaming chat body of about `bytes` bytes. */
const streamingBody = (bytes) => ({ ...STREAM_CHAT, messages: [{ role: "user", content: "x".repeat(bytes) }] });
/** A primary whose first event comes 400 ms after the first-packet timeout. */
const latePrimary = () => m.primary.behave({ sse: { events: EVENTS.slice(0, 1), firstDelayMs: FIRST_PACKET_TIMEOUT_MS + 400 } });

beforeAll(async () => {
  envoy = await startEnvoy({
    bootstrap: streamedBootstrapFor(m, m.primary.port, PLUGIN),
  });
}, 30000);

function expectStreamedBackup(res) {
  expect(res.status).toBe(200);
  expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
  const times = eventTimes(res);
  expect(times).toHaveLength(EVENTS.length);
  expect(times[0]).toBeGreaterThan(FIRST_PACKET_TIMEOUT_MS); // the primary was given its time
  expect(times[0]).toBeLessThan(FIRST_EVENT_BOUND_MS);
  for (let i = 1; i < times.length; i++) {
    expect(times[i] - times[i - 1]).toBeGreaterThan(INTERVAL_MS - MARGIN_MS);
    expect(times[i] - times[i - 1]).toBeLessThan(INTERVAL_MS + MARGIN_MS);
  }
  expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
  expect(m.backupA.requests[0].headers.authorization).toBe("Bearer key-a");
  expect(m.backupB.requests).toHaveLength(0);
  return times;
}

describe("streamed mode: firstPacketTimeout", () => {
  test("a primary that sends no headers: the backup's events reach the client as the backup writes them", async () => {
    m.primary.behave({ hang: true });
    m.backupA.behave(backupStream);
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    const times = expectStreamedBackup(res);
    // Without response headers the upstream filter cannot tell a per-try timeout from a reset.
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=no_response, backup-a;model=backup-model-a;result=200");
    console.log(`streamed, primary silent: events at ${times.map((t) => Math.round(t)).join(", ")} ms (bound for the first ${FIRST_EVENT_BOUND_MS})`);
  }, 20000);

  test("a primary that sends 200 headers then stalls: the same (the guard kept its headers from the router)", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    m.backupA.behave(backupStream);
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    const times = expectStreamedBackup(res);
    expect(res.headers["x-served-by"]).toBe("backup-a"); // no header of the primary's reached the client
    // Its 2xx headers came but no byte: the attempt filter names the first-packet timeout.
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=first_packet_timeout, backup-a;model=backup-model-a;result=200");
    console.log(`streamed, primary stalled after 200: events at ${times.map((t) => Math.round(t)).join(", ")} ms (bound for the first ${FIRST_EVENT_BOUND_MS})`);
  }, 20000);

  test("keepAliveIsNotFirstPacket: a primary that sends 200 and only keep-alives is left for the backup", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true, keepAlives: [{ afterMs: 100 }, { afterMs: 350, text: "\n" }] } });
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 2), intervalMs: 100 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.text).not.toContain(": ping");
    expect(eventTimes(res)).toHaveLength(2);
  }, 20000);

  test("[pass-through] keepAliveIsNotFirstPacket: keep-alives then data within the timeout: the primary's stream, keep-alives included", async () => {
    m.primary.behave({ sse: { events: EVENTS.slice(0, 2), firstDelayMs: FIRST_PACKET_TIMEOUT_MS / 2, intervalMs: 100, keepAlives: [{ afterMs: 50 }] } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text.startsWith(": ping\n\n")).toBe(true);
    expect(eventTimes(res)).toHaveLength(2);
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);

  test("[pass-through] a healthy streaming primary is not cut off: its first event before the timeout, later ones far apart", async () => {
    const gap = FIRST_PACKET_TIMEOUT_MS + 400;
    m.primary.behave({ sse: { events: EVENTS.slice(0, 3), firstDelayMs: FIRST_PACKET_TIMEOUT_MS / 3, intervalMs: gap } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    const times = eventTimes(res);
    expect(times).toHaveLength(3);
    // Its first byte is not delayed by the guard.
    expect(times[0]).toBeLessThan(FIRST_PACKET_TIMEOUT_MS / 3 + MARGIN_MS);
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);

  test("[pass-through] a slow non-streaming primary is not cut off (no per-try timeout for it; a client asking for one in the header gets none either)", async () => {
    m.primary.behave({ delayHeadersMs: FIRST_PACKET_TIMEOUT_MS + 600 });
    const res = await request(envoy.port, { body: CHAT, headers: { "x-envoy-upstream-rq-per-try-timeout-ms": "100" }, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("primary");
    expect(m.backupA.requests).toHaveLength(0);
    expect(m.primary.requests[0].headers["x-envoy-upstream-rq-per-try-timeout-ms"]).toBeUndefined();
  }, 20000);

  test("[pass-through] a slow streaming request of a method that does not fall back (PUT) is not cut off", async () => {
    m.primary.behave({ sse: { events: EVENTS.slice(0, 1), firstDelayMs: FIRST_PACKET_TIMEOUT_MS + 400 } });
    const res = await request(envoy.port, { method: "PUT", body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(eventTimes(res)).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);

  test("a headers-only primary 503 is still retried by the router (the guard leaves it to the router here)", async () => {
    m.primary.behave({ status: 503, body: "" });
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 2), intervalMs: 100 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(eventTimes(res)).toHaveLength(2);
  }, 20000);

  test("a backup that sends nothing within the timeout is left for the next one (the per-try timeout covers every attempt)", async () => {
    m.primary.behave({ hang: true });
    m.backupA.behave({ hang: true });
    m.backupB.behave({ sse: { events: EVENTS.slice(0, 2), intervalMs: 100 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(eventTimes(res)).toHaveLength(2);
    expect(eventTimes(res)[0]).toBeLessThan(2 * FIRST_PACKET_TIMEOUT_MS + MARGIN_MS);
  }, 20000);

  test("a 2 MB streaming request is held whole by the role (under the route's buffer limit) and still falls back", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 2), intervalMs: 100 } });
    const big = { ...STREAM_CHAT, messages: [{ role: "user", content: "x".repeat(2 * 1024 * 1024) }] };
    const res = await request(envoy.port, { body: big, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(eventTimes(res)).toHaveLength(2);
    expect(JSON.parse(m.primary.requests[0].body.toString()).messages[0].content).toHaveLength(2 * 1024 * 1024);
    expect(JSON.parse(m.backupA.requests[0].body.toString()).model).toBe("backup-model-a");
  }, 20000);

  test("the per-try timeouts are Envoy's: counted on the primary's cluster", async () => {
    const before = counter(await envoy.stats(), "cluster.primary.upstream_rq_per_try_timeout");
    m.primary.behave({ hang: true });
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 1) } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(counter(await envoy.stats(), "cluster.primary.upstream_rq_per_try_timeout") - before).toBe(1);
  }, 20000);
});

describe("streamed mode: a request over maxRequestBodyBytes", () => {
  const LIMIT = 4096;
  let limited;
  beforeAll(async () => {
    limited = await startEnvoy({
      bootstrap: streamedBootstrapFor(m, m.primary.port, { ...PLUGIN, maxRequestBodyBytes: LIMIT }),
    });
  }, 30000);
  afterAll(() => limited.stop());


  test("a streaming request under the limit gets the per-try timeout: a late primary is left for the backup", async () => {
    latePrimary();
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 1) } });
    const res = await request(limited.port, { body: streamingBody(LIMIT / 2), timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
  }, 20000);

  test("[pass-through] one over it is not scanned and gets no per-try timeout: the same late primary is not cut off", async () => {
    latePrimary();
    const res = await request(limited.port, { body: streamingBody(LIMIT * 2), timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(eventTimes(res)).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(0);
  }, 20000);
});

describe("streamed mode: the role's body scan counts against the VM's one budget (maxKeptBytesPerWorker)", () => {
  const BUDGET = 8192;
  let tight;
  beforeAll(async () => {
    tight = await startEnvoy({
      bootstrap: streamedBootstrapFor(m, m.primary.port, { ...PLUGIN, maxKeptBytesPerWorker: BUDGET }),
    });
  }, 30000);
  afterAll(() => tight.stop());


  test("a body the budget holds is scanned: a late primary is left for the backup", async () => {
    latePrimary();
    m.backupA.behave({ sse: { events: EVENTS.slice(0, 1) } });
    const res = await request(tight.port, { body: streamingBody(BUDGET / 4), timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
  }, 20000);

  test("one it cannot hold is not scanned (counted, logged) and gets no per-try timeout: the late primary answers", async () => {
    latePrimary();
    const before = counter(await tight.stats(), "wasmcustom.ai_fallback.over_budget");
    const res = await request(tight.port, { body: streamingBody(BUDGET * 2), timeoutMs: 15000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(eventTimes(res)).toHaveLength(1);
    expect(m.backupA.requests).toHaveLength(0);
    const stats = await tight.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.over_budget") - before).toBe(1);
    expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    expect(tight.logs()).toMatch(new RegExp(`over the memory budget \\(maxKeptBytesPerWorker ${BUDGET}, in use 0\\): streamed mode: a request body of \\d+ bytes is not scanned; no first-packet timeout`));
  }, 20000);
});

describe("streamed mode: a backup's model rewrite counts against the VM's one budget", () => {
  const BUDGET = 8192;
  let tight;
  beforeAll(async () => {
    tight = await startEnvoy({
      bootstrap: streamedBootstrapFor(m, m.primary.port, { ...PLUGIN, maxKeptBytesPerWorker: BUDGET }),
    });
  }, 30000);
  afterAll(() => tight.stop());

  const body = (bytes) => ({ ...CHAT, messages: [{ role: "user", content: "x".repeat(bytes) }] });
  const sentModel = () => JSON.parse(m.backupA.requests[0].body.toString("utf8")).model;

  test("a body the budget holds is rewritten for the backup", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(tight.port, { body: body(BUDGET / 4) });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(sentModel()).toBe("backup-model-a");
  });

  test("one whose copy and rewrite it cannot hold never reaches an override backup (over_budget, counted, logged)", async () => {
    m.primary.behave({ status: 503 });
    const before = counter(await tight.stats(), "wasmcustom.ai_fallback.over_budget");
    // About 5 KB: the role's scan of it fits in the budget, the body and its rewrite together do not.
    const res = await request(tight.port, { body: body(Math.round(BUDGET * 0.6)) });
    // Both backups have an override: each attempt goes out with an empty body and no key, its answer replaced.
    expect(res.status).toBe(502);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, backup-a;model=backup-model-a;result=over_budget, backup-b;model=backup-model-b;result=over_budget");
    expect(m.backupA.requests.map((r) => r.body.length)).toEqual([0]);
    expect(m.backupB.requests.map((r) => r.body.length)).toEqual([0]);
    // Their filters held the headers until the body's end: neither skipped request carries a backup's key.
    expect(m.backupA.requests.map((r) => r.headers.authorization)).toEqual([undefined]);
    expect(m.backupB.requests.map((r) => r.headers.authorization)).toEqual([undefined]);
    expect(counter(await tight.stats(), "wasmcustom.ai_fallback.over_budget") - before).toBe(2);
    // The request's id as Envoy set it (the generated bootstrap replaces a client's).
    const id = m.backupA.requests[0].headers["x-request-id"];
    expect(tight.logs()).toMatch(new RegExp(`over the memory budget \\(maxKeptBytesPerWorker 8192, in use 0\\): streamed backup backup-a: no room to rewrite the model of a \\d+-byte body; it gets an empty body, its answer is dropped, the chain goes on x-request-id=${id}`));
  });
});
