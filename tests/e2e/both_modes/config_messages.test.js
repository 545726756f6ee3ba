// Configuration refusals as an operator meets them: in a started Envoy's log (the module's line is the
// first critical one and says what to fix), and from the streamed generator, which runs the module's own
// check and so refuses the same inputs with the same line (docs/troubleshooting.md quotes them).
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startEnvoy, WASM_PATH } = require("../support/envoy");
const { CONFIG_MISTAKES, STRUCT_MESSAGE } = require("../../shared/config_mistakes");

const GENERATOR = path.join(__dirname, "..", "..", "..", "scripts", "streamed-config.mjs");
const CLUSTERS = { primary: "primary", addresses: { primary: "127.0.0.1:8001", "backup-a": "127.0.0.1:8002" } };

/** The module's line in Envoy's log: its text after "wasm log <plugin> <root_id>: ", and its level. */
function moduleLine(logs) {
  const m = /\[(\w+)\]\[wasm\] \[[^\]]*\] wasm log \S+ \S+: (invalid configuration.*)$/m.exec(logs);
  return m ? { level: m[1], text: m[2] } : null;
}

/** Runs the generator on `plugin`; { status, stdout, stderr }. */
function generate(plugin, extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-generator-"));
  try {
    fs.writeFileSync(path.join(dir, "plugin.json"), JSON.stringify(plugin));
    fs.writeFileSync(path.join(dir, "clusters.json"), JSON.stringify(CLUSTERS));
    return spawnSync(process.execPath, [GENERATOR, path.join(dir, "plugin.json"), path.join(dir, "clusters.json"),
      "--wasm", WASM_PATH, "--check-wasm", WASM_PATH, ...extraArgs.map((a) => a.replace("$DIR", dir))], { encoding: "utf8" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("a configuration mistake gets one line that says what to fix, the same from Envoy and from the generator", () => {
  test.each(CONFIG_MISTAKES.map((m) => [m.name, m]))("%s", async (_, { plugin, message }) => {
    const envoy = await startEnvoy({ pluginConfig: plugin, clusters: { primary: 1, "backup-a": 1 }, expectFailure: true });
    expect(envoy.exitCode).not.toBe(0);
    const line = moduleLine(envoy.logs());
    expect(line).toEqual({ level: "critical", text: `invalid configuration: ${message}` });
    // The module's line is the first of the critical lines Envoy ends with.
    expect(envoy.logs().split("\n").find((l) => l.includes("[critical]"))).toContain(line.text);
    const generated = generate(plugin);
    expect(generated.status).toBe(1);
    expect(generated.stdout).toBe("");
    expect(generated.stderr.trim()).toBe(line.text);
  });
});

test("a configuration given as a google.protobuf.Struct is told to be a StringValue", async () => {
  const envoy = await startEnvoy({
    clusters: { primary: 1, "backup-a": 1 },
    expectFailure: true,
    pluginOptions: { configuration: { "@type": "type.googleapis.com/google.protobuf.Struct", value: { backups: [{ service: "backup-a" }] } } },
  });
  expect(envoy.exitCode).not.toBe(0);
  expect(moduleLine(envoy.logs())).toEqual({ level: "critical", text: `invalid configuration: ${STRUCT_MESSAGE}` });
});

test("the generator writes the file named by --out (nothing on stdout), with --admin-port and --listen-address, and it checks with the module", () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-out-")), "envoy.json");
  try {
    const run = generate({ backups: [{ service: "backup-a", timeout: 30000 }] }, ["--out", out, "--admin-port", "19901", "--listen-address", "127.0.0.1", "--port", "18080"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("");
    const bootstrap = JSON.parse(fs.readFileSync(out, "utf8"));
    expect(bootstrap.admin.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 19901 });
    expect(bootstrap.static_resources.listeners[0].address.socket_address).toEqual({ address: "127.0.0.1", port_value: 18080 });
    // What only the module refuses (the generator's own rules allow it) is refused with the module's line.
    const bad = generate({ backups: [{ service: "backup-a", path: "v1/chat" }] });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe('invalid configuration: backups[0].path: must start with "/", got "v1/chat"');
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
});
