// The streamed mode's retry marks (docs/streamed-mode.md): the generated route retries an answer an
// attempt's filter marked (x-ai-fallback-retry; x-ai-fallback-stream-error from the primary guard).
// A model service's own answer may carry headers of those names (a misbehaving or hostile service, a
// gateway in front of it): that is not this gateway's filter saying so, and a good answer must still
// reach the client. The route retries only on the mark's value the generator chose for this
// configuration, which no model service sees.
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, sseEvents, TWO_BACKUPS, streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });

const WITH_GUARD = { ...TWO_BACKUPS, firstPacketTimeout: 2000 };
const SSE = { sse: { events: sseEvents(2) } };

describe("streamed mode: a model service's own retry-mark headers", () => {
  test.each([
    ["x-ai-fallback-retry", "1", "", TWO_BACKUPS],
    ["x-ai-fallback-retry", "1", " (with the primary guard)", WITH_GUARD],
    ["x-ai-fallback-stream-error", "stream_error", " (firstPacket \"content\")", { ...WITH_GUARD, firstPacket: "content" }],
  ])("the primary's 200 carrying %s: %s reaches the client%s, no backup called; its 503 still falls back", async (name, value, _, plugin) => {
    const envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin) });
    try {
      m.primary.behave({ ...SSE, headers: { [name]: value } });
      m.backupA.behave(SSE);
      m.backupB.behave(SSE);
      const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-model"]).toBeUndefined();
      expect(m.backupA.requests).toHaveLength(0);
      expect(m.backupB.requests).toHaveLength(0);
      expect(m.primary.requests).toHaveLength(1);
      // The route removes the names before the client sees the answer, whoever set them.
      expect(res.headers[name]).toBeUndefined();
      // The same gateway still falls back when the primary fails: its own filters' marks are retried.
      m.primary.behave({ status: 503 });
      const fallback = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
      expect(fallback.status).toBe(200);
      expect(fallback.headers["x-ai-fallback-model"]).toBe("backup-model-a");
      expect(JSON.parse(m.backupA.requests[0].body).model).toBe("backup-model-a");
    } finally {
      await envoy.stop();
    }
  });

  test("a backup's 200 carrying x-ai-fallback-retry reaches the client; the next backup is not called", async () => {
    const envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port) });
    try {
      m.primary.behave({ status: 503 });
      m.backupA.behave({ ...SSE, headers: { "x-ai-fallback-retry": "1" } });
      m.backupB.behave(SSE);
      const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-model"]).toBe("backup-model-a");
      expect(m.backupB.requests).toHaveLength(0);
    } finally {
      await envoy.stop();
    }
  });
});
