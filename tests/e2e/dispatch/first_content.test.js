// firstPacket "content" in the dispatch mode (docs/dispatch-mode.md): with firstPacketTimeout, the
// events a model service opens its stream with (OpenAI chat's role-only delta, Anthropic's
// message_start and ping, OpenAI Responses' response.created) do not stop the timer, and an error
// event before any content falls back at once (trigger stream_error). Real event shapes:
// support/provider_streams.js.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { OPENAI_CHAT, ANTHROPIC, OPENAI_RESPONSES } = require("../support/provider_streams");

const STREAM_CHAT = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hello" }] };
const FIRST_PACKET_TIMEOUT_MS = 500;
// A 10 ms tick, the backup's call and a loaded 2-core machine.
const MARGIN_MS = 400;

const m = useMocks({ primary: "primary", backup: "backup" });
let envoy;

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup", timeout: 3000 }], firstPacketTimeout: FIRST_PACKET_TIMEOUT_MS, firstPacket: "content" },
    clusters: { primary: m.primary.port, backup: m.backup.port },
  });
});

beforeEach(() => m.backup.behave({ sse: { events: ['{"choices":[{"delta":{"content":"from backup"}}]}'] } }));

function expectBackup(res, trigger) {
  expect(res.status).toBe(200);
  expect(res.headers["x-served-by"]).toBe("backup");
  expect(res.headers["x-ai-fallback-trigger"]).toBe(trigger);
  expect(res.text).toContain("from backup");
  expect(m.backup.requests).toHaveLength(1);
}

describe("dispatch mode, firstPacket content: an error event before content falls back", () => {
  test.each([
    ["Anthropic: message_start, ping, then an overloaded_error event", [ANTHROPIC.messageStart, ANTHROPIC.ping, ANTHROPIC.overloaded]],
    ["OpenAI Responses: response.created, response.in_progress, then response.failed", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.inProgress, OPENAI_RESPONSES.failed]],
    ["OpenAI Responses: response.created, then an error event", [OPENAI_RESPONSES.created, OPENAI_RESPONSES.error]],
    ["OpenAI chat: a role-only delta, then a data: {\"error\": ...} chunk", [OPENAI_CHAT.role, OPENAI_CHAT.error]],
  ])("%s (the stream stays open)", async (_, raw) => {
    m.primary.behave({ sse: { raw, intervalMs: 20, stallAfterEvents: true } });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackup(res, "stream_error");
    // At the error, not at the timeout; and none of the primary's events reached the client.
    expect(res.headersAt).toBeLessThan(FIRST_PACKET_TIMEOUT_MS);
    expect(Date.now() - started).toBeLessThan(FIRST_PACKET_TIMEOUT_MS + MARGIN_MS);
    expect(res.text).not.toMatch(/message_start|response\.created|"role"|error/);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=stream_error, backup;model=pass-through;result=200");
  }, 15000);

  test("Anthropic: an overloaded_error event, then the stream's end: falls back too", async () => {
    m.primary.behave({ sse: { raw: [ANTHROPIC.messageStart, ANTHROPIC.overloaded] } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackup(res, "stream_error");
    const stats = await envoy.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.trigger.stream_error")).toBeGreaterThanOrEqual(1);
  }, 15000);
});

describe("dispatch mode, firstPacket content: events without content do not stop the timer", () => {
  test.each([
    ["OpenAI chat: a role-only delta", [OPENAI_CHAT.role]],
    ["Anthropic: message_start, content_block_start and ping", [ANTHROPIC.messageStart, ANTHROPIC.blockStart, ANTHROPIC.ping]],
    ["OpenAI Responses: response.created, response.in_progress, output_item.added, content_part.added",
      [OPENAI_RESPONSES.created, OPENAI_RESPONSES.inProgress, OPENAI_RESPONSES.itemAdded, OPENAI_RESPONSES.partAdded]],
  ])("%s, then silence: the timeout fires and falls back", async (_, raw) => {
    m.primary.behave({ sse: { raw, intervalMs: 20, stallAfterEvents: true } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackup(res, "first_packet_timeout");
    expect(res.headersAt).toBeGreaterThanOrEqual(FIRST_PACKET_TIMEOUT_MS - 10);
    expect(res.headersAt).toBeLessThan(FIRST_PACKET_TIMEOUT_MS + MARGIN_MS);
  }, 15000);

  test("Anthropic: metadata events split across chunks mid-event are still held", async () => {
    const text = ANTHROPIC.messageStart + ANTHROPIC.ping;
    const cut = ANTHROPIC.messageStart.length + 9;
    m.primary.behave({ sse: { raw: [text.slice(0, 30), text.slice(30, cut), text.slice(cut)], intervalMs: 60, stallAfterEvents: true } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expectBackup(res, "first_packet_timeout");
  }, 15000);
});

describe("dispatch mode, firstPacket content: content within the timeout", () => {
  test("[pass-through] Anthropic: metadata events then text: the primary's whole stream, metadata included", async () => {
    const raw = [ANTHROPIC.messageStart, ANTHROPIC.blockStart, ANTHROPIC.ping, ANTHROPIC.delta("Hello"), ANTHROPIC.blockStop, ANTHROPIC.messageDelta, ANTHROPIC.messageStop];
    m.primary.behave({ sse: { raw, intervalMs: 50 } });
    const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.text).toBe(raw.join(""));
    expect(m.backup.requests).toHaveLength(0);
  }, 15000);

  test("[pass-through] OpenAI Responses and chat: metadata then a delta within the timeout: the primary's stream", async () => {
    for (const raw of [[OPENAI_RESPONSES.created, OPENAI_RESPONSES.inProgress, OPENAI_RESPONSES.delta("Hi")], [OPENAI_CHAT.role, OPENAI_CHAT.content("Hi"), OPENAI_CHAT.stop, OPENAI_CHAT.done]]) {
      m.primary.behave({ sse: { raw, intervalMs: 80 } });
      const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 10000 });
      expect(res.headers["x-served-by"]).toBe("primary");
      expect(res.text).toBe(raw.join(""));
    }
    expect(m.backup.requests).toHaveLength(0);
  }, 15000);
});
