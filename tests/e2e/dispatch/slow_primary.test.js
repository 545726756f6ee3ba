// Issue 21 end to end: a primary error whose body is slow, or never comes, does not hold the
// backup's answer back; the primary's trailers never reach the client while a backup is called.
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const CHAT = { model: "m", messages: [{ role: "user", content: "hello" }] };
const m = useMocks({ primary: "primary", backup: "backup" });

describe("a held primary error whose body is slow or stalled", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }], fallbackDeadline: 2000 },
      clusters: { primary: { port: m.primary.port, trailers: true }, backup: m.backup.port },
      routeTimeoutMs: 30000,
      // The client's side takes trailers too: a primary's trailer that leaked would reach it.
      connectionManager: { http_protocol_options: { enable_trailers: true } },
    });
  });

  test("its body 3 s late: the backup's whole answer reaches the client as soon as it is ready", async () => {
    m.primary.behave({ status: 503, body: '{"error":"late"}', delayBodyMs: 3000 });
    const started = Date.now();
    const res = await request(envoy.port, { body: CHAT });
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.json().served_by).toBe("backup");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(took).toBeLessThan(1000);
  });

  test("its body never comes: the client still gets the backup's whole answer at once", async () => {
    m.primary.behave({ status: 503, body: '{"error":"never"}', delayBodyMs: 60000 });
    const started = Date.now();
    const res = await request(envoy.port, { body: CHAT });
    expect([res.status, res.complete, res.json().served_by]).toEqual([200, true, "backup"]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("a complete error with trailers it did not announce: swapped in, and the primary's trailers never reach the client", async () => {
    m.primary.behave({ status: 503, body: '{"error":"down"}', trailers: { "x-primary-trailer": "secret" }, announceTrailers: false });
    m.backup.behave({ delayHeadersMs: 300 });
    const res = await request(envoy.port, { body: CHAT });
    expect([res.status, res.complete, res.json().served_by]).toEqual([200, true, "backup"]);
    expect(res.trailers ?? {}).not.toHaveProperty("x-primary-trailer");
    expect(JSON.stringify(res.headers)).not.toMatch(/secret/);
  });
});

describe("a held primary error with trailers and no body", () => {
  test("the backup's whole answer reaches the client", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }] },
      clusters: { primary: { port: m.primary.port, trailers: true }, backup: m.backup.port },
    });
    try {
      m.primary.behave({ status: 503, body: "", trailers: { "x-primary-trailer": "1" } });
      const res = await request(envoy.port, { body: CHAT });
      expect([res.status, res.complete]).toEqual([200, true]);
      expect(res.json().served_by).toBe("backup");
      expect(res.trailers ?? {}).not.toHaveProperty("x-primary-trailer");
    } finally {
      await envoy.stop();
    }
  });
});
