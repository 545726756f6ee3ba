// The shipped example configuration stays valid for Envoy 1.40, and its plugin configuration for the filter.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { ENVOY_BIN, WASM_PATH } = require("./envoy");
const { load } = require("../unit/wasm");

const EXAMPLE = path.join(__dirname, "..", "..", "envoy", "envoy.yaml");

test("envoy/envoy.yaml passes Envoy's own validation", () => {
  const yaml = fs.readFileSync(EXAMPLE, "utf8").replace("/etc/envoy/ai_fallback.wasm", WASM_PATH);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-example-")), "envoy.yaml");
  fs.writeFileSync(file, yaml);
  const out = execFileSync(ENVOY_BIN, ["--mode", "validate", "-c", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  expect(out).toMatch(/configuration .* OK/);
});

test("the example's plugin configuration is accepted by the filter", () => {
  const yaml = fs.readFileSync(EXAMPLE, "utf8");
  const block = yaml.split("value: |\n")[1].split("\n").filter((l) => /^\s{28}/.test(l)).join("\n");
  expect(load().configSummary(block).error).toBeUndefined();
});

test("the README's configuration example is accepted by the filter", () => {
  const readme = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
  const example = readme.split("```json\n")[1].split("```")[0];
  expect(load().configSummary(example).error).toBeUndefined();
});
