// The plugin configurations shown to users (envoy/envoy.yaml, README.md, docs/) are accepted by the filter.
const fs = require("node:fs");
const path = require("node:path");
const yaml = require("js-yaml");
const { load } = require("../support/wasm");
const { fencedBlocks, readmeEnvoyConfig } = require("../support/doc_blocks");

const ROOT = path.join(__dirname, "..", "..", "..");

test("the example's plugin configuration is accepted by the filter", () => {
  const yaml = fs.readFileSync(path.join(ROOT, "envoy", "envoy.yaml"), "utf8");
  const block = yaml.split("value: |\n")[1].split("\n").filter((l) => /^\s{28}/.test(l)).join("\n");
  expect(load().configSummary(block).error).toBeUndefined();
});

test("the plugin configuration in the README's Envoy configuration is accepted by the filter", () => {
  const envoy = yaml.safeLoad(readmeEnvoyConfig(fs.readFileSync(path.join(ROOT, "README.md"), "utf8")));
  const wasm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0];
  expect(load().configSummary(wasm.typed_config.config.configuration.value).error).toBeUndefined();
});

test("docs/configuration.md's example is accepted by the filter", () => {
  const [example] = fencedBlocks(fs.readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8"), "json");
  expect(load().configSummary(example).error).toBeUndefined();
});

test("docs/istio.md's WasmPlugin: its pluginConfig (handed to the filter as JSON) is accepted, with a key, host and path for every backup", () => {
  const [plugin] = fencedBlocks(fs.readFileSync(path.join(ROOT, "docs", "istio.md"), "utf8"), "yaml")
    .map((b) => yaml.safeLoad(b)).filter((p) => p.kind === "WasmPlugin");
  expect(plugin.apiVersion).toBe("extensions.istio.io/v1alpha1");
  // Any root_id but the module's two other roles runs the dispatch filter.
  expect(["ai-fallback-upstream", "ai-fallback-streamed"]).not.toContain(plugin.spec.pluginName);
  const summary = load().configSummary(JSON.stringify(plugin.spec.pluginConfig));
  expect(summary.error).toBeUndefined();
  for (const b of summary.global.backups) {
    expect(b.authority).toEqual(expect.any(String));
    expect(b.path).toMatch(/^\//);
    expect(b.replacesCredentials).toBe(true);
  }
});

test("the README's route timeout follows its own rule: at least firstPacketTimeout + fallbackDeadline", () => {
  const envoy = yaml.safeLoad(readmeEnvoyConfig(fs.readFileSync(path.join(ROOT, "README.md"), "utf8")));
  const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const plugin = JSON.parse(hcm.http_filters[0].typed_config.config.configuration.value);
  const timeout = hcm.route_config.virtual_hosts[0].routes[0].route.timeout;
  expect(timeout).toMatch(/^\d+s$/);
  expect(Number(timeout.slice(0, -1)) * 1000).toBeGreaterThanOrEqual(plugin.firstPacketTimeout + plugin.fallbackDeadline);
});
