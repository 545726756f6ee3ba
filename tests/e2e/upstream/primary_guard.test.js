// Issue 10 items 1, 2 and 4 end to end, with the primary guard (docs/primary-guard.md) on the
// primary's cluster: the two cases where, without it, Envoy sends a backup's answer straight to the
// client (tests/e2e/dispatch/filter_chain.test.js pins those) now reach the client through every encoder
// filter. One Envoy: CORS first (route policy), a header mutation and gzip before ai-fallback,
// local_reply_config turning local replies into JSON.
const { startEnvoy, counter } = require("../support/envoy");
const { abortAfter, request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { CORS_ORIGIN, cors, corsRoutePolicy, responseHeaderMutation, gzipCompressor, jsonLocalReplies, primaryGuard, seenByFilters, SEEN, UNSEEN } = require("../support/http_filters");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const STREAM = { ...CHAT, stream: true };
const FROM_BROWSER = { origin: CORS_ORIGIN };
const SSE_EVENTS = ['{"choices":[{"delta":{"content":"hi"}}]}', '{"choices":[{"delta":{},"finish_reason":"stop"}]}'];
const SSE_BYTES = SSE_EVENTS.map((e) => `data: ${e}\n\n`).join("") + "data: [DONE]\n\n";
const FIRST_PACKET_TIMEOUT_MS = 300;
// Allowance for a loaded 2-core machine shared with other test runs.
const MARGIN_MS = 250;

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: {
      backups: [{ service: "backup-a" }, { service: "backup-b" }],
      firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS,
      triggerStatuses: ["5xx", 429],
    },
    clusters: {
      primary: { port: m.primary.port, upstreamFilters: [primaryGuard()] },
      "backup-a": m.backupA.port,
      "backup-b": m.backupB.port,
    },
    routes: [{ name: "chat", prefix: "/", typedPerFilterConfig: corsRoutePolicy }],
    extraHttpFilters: [cors, responseHeaderMutation("x-mutated", "yes"), gzipCompressor],
    connectionManager: jsonLocalReplies,
  });
});

describe("with the guard, the two 'straight to the client' cases reach the client through the filter chain", () => {
  test("a primary that sends 200 SSE headers then stalls: the backup's SSE answer carries CORS, byte-exact", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    m.backupA.behave({ sse: { events: SSE_EVENTS } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(seenByFilters(res)).toEqual(SEEN);
    expect(res.headers["content-type"]).toBe("text/event-stream");
    expect(res.text).toBe(SSE_BYTES); // not wrapped by local_reply_config
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(m.primary.requests).toHaveLength(1);
    console.log(`guard, primary stalled after 200 (firstPacketTimeout ${FIRST_PACKET_TIMEOUT_MS} ms): the backup's answer arrived at ${Math.round(res.chunks[0].at)} ms`);
  });

  test("a headers-only primary 503: swapped in place, CORS on the backup's answer, counted as the model service's error", async () => {
    m.primary.behave({ status: 503, body: "", headers: { "retry-after": "3" } });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a"); // the answer itself, not local_reply_config's wrapping
    expect(seenByFilters(res)).toEqual(SEEN);
    // backendErrorsOnly is on (the default): the guard's reply is the model service's own 503.
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=pass-through;result=200");
  });

  test("a headers-only primary 503 on a streaming request, every backup failing: the last error, with CORS", async () => {
    m.primary.behave({ status: 503, body: "" });
    m.backupA.behave({ status: 500, body: "a down" });
    m.backupB.behave({ status: 429, headers: { "content-type": "application/json" }, body: '{"error":"b busy"}' });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(429);
    expect(res.text).toBe('{"error":"b busy"}');
    expect(seenByFilters(res)).toEqual(SEEN);
  });

  test("a headers-only primary error that does not trigger reaches the client with its status, its headers and a body", async () => {
    m.primary.behave({ status: 404, body: "", headers: { "x-request-cost": "0" } });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(404);
    expect(res.headers["x-request-cost"]).toBe("0");
    expect(seenByFilters(res)).toEqual(SEEN);
    // The guard's body is a local reply's: local_reply_config formats it like any other.
    expect(JSON.parse(res.json().error).error.message).toBe("the model service answered 404 without a body");
    expect(m.backupA.requests).toHaveLength(0);
  });
});

describe("a client that leaves while the guard holds the primary's 200", () => {
  test("nothing traps; the deadline finds no stream; the next stalled primary still falls back through the filters", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    const left = await abortAfter(envoy.port, { body: STREAM, headers: FROM_BROWSER }, FIRST_PACKET_TIMEOUT_MS / 2);
    expect(left.aborted).toBe(true);
    await new Promise((r) => setTimeout(r, FIRST_PACKET_TIMEOUT_MS + 200)); // past the deadline
    expect(m.backupA.requests).toHaveLength(0);
    expect(envoy.logs()).not.toMatch(/abort:|wasm_fail_stream|Function: proxy_on_\w+ failed/);
    m.backupA.behave({ sse: { events: SSE_EVENTS } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.text).toBe(SSE_BYTES);
    expect(seenByFilters(res)).toEqual(SEEN);
  });
});

describe("what the guard cannot change", () => {
  test("a primary whose first byte comes after its timeout, while the backup is called: held as a last resort, the backup's answer goes straight to the client", async () => {
    m.primary.behave({ sse: { events: ['{"n":1}'], firstDelayMs: FIRST_PACKET_TIMEOUT_MS + 150 } });
    m.backupA.behave({ delayHeadersMs: 400 });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(seenByFilters(res)).toEqual(UNSEEN);
    expect(JSON.parse(res.json().error).served_by).toBe("backup-a"); // local_reply_config wrapped it
  });
});

describe("the guard leaves healthy responses as they were", () => {
  test("[pass-through] a healthy streaming primary's first byte is not delayed, and its stream flows as written", async () => {
    const firstDelayMs = 150;
    const intervalMs = 300;
    m.primary.behave({ sse: { events: ["1", "2", "3"].map((i) => `{"n":${i}}`), firstDelayMs, intervalMs } });
    const res = await request(envoy.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    const events = res.chunks.filter((c) => /data: \{"n"/.test(c.data.toString("utf8")));
    expect(events).toHaveLength(3);
    // The guard held only the headers, until this first event: the event arrives when it was written.
    expect(events[0].at).toBeLessThan(firstDelayMs + MARGIN_MS);
    console.log(`guard, healthy stream written at ${firstDelayMs}, +${intervalMs}, +${intervalMs} ms: client saw ${events.map((e) => Math.round(e.at)).join(", ")} ms`);
    expect(events[1].at - events[0].at).toBeGreaterThan(intervalMs - MARGIN_MS / 2);
    expect(m.backupA.requests).toHaveLength(0);
  });

  test("[pass-through] a non-streaming primary's slow body is not a first-packet timeout (the guard does not hold it)", async () => {
    m.primary.behave({ delayBodyMs: FIRST_PACKET_TIMEOUT_MS + 300 });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("primary");
    expect(m.backupA.requests).toHaveLength(0);
  });

  test("a primary error with a body passes the guard untouched and is swapped as before", async () => {
    m.primary.behave({ status: 502, json: { error: "bad gateway" } });
    const res = await request(envoy.port, { body: CHAT, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(seenByFilters(res)).toEqual(SEEN);
  });
});

test("a bad guard configuration stops Envoy, naming the field", async () => {
  const failed = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup-a" }] },
    clusters: { primary: { port: m.primary.port, upstreamFilters: [primaryGuard({ holdFirstPacket: "yes" })] }, "backup-a": m.backupA.port },
    expectFailure: true,
  });
  expect(failed.exitCode).not.toBe(0);
  expect(failed.logs()).toMatch(/invalid configuration \(ai-fallback-upstream\): guard\.holdFirstPacket: must be true or false, got "yes"/);
}, 30000);

describe("a guard without allow_on_headers_stop_iteration", () => {
  let bare;
  beforeAll(async () => {
    bare = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS },
      clusters: {
        primary: { port: m.primary.port, upstreamFilters: [primaryGuard({}, { allowOnHeadersStopIteration: false })] },
        "backup-a": m.backupA.port,
      },
    });
  }, 30000);
  afterAll(() => bare.stop());

  test("holds a healthy stream until the first-packet timeout (Envoy shows it no body), and says what to set", async () => {
    m.primary.behave({ sse: { events: ['{"n":1}'], firstDelayMs: 50 } });
    const res = await request(bare.port, { body: STREAM });
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(await bare.logsWhen(/primary guard: .*set allow_on_headers_stop_iteration: true/)).toMatch(
      /primary guard: a streaming response ended while its headers waited .* set allow_on_headers_stop_iteration: true in the guard's wasm plugin config/);
  });
});

describe("the guard holds what ai-fallback times, told by filter state (no copy of the body of its own)", () => {
  let told;
  beforeAll(async () => {
    told = await startEnvoy({
      pluginConfig: {
        backups: [{ service: "backup-a" }],
        firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS,
        keepAliveIsNotFirstPacket: true,
        // A route whose requests ai-fallback does not time: the guard must not hold them either.
        _rules_: [{ _match_route_: ["untimed"], firstPacketTimeout: 0 }],
      },
      clusters: {
        // No keepAliveIsNotFirstPacket here: ai-fallback's (told with the timing) applies. The field
        // the guard no longer uses still loads, with a warning.
        primary: { port: m.primary.port, upstreamFilters: [primaryGuard({ maxRequestBodyBytes: 1024 })] },
        "backup-a": m.backupA.port,
      },
      routes: [
        { name: "untimed", prefix: "/untimed", typedPerFilterConfig: corsRoutePolicy },
        { name: "chat", prefix: "/", typedPerFilterConfig: corsRoutePolicy },
      ],
      extraHttpFilters: [cors, responseHeaderMutation("x-mutated", "yes"), gzipCompressor],
      connectionManager: jsonLocalReplies,
    });
  }, 30000);
  afterAll(() => told.stop());

  test("ai-fallback's keepAliveIsNotFirstPacket reaches the guard: a primary sending only keep-alives is held, and its fallback passes the filters", async () => {
    m.primary.behave({ sse: { keepAlives: [{ afterMs: 0, text: ": ping\n\n" }, { afterMs: 100, text: ":\n\n" }], stallAfterHeaders: true } });
    m.backupA.behave({ sse: { events: SSE_EVENTS } });
    const res = await request(told.port, { body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(res.text).toBe(SSE_BYTES);
    // Released at the first keep-alive, ai-fallback's timeout would answer straight to the client (UNSEEN).
    expect(seenByFilters(res)).toEqual(SEEN);
  });

  test("[pass-through] a streaming request ai-fallback does not time (its rule has no firstPacketTimeout) is not held: its 200 headers come at once", async () => {
    const firstDelayMs = 400;
    m.primary.behave({ sse: { events: ['{"n":1}'], firstDelayMs } });
    const res = await request(told.port, { path: "/untimed/v1/chat/completions", body: STREAM, headers: FROM_BROWSER });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    // A guard scanning the body itself would hold these headers until the event written at 400 ms.
    expect(res.headersAt).toBeLessThan(firstDelayMs - 150);
    expect(res.chunks.some((c) => /data: \{"n":1\}/.test(c.data.toString("utf8")))).toBe(true);
  });

  test("the guard's maxRequestBodyBytes, no longer used, is named in a warning at load", async () => {
    expect(await told.logsWhen(/configuration warning \(ai-fallback-upstream\): guard\.maxRequestBodyBytes is no longer used/)).toMatch(
      /guard\.maxRequestBodyBytes is no longer used: the guard copies no request body/);
  });
});

describe("one memory budget per VM: what the guard reads counts against ai-fallback's maxKeptBytesPerWorker", () => {
  // Two held requests' copies (~90 KB each) leave less than the guard needs to read a 150 KB keep-alive.
  const BUDGET = 200000;
  const BIG = 90000;
  let tight;
  beforeAll(async () => {
    tight = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS, keepAliveIsNotFirstPacket: true, maxKeptBytesPerWorker: BUDGET },
      clusters: { primary: { port: m.primary.port, upstreamFilters: [primaryGuard()] }, "backup-a": m.backupA.port },
    });
  }, 30000);
  afterAll(() => tight.stop());

  test("with the budget full, the guard does not read a held keep-alive: the stream flows un-held, answered by the primary, and the budget comes back to 0", async () => {
    const bigBody = (i) => ({ ...CHAT, n: i, messages: [{ role: "user", content: "x".repeat(BIG) }] });
    const HELD_MS = 1500;
    m.primary.behave((req) => (req.headers["x-big"]
      ? { delayHeadersMs: HELD_MS } // the large requests wait here, their copies kept
      : { sse: { keepAlives: [{ afterMs: 0, text: ": " + "p".repeat(150000) + "\n\n" }], events: ['{"n":1}'], firstDelayMs: 700 } }));
    const before = await tight.stats();
    const big = [1, 2].map((i) => request(tight.port, { body: bigBody(i), headers: { "x-big": "1" } }));
    await new Promise((r) => setTimeout(r, 300)); // both copies are kept by now
    const res = await request(tight.port, { body: STREAM, timeoutMs: 10000 });
    // The guard released the stream at the keep-alive it could not read (and so did ai-fallback):
    // no first-packet timeout, the primary's own stream.
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(res.text).toMatch(/data: \{"n":1\}/);
    for (const r of await Promise.all(big)) expect(r.status).toBe(200);
    expect(m.backupA.requests).toHaveLength(0);
    expect(tight.logs()).toMatch(/over the memory budget \(maxKeptBytesPerWorker 200000, in use \d+\): primary guard: a held response body of \d+ bytes is not checked for keep-alives; it flows as the first packet/);
    const after = await tight.stats();
    expect(counter(after, "wasmcustom.ai_fallback.over_budget") - counter(before, "wasmcustom.ai_fallback.over_budget")).toBeGreaterThanOrEqual(1);
    expect(counter(after, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    expect(counter(after, "wasmcustom.ai_fallback.streams")).toBe(0);
  }, 20000);
});
