// Issue 21 end to end: nothing a client sends holds the memory budget beyond what it sent. Uploads
// that announce a large body and then go idle hold only the bytes that arrived, so the other
// clients of the worker still get their fallbacks.
const net = require("node:net");
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const m = useMocks({ primary: "primary", backup: "backup", backupB: "backup-b" });
const CHAT_BODY = { model: "m", messages: [{ role: "user", content: "hello" }] };
const BUDGET = 4 * 1024 * 1024;

/** Opens a connection that sends request headers announcing `announced` body bytes, then `sent` of them, and idles. */
function idleUpload(port, announced, sent) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n` +
        `content-length: ${announced}\r\n\r\n` + '{"model":"m","messages":[{"role":"user","content":"'.slice(0, sent));
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

async function gauge(envoy, name, until) {
  let value = counter(await envoy.stats(), name);
  for (let i = 0; i < 40 && !until(value); i++) {
    await new Promise((r) => setTimeout(r, 50));
    value = counter(await envoy.stats(), name);
  }
  return value;
}

describe("uploads that announce a large body and go idle", () => {
  test("hold only what they sent: with the budget announced away, a normal request still falls back", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], maxKeptBytesPerWorker: BUDGET },
      clusters: { primary: m.primary.port, backup: m.backup.port },
    });
    const sockets = [];
    try {
      // 2 MiB, 1 MiB, ... 1 byte announced: together the whole budget; at most 50 bytes of each are sent.
      for (let size = 2 * 1024 * 1024; size >= 1; size >>= 1) sockets.push(await idleUpload(envoy.port, size, Math.min(50, size - 1)));
      // Every upload has reached the primary (the filter has seen its headers and first bytes).
      for (let i = 0; i < 40 && m.primary.requests.length < sockets.length; i++) await new Promise((r) => setTimeout(r, 50));
      m.primary.behave({ status: 503 });
      const res = await request(envoy.port, { body: { model: "m", messages: [{ role: "user", content: "x".repeat(8192) }] } });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-service"]).toBe("backup");
      expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.over_budget")).toBe(0);
      for (const s of sockets) s.destroy();
      expect(await gauge(envoy, "wasmcustom.ai_fallback.kept_bytes", (v) => v === 0)).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await envoy.stop();
    }
  });
});

describe("every copy the budget promises to count is counted", () => {
  test("a model-override copy the budget cannot hold is not made: that backup is skipped as over_budget, the next one answers", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup", model: "big-model" }, { service: "backup" }], maxKeptBytesPerWorker: 1024 * 1024 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
    });
    try {
      m.primary.behave({ status: 503 });
      // The request's copy (600 KB) fits in the 1 MiB budget; a second, rewritten copy of it does not.
      const res = await request(envoy.port, { body: { model: "m", messages: [{ role: "user", content: "x".repeat(600 * 1000) }] } });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup;model=big-model;result=over_budget, backup;model=pass-through;result=200");
      expect(m.backup.requests.length).toBe(1);
      expect(JSON.parse(m.backup.requests[0].body).model).toBe("m");
      expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.over_budget")).toBe(1);
    } finally {
      await envoy.stop();
    }
  });
});

describe("every copy the budget promises to count is counted (the request, a backup's answer)", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }, { service: "backup-b" }], maxKeptBytesPerWorker: 1024 * 1024 },
      clusters: { primary: m.primary.port, backup: m.backup.port, "backup-b": m.backupB.port },
    });
  });
  afterAll(() => envoy.stop());
  const overBudget = async () => counter(await envoy.stats(), "wasmcustom.ai_fallback.over_budget");

  test("a request body past the budget is not copied: the primary's error passes through, counted", async () => {
    const before = await overBudget();
    m.primary.behave({ status: 503, body: "primary down" });
    const res = await request(envoy.port, { body: { model: "m", messages: [{ role: "user", content: "x".repeat(1500 * 1000) }] } });
    expect([res.status, res.text]).toEqual([503, "primary down"]);
    expect(m.backup.requests.length + m.backupB.requests.length).toBe(0);
    expect(await overBudget()).toBe(before + 1);
  });

  test("request headers past the budget are not copied either", async () => {
    const small = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], maxKeptBytesPerWorker: 16 * 1024 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
    });
    try {
      m.primary.behave({ status: 503, body: "primary down" });
      const res = await request(small.port, { headers: { "x-large": "h".repeat(20 * 1024) }, body: CHAT_BODY });
      expect([res.status, res.text]).toEqual([503, "primary down"]);
      expect(m.backup.requests.length).toBe(0);
      expect(counter(await small.stats(), "wasmcustom.ai_fallback.over_budget")).toBe(1);
    } finally {
      await small.stop();
    }
  });

  test("a backup answer the budget cannot hold is not kept: that attempt is over_budget, the next backup answers", async () => {
    m.primary.behave({ status: 503 });
    m.backup.behave({ status: 200, body: "y".repeat(1500 * 1000) });
    const res = await request(envoy.port, { body: CHAT_BODY });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup;model=pass-through;result=over_budget, backup-b;model=pass-through;result=200");
  });
});

describe("clients that leave while a backup call is pending", () => {
  test("Envoy carries the call on, and what it holds stays counted until its answer: past the budget, no more calls pile up", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], maxKeptBytesPerWorker: 1024 * 1024 },
      clusters: { primary: m.primary.port, backup: m.backup.port },
    });
    try {
      m.primary.behave({ status: 503, body: "primary down" });
      const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(200 * 1000) }] });
      const outcomes = [];
      for (let n = 0; n < 10; n++) {
        // Each client leaves as soon as the backup has its request (which hangs); past the budget there is none.
        outcomes.push(await new Promise((resolve) => {
          m.backup.behave((entry) => {
            if (entry.headers["x-n"] === String(n)) setImmediate(() => { req.destroy(); resolve("left"); });
            return { hang: true };
          });
          const req = require("node:http").request({ host: "127.0.0.1", port: envoy.port, method: "POST", path: "/v1/chat/completions", agent: false,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-n": String(n) } }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode));
          });
          req.on("error", () => {});
          req.end(body);
        }));
        // Envoy ends the left stream (its copy goes back, its call is held) before the next request comes.
        await new Promise((r) => setTimeout(r, 100));
      }
      // Each abandoned call holds its ~200 KB request and Envoy's own ~8 KiB: five fill the 1 MiB budget.
      expect(outcomes).toEqual(["left", "left", "left", "left", "left", 503, 503, 503, 503, 503]);
      const stats = await envoy.stats();
      expect(counter(stats, "cluster.backup.upstream_rq_active")).toBe(5);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBeGreaterThan(5 * 200 * 1000);
      // The backup lets go of them: their answers (resets) come, the budget is free again, fallbacks work.
      m.backup.dropConnections();
      m.backup.behave({});
      expect(await gauge(envoy, "wasmcustom.ai_fallback.kept_bytes", (v) => v === 0)).toBe(0);
      const res = await request(envoy.port, { body: CHAT_BODY });
      expect([res.status, res.headers["x-ai-fallback-service"]]).toEqual([200, "backup"]);
    } finally {
      await envoy.stop();
    }
  });
});
