// streamIdleTimeout in the dispatch mode (docs/dispatch-mode.md): an answer that goes silent after it
// began flowing is cut (the stream is reset) within streamIdleTimeout and a quarter of it, so the
// client can tell it from a complete answer; a stream that keeps moving is never cut. Real event
// shapes: support/provider_streams.js.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { OPENAI_CHAT, ANTHROPIC, OPENAI_RESPONSES } = require("../support/provider_streams");

const STREAM_CHAT = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hello" }] };
const IDLE_MS = 800;
// The watch looks every quarter of the timeout (10 ms tick), plus a loaded 2-core machine.
const BOUND_MS = IDLE_MS + IDLE_MS / 4 + 10 + 400;

const m = useMocks({ primary: "primary", backup: "backup" });
let envoy;

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup" }], streamIdleTimeout: IDLE_MS },
    clusters: { primary: m.primary.port, backup: m.backup.port },
  });
});

async function timed(body) {
  const started = Date.now();
  const res = await request(envoy.port, { body, timeoutMs: 15000 });
  return { res, elapsed: Date.now() - started };
}

describe("dispatch mode, streamIdleTimeout: a stall after the answer began is cut", () => {
  test.each([
    ["OpenAI chat: role, two content deltas, then silence", [OPENAI_CHAT.role, OPENAI_CHAT.content("Hel"), OPENAI_CHAT.content("lo")]],
    ["Anthropic: message_start, a text delta, then silence", [ANTHROPIC.messageStart, ANTHROPIC.blockStart, ANTHROPIC.delta("Hello")]],
    ["OpenAI Responses: response.created, a text delta, then silence", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.delta("Hello")]],
  ])("%s: the client sees a reset within the bound, not an end", async (_, raw) => {
    m.primary.behave({ sse: { raw, intervalMs: 50, stallAfterEvents: true } });
    const { res, elapsed } = await timed(STREAM_CHAT);
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe(raw.join(""));
    // Cut: the response never ended, so no client takes it for a complete answer.
    expect(res.complete).toBe(false);
    expect(res.error).toBe("reset");
    const lastChunkAt = res.chunks[res.chunks.length - 1].at;
    const silence = elapsed - lastChunkAt;
    expect(silence).toBeGreaterThanOrEqual(IDLE_MS - 20);
    expect(silence).toBeLessThan(BOUND_MS);
    console.log(`dispatch, stream idle ${IDLE_MS} ms: cut ${Math.round(silence)} ms after the last chunk (bound ${BOUND_MS})`);
    expect(m.backup.requests).toHaveLength(0);
  }, 20000);

  test("the cut is counted and logged", async () => {
    m.primary.behave({ sse: { raw: [OPENAI_CHAT.role, OPENAI_CHAT.content("Hi")], stallAfterEvents: true } });
    const { res } = await timed(STREAM_CHAT);
    expect(res.error).toBe("reset");
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.stream_idle_cut")).toBeGreaterThanOrEqual(1);
    expect(envoy.logs()).toMatch(/the answer went silent for streamIdleTimeout \(800 ms\) after it began: the stream is cut \(reset\)/);
  }, 20000);
});

describe("dispatch mode, streamIdleTimeout: a stream that keeps moving", () => {
  test("[pass-through] events IDLE_MS / 2 apart for three timeouts' time: complete, never cut", async () => {
    const raw = [ANTHROPIC.messageStart, ...Array.from({ length: 6 }, (_, i) => ANTHROPIC.delta(`t${i}`)), ANTHROPIC.messageStop];
    m.primary.behave({ sse: { raw, intervalMs: IDLE_MS / 2 } });
    const { res } = await timed(STREAM_CHAT);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.text).toBe(raw.join(""));
  }, 20000);

  test("[pass-through] a non-streaming answer slower than streamIdleTimeout is not cut (only streams are watched)", async () => {
    m.primary.behave({ delayHeadersMs: IDLE_MS + 400 });
    const { res } = await timed({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.json().served_by).toBe("primary");
  }, 20000);
});
