// The end-to-end harness itself: a real Envoy with the filter, mock model services and the client.
const { startEnvoy, stopAllEnvoys, counter } = require("./envoy");
const { startMock, stopAllMocks } = require("./mock_model");
const { request } = require("./client");

afterAll(async () => {
  await stopAllEnvoys();
  await stopAllMocks();
});

test("a request goes through Envoy and the filter to the primary mock", async () => {
  const primary = await startMock("primary");
  const backup = await startMock("backup");
  const envoy = await startEnvoy({
    pluginConfig: { backups: [{ service: "backup" }] },
    clusters: { primary: primary.port, backup: backup.port },
  });
  const res = await request(envoy.port, { body: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] } });
  expect(res.status).toBe(200);
  expect(res.complete).toBe(true);
  expect(res.error).toBeUndefined();
  expect(res.json()).toEqual({
    id: "chatcmpl-primary",
    object: "chat.completion",
    model: "gpt-4o",
    choices: [{ index: 0, message: { role: "assistant", content: "hello from primary" }, finish_reason: "stop" }],
    served_by: "primary",
  });
  expect(res.headers["x-served-by"]).toBe("primary");
  expect(primary.requests).toHaveLength(1);
  expect(JSON.parse(primary.requests[0].body).model).toBe("gpt-4o");
  expect(backup.requests).toHaveLength(0);
  expect(envoy.logs()).toContain("wasm");
  expect(counter(await envoy.stats(), "cluster.primary.upstream_rq_200")).toBe(1);
  expect(await envoy.statsPrometheus()).toMatch(/envoy_cluster_upstream_rq\{.*envoy_cluster_name="primary"\} 1/);
});

test("a configuration the filter refuses stops Envoy, and the log says why", async () => {
  const result = await startEnvoy({ pluginConfig: "not json", clusters: { primary: 1 }, expectFailure: true });
  expect(result.exitCode).not.toBe(0);
  expect(result.exitCode).not.toBeNull();
  expect(result.logs()).toContain("ai-fallback: invalid configuration");
});
