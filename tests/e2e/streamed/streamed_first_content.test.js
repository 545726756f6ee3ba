// firstPacket "content" in the streamed mode (docs/streamed-mode.md): the primary guard holds a
// streaming 2xx's headers until an event with content, so the router's per-try timeout runs through
// the events a model service opens its stream with; an error event before content marks the
// response, and the generated route retries on the mark. Real event shapes: support/provider_streams.js.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, sseEvents, streamedBootstrapFor } = require("../support/streamed_fixtures");
const { OPENAI_CHAT, ANTHROPIC, OPENAI_RESPONSES } = require("../support/provider_streams");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

const FIRST_PACKET_TIMEOUT_MS = 600;
const MARGIN_MS = 400;
const PLUGIN = {
  backups: [
    { service: "backup-a", model: "backup-model-a", headers: { authorization: "Bearer key-a" } },
    { service: "backup-b", model: "backup-model-b", headers: { authorization: "Bearer key-b" } },
  ],
  triggerStatuses: ["5xx", 429],
  firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS,
  firstPacket: "content",
};

beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, PLUGIN) });
}, 30000);

beforeEach(() => m.backupA.behave({ sse: { events: sseEvents(2) } }));

function expectBackupA(res, result) {
  expect(res.status).toBe(200);
  expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
  expect(res.headers["x-served-by"]).toBe("backup-a");
  expect(res.headers["x-ai-fallback-trigger"]).toBe(result);
  expect(res.headers["x-ai-fallback-attempts"]).toBe(`primary;result=${result}, backup-a;model=backup-model-a;result=200`);
  expect(res.text).toContain('"content":"t1"');
  // The mark that made the route retry never reaches the client.
  expect(res.headers["x-ai-fallback-stream-error"]).toBeUndefined();
  expect(m.backupB.requests).toHaveLength(0);
}

describe("streamed mode, firstPacket content: an error event before content falls back", () => {
  test.each([
    ["Anthropic: message_start, ping, then an overloaded_error event", [ANTHROPIC.messageStart, ANTHROPIC.ping, ANTHROPIC.overloaded]],
    ["OpenAI Responses: response.created, response.in_progress, then response.failed", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.inProgress, OPENAI_RESPONSES.failed]],
    ["OpenAI Responses: response.created, then an error event", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.error]],
    ["OpenAI chat: a role-only delta, then a data: {\"error\": ...} chunk", [OPENAI_CHAT.role, OPENAI_CHAT.error]],
  ])("%s (the stream stays open)", async (_, raw) => {
    m.primary.behave({ sse: { raw, intervalMs: 20, stallAfterEvents: true } });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackupA(res, "stream_error");
    // At the error, not at the per-try timeout; none of the primary's events reached the client.
    expect(res.headersAt).toBeLessThan(FIRST_PACKET_TIMEOUT_MS);
    expect(Date.now() - started).toBeLessThan(FIRST_PACKET_TIMEOUT_MS + MARGIN_MS);
    expect(res.text).not.toMatch(/message_start|response\.created|"role"|error/);
  }, 15000);

  test("Anthropic: an overloaded_error event, then the stream's end: falls back too, counted", async () => {
    m.primary.behave({ sse: { raw: [ANTHROPIC.messageStart, ANTHROPIC.overloaded] } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackupA(res, "stream_error");
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.trigger.stream_error")).toBeGreaterThanOrEqual(1);
  }, 15000);
});

describe("streamed mode, firstPacket content: events without content do not stop the per-try timeout", () => {
  test.each([
    ["OpenAI chat: a role-only delta", [OPENAI_CHAT.role]],
    ["Anthropic: message_start, content_block_start and ping", [ANTHROPIC.messageStart, ANTHROPIC.blockStart, ANTHROPIC.ping]],
    ["OpenAI Responses: response.created and response.in_progress", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.inProgress]],
  ])("%s, then silence: the per-try timeout fires and the backup answers", async (_, raw) => {
    m.primary.behave({ sse: { raw, intervalMs: 20, stallAfterEvents: true } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackupA(res, "first_packet_timeout");
    expect(res.headersAt).toBeGreaterThanOrEqual(FIRST_PACKET_TIMEOUT_MS - 10);
    expect(res.headersAt).toBeLessThan(FIRST_PACKET_TIMEOUT_MS + MARGIN_MS);
  }, 15000);

  test("[pass-through] Anthropic: metadata events then text within the timeout: the primary's whole stream", async () => {
    const raw = [ANTHROPIC.messageStart, ANTHROPIC.blockStart, ANTHROPIC.ping, ANTHROPIC.delta("Hello"), ANTHROPIC.blockStop, ANTHROPIC.messageDelta, ANTHROPIC.messageStop];
    m.primary.behave({ sse: { raw, intervalMs: 50 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe(raw.join(""));
    expect(m.backupA.requests).toHaveLength(0);
  }, 15000);
});
