// The end-to-end harness itself: a real Envoy with the filter, mock model services and the client.
const { startEnvoy, stopAllEnvoys, counter, NOOP_WASM_PATH } = require("./envoy");
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
  // The filter is loaded and configured: its metrics are defined.
  expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.started")).toBe(0);
  expect(counter(await envoy.stats(), "cluster.primary.upstream_rq_200")).toBe(1);
  expect(await envoy.statsPrometheus()).toMatch(/envoy_cluster_upstream_rq\{.*envoy_cluster_name="primary"\} 1/);
});

test("a configuration the filter refuses stops Envoy, and the log says why", async () => {
  const result = await startEnvoy({ pluginConfig: "not json", clusters: { primary: 1 }, expectFailure: true });
  expect(result.exitCode).not.toBe(0);
  expect(result.exitCode).not.toBeNull();
  expect(result.logs()).toContain("ai-fallback: invalid configuration");
});

test("the metrics helper reads the filter's metrics and refuses a name Envoy does not report", async () => {
  const primary = await startMock("primary");
  const envoy = await startEnvoy({ pluginConfig: { backups: [{ service: "backup" }] }, clusters: { primary: primary.port, backup: primary.port } });
  const stats = await envoy.stats();
  expect(counter(stats, "wasmcustom.ai_fallback.started")).toBe(0);
  expect(counter(stats, "wasmcustom.ai_fallback.pending_backup_calls")).toBe(0);
  expect(() => counter(stats, "wasmcustom.ai_fallback.no_such_metric")).toThrow(/no metric named wasmcustom.ai_fallback.no_such_metric/);
  await envoy.stop();
});

test("[pass-through] the do-nothing module (build/noop.wasm) loads in Envoy and lets requests through", async () => {
  const primary = await startMock("primary");
  const envoy = await startEnvoy({ wasmPath: NOOP_WASM_PATH, pluginConfig: "anything", clusters: { primary: primary.port } });
  primary.behave({ status: 503 });
  const res = await request(envoy.port, { body: { model: "m" } });
  expect(res.status).toBe(503);
  expect(res.headers["x-served-by"]).toBe("primary");
  expect(envoy.logs()).not.toMatch(/wasm_fail|Function: proxy_on_\w+ failed/);
  await envoy.stop();
});
