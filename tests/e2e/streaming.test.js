// Issue 4 end to end: the first packet timeout and SSE streaming through a real Envoy.
const { startEnvoy, counter } = require("./envoy");
const { request, abortAfter } = require("./client");
const { useMocks } = require("./fixtures");

const STREAM_CHAT = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hello" }] };
const PLAIN_CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const m = useMocks({ primary: "primary", backup: "backup" });
let envoy;
const backupStream = { sse: { events: ['{"choices":[{"delta":{"content":"from backup"}}]}'] } };

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: {
      backups: [{ service: "backup", timeout: 2000 }],
      firstPacketTimeout: 300,
      _rules_: [
        { _match_route_: ["keepalive-aware"], keepAliveIsNotFirstPacket: true },
        { _match_route_: ["short-chain"], fallbackDeadline: 700, backups: [{ service: "backup", timeout: 5000 }, { service: "backup" }] },
      ],
    },
    clusters: { primary: m.primary.port, backup: m.backup.port },
    routes: [
      { name: "keepalive-aware", prefix: "/aware/" },
      { name: "short-chain", prefix: "/short/" },
      { name: "primary-route", prefix: "/" },
    ],
  });
});

// The backup answers streams unless a test says otherwise.
beforeEach(() => m.backup.behave(backupStream));

async function gauges() {
  const stats = await envoy.stats();
  return {
    calls: counter(stats, "wasmcustom.ai_fallback.pending_backup_calls"),
    timers: counter(stats, "wasmcustom.ai_fallback.timers"),
  };
}

describe("first packet timeout", () => {
  test("a primary whose headers are late is replaced by the backup's stream", async () => {
    m.primary.behave({ delayHeadersMs: 3000, sse: { events: ["late"] } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(res.headers["content-type"]).toBe("text/event-stream");
    expect(res.text).toMatch(/^data: \{"choices".*from backup.*\n\n/);
    expect(res.text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(res.headersAt).toBeGreaterThanOrEqual(290);
    expect(res.headersAt).toBeLessThan(2500);
  });

  test("a primary that sends 200 headers and then stalls: the client never sees those headers", async () => {
    m.primary.behave({ sse: { stallAfterHeaders: true }, headers: { "x-primary-header": "seen" } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(res.headers["x-primary-header"]).toBeUndefined();
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=first_packet_timeout, backup;model=pass-through;result=200");
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.trigger.first_packet_timeout")).toBeGreaterThanOrEqual(2);
  });

  test("a late primary that does start streaming beats a backup that fails", async () => {
    m.primary.behave({ sse: { firstDelayMs: 600, events: ["late but fine"] } });
    m.backup.behave({ status: 500 });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe("data: late but fine\n\ndata: [DONE]\n\n");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=first_packet_timeout, backup;model=pass-through;result=500");
  });

  test("a headers-only 2xx is complete: it passes at once, nothing waits for a first packet", async () => {
    m.primary.behave({ status: 200, body: "" });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.headersAt).toBeLessThan(250);
    expect(m.backup.requests.length).toBe(0);
  });

  test("non-streaming requests have no first packet timeout", async () => {
    m.primary.behave({ delayHeadersMs: 600 });
    const res = await request(envoy.port, { body: PLAIN_CHAT });
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(m.backup.requests.length).toBe(0);
  });

  test("by default a keep-alive counts as the first packet (the seed's behaviour)", async () => {
    m.primary.behave({ sse: { keepAlives: [{ afterMs: 0, text: ": ping\n\n" }], firstDelayMs: 700, events: ["real"] } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text.startsWith(": ping\n\n")).toBe(true);
    expect(m.backup.requests.length).toBe(0);
  });

  test("with keepAliveIsNotFirstPacket, a primary that only sends keep-alives falls back", async () => {
    m.primary.behave({ sse: { keepAlives: [{ afterMs: 0, text: ": ping\n\n" }, { afterMs: 100, text: ":\n\n" }, { afterMs: 200, text: "\n" }], stallAfterHeaders: true } });
    const res = await request(envoy.port, { path: "/aware/v1/chat/completions", body: STREAM_CHAT });
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(res.text).not.toMatch(/ping/);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
  });

  test("with keepAliveIsNotFirstPacket, held keep-alives are delivered once real data follows", async () => {
    m.primary.behave({ sse: { keepAlives: [{ afterMs: 0, text: ": ping\n\n" }], firstDelayMs: 100, events: ["real"] } });
    const res = await request(envoy.port, { path: "/aware/v1/chat/completions", body: STREAM_CHAT });
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe(": ping\n\ndata: real\n\ndata: [DONE]\n\n");
  });

  test("once the first packet has passed, chunks reach the client as the primary sends them", async () => {
    m.primary.behave({ sse: { events: ["a", "b", "c", "d"], intervalMs: 250 } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe("data: a\n\ndata: b\n\ndata: c\n\ndata: d\n\ndata: [DONE]\n\n");
    const arrivals = res.chunks.filter((c) => /data: [a-d]/.test(c.data.toString())).map((c) => c.at);
    expect(arrivals.length).toBe(4);
    for (let i = 1; i < arrivals.length; i++) {
      expect(arrivals[i] - arrivals[i - 1]).toBeGreaterThan(150);
    }
  });
});

describe("the Envoy setting firstPacketTimeout needs", () => {
  test("without allow_on_headers_stop_iteration a healthy stream cannot be watched: it falls back, and the log says why", async () => {
    const unset = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], firstPacketTimeout: 300 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
      allowOnHeadersStopIteration: false,
    });
    m.primary.behave({ sse: { events: ["a", "b"], intervalMs: 20 } });
    const res = await request(unset.port, { body: STREAM_CHAT });
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(unset.logs()).toMatch(/first packet timeout after 2xx headers, and no held response has shown a body on this worker yet: .*set allow_on_headers_stop_iteration: true/);
    await unset.stop();
  });
});

describe("streaming fallback", () => {
  test("a streaming request whose primary answers 500 gets the backup's whole SSE answer", async () => {
    m.primary.behave({ status: 500, json: { error: "boom" } });
    m.backup.behave({ sse: { events: ["one", "two"], intervalMs: 100 } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/event-stream");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=500");
    expect(res.text).toBe("data: one\n\ndata: two\n\ndata: [DONE]\n\n");
    expect(res.complete).toBe(true);
  });

  test("a primary that fails after streaming began: the client sees the stream cut, not a clean end", async () => {
    m.primary.behave({ sse: { events: ["a", "b", "c"], intervalMs: 50, resetAfter: 2 } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.status).toBe(200);
    expect(res.text).toContain("data: a");
    expect(res.text).not.toContain("[DONE]");
    expect(res.complete).toBe(false);
    expect(res.error).toBe("reset");
  });

  test("the chain's total deadline cuts a hanging backup short and the client gets the last error", async () => {
    m.primary.behave({ status: 503 });
    m.backup.behave({ hang: true });
    const started = Date.now();
    const res = await request(envoy.port, { path: "/short/v1/chat/completions", body: STREAM_CHAT });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(2500);
    expect(res.status).toBe(504);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup;model=pass-through;result=timeout, chain;result=deadline_exceeded");
  });
});

describe("Envoy's stream idle timeout", () => {
  test("a chain deadline under stream_idle_timeout answers with the attempts before Envoy would cut the held stream", async () => {
    const idle = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup", timeout: 5000 }], fallbackDeadline: 800 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
      connectionManager: { stream_idle_timeout: "2s" },
    });
    m.primary.behave({ status: 503 });
    m.backup.behave({ hang: true });
    const res = await request(idle.port, { body: PLAIN_CHAT });
    expect(res.status).toBe(504);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup;model=pass-through;result=timeout");
    expect(res.headersAt).toBeLessThan(1900);
    await idle.stop();
  });
});

describe("a held primary that Envoy itself ends", () => {
  test("its route timeout pre-empts a fallback in flight: counted and logged (routes need timeout >= firstPacketTimeout + fallbackDeadline)", async () => {
    const short = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], firstPacketTimeout: 200 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
      routeTimeoutMs: 700,
    });
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    m.backup.behave({ delayHeadersMs: 2000, sse: { events: ["too late"] } });
    const res = await request(short.port, { headers: { "x-request-id": "preempted-1" }, body: STREAM_CHAT });
    expect(res.status).not.toBe(200);
    await sleep(200);
    expect(counter(await short.stats(), "wasmcustom.ai_fallback.preempted")).toBe(1);
    expect(short.logs()).toMatch(/first_packet_timeout -> the stream ended before the fallback did; attempts so far: primary;result=first_packet_timeout x-request-id=preempted-1/);
    await short.stop();
  });
});

describe("the client goes away", () => {
  test("while the first packet timer is pending: nothing is left behind, later requests work", async () => {
    m.primary.behave({ hang: true });
    const res = await abortAfter(envoy.port, { body: STREAM_CHAT }, 100);
    expect(res.aborted).toBe(true);
    await sleep(500); // past the deadline: the tick must find no stream
    expect(await gauges()).toEqual({ calls: 0, timers: 0 });
    expect(m.backup.requests.length).toBe(0);
    m.primary.behave({});
    const next = await request(envoy.port, { body: PLAIN_CHAT });
    expect(next.headers["x-served-by"]).toBe("primary");
  });

  test("while a backup call is pending: the late answer finds no stream and does nothing", async () => {
    m.primary.behave({ status: 500 });
    m.backup.behave({ delayHeadersMs: 600, sse: { events: ["late"] } });
    const res = await abortAfter(envoy.port, { body: STREAM_CHAT }, 200);
    expect(res.aborted).toBe(true);
    expect(m.backup.requests.length).toBe(1);
    await sleep(900); // the backup answers after the client left
    expect(await gauges()).toEqual({ calls: 0, timers: 0 });
    expect(envoy.logs()).not.toMatch(/abort:|wasm_fail_stream|Function: proxy_on_\w+ failed/);
    m.backup.behave(backupStream);
    const next = await request(envoy.port, { body: STREAM_CHAT });
    expect(next.headers["x-served-by"]).toBe("backup");
  });
});
