// The shipped example configuration stays valid for Envoy 1.40, with the filter checking its plugin
// configuration (Envoy's validate mode loads the module and configures it).
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { ENVOY_BIN, WASM_PATH } = require("../support/envoy");

const EXAMPLE = path.join(__dirname, "..", "..", "..", "envoy", "envoy.yaml");

function validate(yaml) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-example-")), "envoy.yaml");
  fs.writeFileSync(file, yaml.replaceAll("/etc/envoy/ai_fallback.wasm", WASM_PATH));
  try {
    const out = execFileSync(ENVOY_BIN, ["--mode", "validate", "-c", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { ok: true, out };
  } catch (err) {
    return { ok: false, out: `${err.stdout}${err.stderr}` };
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

test("envoy/envoy.yaml passes Envoy's own validation, which runs the filter's configuration check", () => {
  const yaml = fs.readFileSync(EXAMPLE, "utf8");
  const good = validate(yaml);
  expect(good.out).toMatch(/configuration .* OK/);
  expect(good.ok).toBe(true);
  // The same file with a wrong type in the plugin configuration is refused, naming the field.
  const broken = yaml.replace('"firstPacketTimeout": 3000', '"firstPacketTimeout": "3s"');
  expect(broken).not.toBe(yaml);
  const bad = validate(broken);
  expect(bad.ok).toBe(false);
  expect(bad.out).toMatch(/invalid configuration: firstPacketTimeout: /);
  // ... and so is a wrong guard field on the primary's cluster.
  const badGuard = yaml.replace(`'{"guard": {}}'`, `'{"guard": {"holdFirstPacket": 1}}'`);
  expect(badGuard).not.toBe(yaml);
  expect(validate(badGuard).out).toMatch(/invalid configuration \(ai-fallback-upstream\): guard\.holdFirstPacket: must be true or false/);
});

test("the streamed example (envoy/streamed/) generates a bootstrap Envoy accepts, and the upstream role checks each backup entry", () => {
  const dir = path.join(__dirname, "..", "..", "..", "envoy", "streamed");
  const generate = (pluginFile) => execFileSync(process.execPath, [
    path.join(__dirname, "..", "..", "..", "scripts", "streamed-config.mjs"), pluginFile, path.join(dir, "clusters.json"), "--wasm", WASM_PATH,
  ], { encoding: "utf8" });
  const good = validate(generate(path.join(dir, "plugin.json")));
  expect(good.out).toMatch(/configuration .* OK/);
  expect(good.ok).toBe(true);
  // A bad backup path is refused by the generator, which runs the module's own check, with the module's message ...
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-streamed-"));
  try {
    const broken = JSON.parse(fs.readFileSync(path.join(dir, "plugin.json"), "utf8"));
    broken.backups[0].path = "v1/chat/completions";
    broken.backups[1].path = "/v1/chat/completions";
    fs.writeFileSync(path.join(tmp, "plugin.json"), JSON.stringify(broken));
    expect(() => generate(path.join(tmp, "plugin.json"))).toThrow(/invalid configuration: backups\[0\]\.path: must start with "\/"/);
    // ... and a bootstrap edited after generation is refused by the module's upstream role in Envoy, naming the field.
    const edited = JSON.parse(generate(path.join(dir, "plugin.json")));
    const wasm = edited.static_resources.clusters[1].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
      .http_filters[0].typed_config.config;
    const entry = JSON.parse(wasm.configuration.value);
    entry.backup.path = "v1/chat/completions";
    wasm.configuration.value = JSON.stringify(entry);
    const bad = validate(JSON.stringify(edited));
    expect(bad.ok).toBe(false);
    expect(bad.out).toMatch(/invalid configuration \(ai-fallback-upstream\): backup\.path: must start with "\/"/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
