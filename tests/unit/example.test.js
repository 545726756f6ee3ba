// The plugin configurations shown to users (envoy/envoy.yaml, README.md) are accepted by the filter.
const fs = require("node:fs");
const path = require("node:path");
const { load } = require("./wasm");

const ROOT = path.join(__dirname, "..", "..");

test("the example's plugin configuration is accepted by the filter", () => {
  const yaml = fs.readFileSync(path.join(ROOT, "envoy", "envoy.yaml"), "utf8");
  const block = yaml.split("value: |\n")[1].split("\n").filter((l) => /^\s{28}/.test(l)).join("\n");
  expect(load().configSummary(block).error).toBeUndefined();
});

test("the README's configuration example is accepted by the filter", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const example = readme.split("```json\n")[1].split("```")[0];
  expect(load().configSummary(example).error).toBeUndefined();
});
