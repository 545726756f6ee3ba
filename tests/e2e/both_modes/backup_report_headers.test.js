// A backup's own x-ai-fallback-* headers (a chained gateway's report) never reach the client: the
// filter's report replaces them, and with hideTopology no cluster name of the backup's leaks through.
// Both modes.
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const CHAINED_GATEWAY_REPORT = {
  "x-ai-fallback-service": "inner-cluster",
  "x-ai-fallback-attempts": "primary;result=503, inner-cluster;model=inner-model;result=200",
  "x-ai-fallback-model": "inner-model",
  "x-ai-fallback-trigger": "status=599",
  "x-ai-fallback-whatever": "inner-value",
};
const BACKUPS = [{ service: "backup-a" }, { service: "backup-b" }];

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port });

function reportHeaders(res) {
  return Object.fromEntries(Object.entries(res.headers).filter(([name]) => name.startsWith("x-ai-fallback-")));
}

describe.each([
  ["dispatch mode", (plugin) => startEnvoy({ pluginConfig: plugin, clusters: clusters() })],
  ["streamed mode", (plugin) => startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin) })],
])("%s: a backup answering with its own report headers", (mode, start) => {
  let shown;
  let hidden;
  beforeAll(async () => {
    [shown, hidden] = await Promise.all([start({ backups: BACKUPS }), start({ backups: BACKUPS, hideTopology: true })]);
  }, 30000);

  beforeEach(() => m.primary.behave({ status: 503 }));

  test("its answer carries only the filter's report, one value each", async () => {
    m.backupA.behave({ headers: CHAINED_GATEWAY_REPORT });
    const res = await request(shown.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(reportHeaders(res)).toEqual({
      "x-ai-fallback-service": "backup-a",
      "x-ai-fallback-attempts": "primary;result=503, backup-a;model=pass-through;result=200",
      "x-ai-fallback-model": mode === "dispatch mode" ? "gpt-4o" : "pass-through",
      "x-ai-fallback-trigger": "status=503",
    });
  });

  test("with hideTopology none of its cluster names reaches the client", async () => {
    m.backupA.behave({ headers: CHAINED_GATEWAY_REPORT });
    const res = await request(hidden.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(reportHeaders(res)).toEqual({
      "x-ai-fallback-model": mode === "dispatch mode" ? "gpt-4o" : "pass-through",
      "x-ai-fallback-trigger": "status=503",
    });
    expect(JSON.stringify(res.headers)).not.toContain("inner");
  });

  test("a backup error served as the last answer loses its report headers too", async () => {
    m.backupA.behave({ status: 503, headers: CHAINED_GATEWAY_REPORT });
    m.backupB.behave({ status: 500, headers: CHAINED_GATEWAY_REPORT, body: "b down" });
    const res = await request(hidden.port, { body: CHAT });
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.headers)).not.toContain("inner");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-whatever"]).toBeUndefined();
  });
});
