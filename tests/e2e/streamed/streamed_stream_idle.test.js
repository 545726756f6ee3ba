// streamIdleTimeout in the streamed mode (docs/streamed-mode.md): the generator sets it as the
// route's idle_timeout, and Envoy's connection manager resets a stream whose answer went silent after
// it began (its response had started, so it cannot answer 408/504 instead): the client sees the
// answer cut, never a clean end. A backup's answer is watched the same way.
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, streamedBootstrapFor } = require("../support/streamed_fixtures");
const { ANTHROPIC, OPENAI_CHAT } = require("../support/provider_streams");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

const IDLE_MS = 1000;
// Envoy's idle timer fires on time (its own timer); a loaded 2-core machine adds the rest.
const BOUND_MS = IDLE_MS + 400;
const PLUGIN = {
  backups: [
    { service: "backup-a", model: "backup-model-a", headers: { authorization: "Bearer key-a" } },
    { service: "backup-b", model: "backup-model-b", headers: { authorization: "Bearer key-b" } },
  ],
  triggerStatuses: ["5xx", 429],
  firstPacketTimeout: 500,
  streamIdleTimeout: IDLE_MS,
};

beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, PLUGIN) });
}, 30000);

async function timed() {
  const started = Date.now();
  const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
  return { res, silence: Date.now() - started - res.chunks[res.chunks.length - 1].at };
}

describe("streamed mode, streamIdleTimeout: a stall after the answer began is cut", () => {
  test("[pass-through] the primary's Anthropic stream goes silent after a text delta: reset within the bound (the route's idle timeout)", async () => {
    const raw = [ANTHROPIC.messageStart, ANTHROPIC.delta("Hello")];
    m.primary.behave({ sse: { raw, intervalMs: 50, stallAfterEvents: true } });
    const { res, silence } = await timed();
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe(raw.join(""));
    expect(res.complete).toBe(false);
    expect(res.error).toBe("reset");
    expect(silence).toBeGreaterThanOrEqual(IDLE_MS - 20);
    expect(silence).toBeLessThan(BOUND_MS);
    console.log(`streamed, primary silent after content: cut ${Math.round(silence)} ms after the last chunk (bound ${BOUND_MS})`);
  }, 20000);

  test("a backup's stream (the primary failed) goes silent after its first tokens: the reported fallback is cut within the bound", async () => {
    m.primary.behave({ status: 503 });
    const raw = [OPENAI_CHAT.role, OPENAI_CHAT.content("from backup")];
    m.backupA.behave({ sse: { raw, intervalMs: 50, stallAfterEvents: true } });
    const { res, silence } = await timed();
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.text).toBe(raw.join(""));
    expect(res.complete).toBe(false);
    expect(res.error).toBe("reset");
    expect(silence).toBeGreaterThanOrEqual(IDLE_MS - 20);
    expect(silence).toBeLessThan(BOUND_MS);
    expect(m.backupB.requests).toHaveLength(0);
  }, 20000);

  test("[pass-through] a stream whose events come IDLE_MS / 2 apart is never cut", async () => {
    const raw = [ANTHROPIC.messageStart, ...Array.from({ length: 5 }, (_, i) => ANTHROPIC.delta(`t${i}`)), ANTHROPIC.messageStop];
    m.primary.behave({ sse: { raw, intervalMs: IDLE_MS / 2 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
    expect(res.complete).toBe(true);
    expect(res.text).toBe(raw.join(""));
  }, 20000);
});
