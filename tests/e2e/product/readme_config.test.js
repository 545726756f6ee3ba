// The README's "An Envoy configuration to copy" runs as printed: its YAML and its curl request are read from
// README.md, and only what must change to run beside other tests changes: the four ports (listener,
// admin, primary, backup) and the module's path (the build under test).
const fs = require("node:fs");
const path = require("node:path");
const yaml = require("js-yaml");
const { startEnvoy, growth, WASM_PATH } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { readmeEnvoyConfig, readmeCurl } = require("../../unit/support/doc_blocks");

const README = fs.readFileSync(path.join(__dirname, "..", "..", "..", "README.md"), "utf8");
const m = useMocks({ primary: "primary", backup: "backup" });

/** The README's YAML with its ports and module path pointed at this test's. */
function bootstrapFor(ports) {
  const text = readmeEnvoyConfig(README);
  const replaced = text
    .replace("port_value: 10000", `port_value: ${ports.listener}`)
    .replace("port_value: 9901", `port_value: ${ports.admin}`)
    .replace("port_value: 8001", `port_value: ${m.primary.port}`)
    .replace("port_value: 8002", `port_value: ${m.backup.port}`)
    .replace("filename: build/ai_fallback.wasm", `filename: ${WASM_PATH}`);
  // Each replacement found its text exactly once: the README still has the ports and path it explains.
  for (const printed of ["port_value: 10000", "port_value: 9901", "port_value: 8001", "port_value: 8002", "filename: build/ai_fallback.wasm"]) {
    expect(text.split(printed).length).toBe(2);
  }
  return yaml.safeLoad(replaced);
}

describe("the README's Envoy configuration, as printed", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: bootstrapFor });
  });

  test("the README's curl request to a primary answering 503 gets the backup's answer, with the backup's model and key, headers, log line and counters", async () => {
    const curl = readmeCurl(README);
    m.primary.behave({ status: 503, json: { error: { message: "overloaded" } } });
    const before = await envoy.stats();
    const res = await request(envoy.port, {
      path: curl.path,
      headers: { ...curl.headers, authorization: "Bearer sk-client-key", "x-request-id": "readme-1" },
      body: curl.body,
    });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup;model=qwen-plus;result=200");
    expect(res.headers["x-ai-fallback-service"]).toBe("backup");
    expect(res.headers["x-ai-fallback-model"]).toBe("qwen-plus");
    // The backup got the client's request with its own model and the gateway's key for it.
    const got = m.backup.requests[m.backup.requests.length - 1];
    expect(got.path).toBe(curl.path);
    expect(got.headers.authorization).toBe("Bearer sk-backup-key");
    expect(JSON.parse(got.body)).toEqual({ ...JSON.parse(curl.body), model: "qwen-plus" });
    // The log line and the counters the README names.
    const line = /fallback: served by backup \(model qwen-plus\); trigger status=503; attempts primary;result=503, backup;model=qwen-plus;result=200 x-request-id=readme-1/;
    expect(await envoy.logsWhen(line)).toMatch(line);
    const grew = growth(before, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.started")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.served_by_backup")).toBe(1);
  });

  test("a streaming request whose primary sends 200 headers and then stalls gets the backup's answer after firstPacketTimeout (3 s)", async () => {
    const curl = readmeCurl(README);
    m.primary.behave({ sse: { stallAfterHeaders: true } });
    const started = Date.now();
    const res = await request(envoy.port, { path: curl.path, headers: curl.headers, body: { ...JSON.parse(curl.body), stream: true } });
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("backup");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    // firstPacketTimeout 3000 ms, then the backup's answer (10 ms tick, margin for a loaded machine).
    expect(took).toBeGreaterThanOrEqual(3000);
    expect(took).toBeLessThan(5000);
  });
});
