// `_rules_` as Higress emits and matches them. The configurations are shaped exactly as Higress's
// controller writes a WasmPlugin (higress-group/higress pkg/ingress/config/ingress_config.go,
// convertIstioWasmPlugin): defaultConfig's fields at the top, each matchRule's `config` plus
// `_match_route_` (from `ingress`), `_match_service_`, `_match_domain_` in `_rules_`, and the
// `_plugin_id_` Higress adds. The expected matches follow Higress's Go SDK
// (higress-group/wasm-go pkg/matcher/rule_matcher.go and its tests).
const { load } = require("../support/wasm");
const { controllerConfig } = require("../support/higress_controller");
const w = load();
const cfg = (obj) => w.configSummary(JSON.stringify(obj));
const which = (obj, route, authority, cluster = "") => w.policyFor(JSON.stringify(obj), route, authority, cluster);

const QWEN = { service: "outbound|443||qwen.dns", model: "qwen-plus", authority: "dashscope.aliyuncs.com",
  path: "/compatible-mode/v1/chat/completions", headers: { authorization: "Bearer sk-qwen" } };
const DEEPSEEK = { service: "outbound|443||deepseek.dns", model: "deepseek-chat", authority: "api.deepseek.com",
  path: "/v1/chat/completions", headers: { authorization: "Bearer sk-deepseek" } };

const emitted = (defaultConfig, matchRules) => controllerConfig({ defaultConfig, matchRules });

describe("Higress-shaped _rules_", () => {
  const plugin = emitted({ backups: [QWEN], firstPacketTimeout: 3000 }, [
    { ingress: ["default/chat-gpt4o"], config: { backups: [DEEPSEEK] } },
    { domain: ["*.example.com", "api.*"], config: { backendErrorsOnly: false } },
    { service: ["llm-openai.internal.dns:443"], config: { backups: [DEEPSEEK, QWEN] } },
    { ingress: ["ai-route-openai.internal"], service: ["openai.dns"], config: { fallbackDeadline: 60000 } },
  ]);

  test("the controller's output is accepted; _plugin_id_ is ignored", () => {
    const c = cfg(plugin);
    expect(c.error).toBeUndefined();
    expect(c.global.backups.map((b) => b.service)).toEqual(["outbound|443||qwen.dns"]);
    expect(c.rules.map((r) => r.kind)).toEqual(["route", "domain", "service", "route+service"]);
    expect(c.rules[0].policy.backups[0].headers).toEqual({ authorization: "Bearer sk-deepseek" });
    expect(c.rules[0].policy.firstPacketTimeout).toBe(3000);
  });

  test("_plugin_id_ inside a rule is ignored too", () => {
    const c = cfg({ backups: [QWEN], _rules_: [{ _match_route_: ["r"], _plugin_id_: "x" }] });
    expect(c.rules.map((r) => r.routes)).toEqual([["r"]]);
  });

  test("a route rule matches the route name exactly", () => {
    expect(which(plugin, "default/chat-gpt4o", "gw.test")).toBe("rule:0");
    expect(which(plugin, "default/chat-gpt4o-mini", "gw.test")).toBe("global");
    expect(which(plugin, "chat-gpt4o", "gw.test")).toBe("global");
  });

  test("a domain rule: leading * is a suffix, trailing * a prefix; the port is ignored", () => {
    expect(which(plugin, "r", "eu.example.com")).toBe("rule:1");
    expect(which(plugin, "r", "eu.example.com:8443")).toBe("rule:1");
    expect(which(plugin, "r", "EU.Example.COM")).toBe("rule:1");
    expect(which(plugin, "r", "example.com")).toBe("global");
    expect(which(plugin, "r", "api.models.test")).toBe("rule:1");
    expect(which(plugin, "r", "my-api.models.test")).toBe("global");
  });

  test("a service rule matches the FQDN (and port) of the Istio-style cluster name", () => {
    expect(which(plugin, "r", "h", "outbound|443||llm-openai.internal.dns")).toBe("rule:2");
    expect(which(plugin, "r", "h", "outbound|80||llm-openai.internal.dns")).toBe("global");
    expect(which(plugin, "r", "h", "outbound|443||openai.internal.dns")).toBe("global");
  });

  test("route and service in one rule: both must hold", () => {
    expect(which(plugin, "ai-route-openai.internal", "h", "outbound|443||openai.dns")).toBe("rule:3");
    expect(which(plugin, "ai-route-openai.internal", "h", "outbound|443||qwen.dns")).toBe("global");
  });

  test("the first matching rule wins", () => {
    // Route rule 0 and domain rule 1 both match: rule 0 comes first.
    expect(which(plugin, "default/chat-gpt4o", "eu.example.com")).toBe("rule:0");
  });

  test("a route rule does not look at its domains; a domain rule not at its services (as the SDK)", () => {
    const c = { backups: [QWEN], _rules_: [
      { _match_route_: ["r1"], _match_domain_: ["a.test"], backups: [DEEPSEEK] },
      { _match_domain_: ["b.test"], _match_service_: ["qwen.dns"], backups: [DEEPSEEK] },
    ] };
    expect(cfg(c).rules.map((r) => r.kind)).toEqual(["route", "domain"]);
    expect(which(c, "r1", "other.test")).toBe("rule:0");
    expect(which(c, "r2", "a.test")).toBe("global");
    expect(which(c, "r2", "b.test", "outbound|443||deepseek.dns")).toBe("rule:1");
  });

  test("_match_route_prefix_ matches route names by prefix, when no other condition is given", () => {
    const c = { backups: [QWEN], _rules_: [{ _match_route_prefix_: ["ai-route-"], backups: [DEEPSEEK] }] };
    expect(cfg(c).rules[0].kind).toBe("route-prefix");
    expect(which(c, "ai-route-qwen.internal", "h")).toBe("rule:0");
    expect(which(c, "default/ai-route-x", "h")).toBe("global");
  });

  test("empty strings in match lists are skipped; a rule left with no condition is refused", () => {
    const c = { backups: [QWEN], _rules_: [{ _match_route_: [""], _match_domain_: ["a.test"] }] };
    expect(cfg(c).rules[0].kind).toBe("domain");
    expect(which(c, "", "a.test")).toBe("rule:0");
    expect(cfg({ backups: [QWEN], _rules_: [{ _match_route_: [""] }] }).error)
      .toMatch(/^_rules_\[0\]: needs a non-empty _match_route_, _match_domain_, _match_service_ or _match_route_prefix_/);
  });

  test("with defaultConfigDisable (only _rules_), an unmatched request gets no policy and passes through", () => {
    const c = emitted({}, [{ ingress: ["default/chat"], config: { backups: [QWEN] } }]);
    expect(cfg(c).global.backups).toEqual([]);
    expect(which(c, "default/other", "h")).toBe("global");
  });

  test("a match list that is not an array of strings is refused, naming the field", () => {
    expect(cfg({ backups: [QWEN], _rules_: [{ _match_route_prefix_: "ai-route-" }] }).error)
      .toMatch(/^_rules_\[0\]\._match_route_prefix_: must be an array of strings/);
    expect(cfg({ backups: [QWEN], _rules_: [{ _match_service_: [443] }] }).error)
      .toMatch(/^_rules_\[0\]\._match_service_\[0\]: must be a string/);
  });
});

describe("service entries", () => {
  const cases = [
    // [entry, cluster, matches]
    ["qwen.dns", "outbound|443||qwen.dns", true],
    ["qwen.dns:443", "outbound|443||qwen.dns", true],
    ["qwen.dns:80", "outbound|443||qwen.dns", false],
    ["llm-qwen.internal.dns", "outbound|443||llm-qwen.internal.dns", true],
    ["reviews.default.svc.cluster.local", "outbound|9080|v1|reviews.default.svc.cluster.local", true],
    ["qwen", "outbound|443||qwen.dns", false],
    ["dns", "outbound|443||qwen.dns", false],
    ["443", "outbound|443||qwen.dns", false],
    // The whole cluster name: plain Envoy clusters, or Higress's written out.
    ["outbound|443||qwen.dns", "outbound|443||qwen.dns", true],
    ["outbound|443||qwen.dns", "outbound|443||deepseek.dns", false],
    ["backup-model", "backup-model", true],
    // An FQDN-form entry never matches a cluster that is not Istio-style (as the SDK).
    ["qwen.dns", "qwen", false],
    ["qwen.dns", "outbound|443|qwen.dns", false],
    ["qwen.dns", "", false],
  ];
  test.each(cases)("%s vs %s -> %s", (entry, cluster, expected) => {
    expect(w.matchesService(entry, cluster)).toBe(expected);
  });
});

describe("host of an authority", () => {
  test.each([
    ["api.example.com", "api.example.com"],
    ["API.Example.com:8080", "api.example.com"],
    ["[::1]", "[::1]"],
    ["[::1]:8080", "[::1]"],
    ["", ""],
    // Only ASCII letters fold: the authority is a byte string, and byte 0xC4 is not a letter to lower.
    ["Ex\u00c4mple.COM:443", "ex\u00c4mple.com"],
  ])("%s -> %s", (authority, host) => {
    expect(w.hostOfAuthority(authority)).toBe(host);
  });
});

describe("a refused backup call", () => {
  test("an unknown cluster (BadArgument) is named, with Higress's likely cause and the fix", () => {
    const text = w.refusedCall("outbound|443||qwen.dns", 2);
    expect(text).toMatch(/^backup outbound\|443\|\|qwen\.dns could not be called: unknown cluster/);
    expect(text).toMatch(/global\.onlyPushRouteCluster \(true by default\)/);
    expect(text).toMatch(/give the service a route, or set global\.onlyPushRouteCluster=false/);
  });

  test("any other refusal says only that the host refused, with the status", () => {
    expect(w.refusedCall("b", 12)).toBe("backup b could not be called (the host refused the call, status 12)");
    expect(w.refusedCall("b", 10)).toBe("backup b could not be called: Envoy refused the call at once (no healthy upstream, or a circuit breaker overflow)");
  });
});
