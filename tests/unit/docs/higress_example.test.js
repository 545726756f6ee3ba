// docs/higress.md's WasmPlugin, turned into the configuration Higress's controller writes from it,
// is accepted by the filter and does what the page says of it.
const fs = require("node:fs");
const path = require("node:path");
const yaml = require("js-yaml");
const { load } = require("../support/wasm");
const { controllerConfig } = require("../support/higress_controller");

const w = load();
const higress = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "higress.md"), "utf8");
const plugin = yaml.safeLoad(higress.split("```yaml\n").map((b) => b.split("```")[0]).find((b) => b.includes("kind: WasmPlugin")));
const config = controllerConfig(plugin.spec);
const json = JSON.stringify(config);

describe("docs/higress.md's WasmPlugin", () => {
  test("is accepted as the controller writes it", () => {
    expect(w.configSummary(json).error).toBeUndefined();
  });

  test("sits in the default phase after the quota, rate-limit and security plugins and before ai-proxy", () => {
    expect(plugin.spec.phase).toBe("UNSPECIFIED_PHASE");
    // The console's defaults: ai-security-guard 300 (the lowest of those), ai-proxy 100.
    expect(plugin.spec.priority).toBeLessThan(300);
    expect(plugin.spec.priority).toBeGreaterThan(100);
  });

  test("every backup carries its own authority, path and credential", () => {
    const c = w.configSummary(json);
    const backups = c.global.backups.concat(...c.rules.map((r) => r.policy.backups));
    expect(backups.length).toBeGreaterThan(2);
    for (const b of backups) {
      expect(b.authority).toEqual(expect.any(String));
      expect(b.path).toMatch(/^\//);
      expect(b.headers.authorization).toMatch(/^Bearer /);
      expect(b.replacesCredentials).toBe(true);
    }
  });

  test("its fallbackDeadline ends a chain under Higress's 180 s stream idle timeout", () => {
    const c = w.configSummary(json);
    for (const p of [c.global, ...c.rules.map((r) => r.policy)]) expect(p.fallbackDeadline).toBeLessThan(180000);
  });

  test("its rules match the AI route, the domain and the service they name", () => {
    expect(w.policyFor(json, "ai-route-gpt-4o.internal", "gw.example.com")).toBe("rule:0");
    expect(w.policyFor(json, "default/other", "eu.chat.example.com")).toBe("rule:1");
    expect(w.policyFor(json, "default/other", "gw.example.com", "outbound|443||llm-openai.internal.dns")).toBe("rule:2");
    expect(w.policyFor(json, "default/other", "gw.example.com", "outbound|443||llm-qwen.internal.dns")).toBe("global");
  });
});
