// The streamed-mode generator with `cooldown` (docs/cooldown.md): routes that start the chain past
// cooling services, matched on filter state only the module sets; the primary's cluster named for
// every role; the upstream filters' configuration parsed by the module.
const { load } = require("../support/wasm");
const w = load();
const lib = require("../../../scripts/streamed_config_lib.cjs");

const PLUGIN = { backups: [{ service: "a", model: "ma" }, { service: "b" }] };
const CLUSTERS = { primary: "p", addresses: { p: "127.0.0.1:1", a: "127.0.0.1:2", b: "127.0.0.1:3" } };
const routesOf = (bootstrap) => bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
const groupsOf = (route) => route.route.inline_cluster_specifier_plugin?.extension.typed_config.priority_groups.map((g) => g.clusters[0].cluster_name);

describe("streamed generator: cooldown", () => {
  test("without cooldown nothing changes: no start routes, no downstream role without firstPacketTimeout", () => {
    const out = lib.streamedConfig(PLUGIN, CLUSTERS, {});
    expect(out.cooldown_routes).toEqual([]);
    expect(out.http_filters).toEqual([]);
    expect(routesOf(lib.streamedBootstrap(PLUGIN, CLUSTERS))).toHaveLength(2);
  });

  test("with cooldown: one route per later start, before the retrying route, matched on the module's filter state and the methods", () => {
    const routes = routesOf(lib.streamedBootstrap({ ...PLUGIN, cooldown: { failures: 2 } }, CLUSTERS));
    expect(routes).toHaveLength(4);
    expect(routes.map((r) => r.match.filter_state?.[0].string_match.exact)).toEqual(["2", "3", undefined, undefined]);
    expect(routes[0].match.filter_state[0].key).toBe("wasm.ai_fallback.start");
    expect(routes[0].match.headers).toEqual(routes[2].match.headers);
    expect(groupsOf(routes[0])).toEqual(["a", "b"]);
    expect(routes[0].route.retry_policy.num_retries).toBe(1);
    expect(groupsOf(routes[1])).toEqual(["b"]);
    expect(routes[1].route.retry_policy.num_retries).toBe(0);
    expect(groupsOf(routes[2])).toEqual(["p", "a", "b"]);
    expect(routes[0].request_body_buffer_limit).toBe(routes[2].request_body_buffer_limit);
  });

  test("the downstream role runs (even without firstPacketTimeout) and every role gets the cooldown with the primary's cluster", () => {
    const out = lib.streamedConfig({ ...PLUGIN, cooldown: { duration: 5000 } }, CLUSTERS, {});
    const downstream = JSON.parse(out.http_filters[0].typed_config.config.configuration.value);
    expect(downstream.cooldown).toEqual({ duration: 5000, primary: "p" });
    expect(w.cooldownSummary(JSON.stringify(downstream))).toBe("3 10000 5000 60000 p");
    for (const cluster of out.clusters.filter((c) => c.name !== "p-other-methods")) {
      const filters = cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters;
      const config = filters[0].typed_config.config.configuration.value;
      expect(JSON.parse(config).cooldown).toEqual({ duration: 5000, primary: "p" });
      expect(w.upstreamConfigSummary(config)).not.toMatch(/^error/);
    }
  });

  test("what the generator refuses: lean mode, a cooldown.primary other than the primary, a cooldown that is not an object", () => {
    expect(() => lib.streamedConfig({ ...PLUGIN, cooldown: {} }, CLUSTERS, { primaryFilter: false })).toThrow(/^cooldown: needs the primary's filter/);
    expect(() => lib.streamedConfig({ ...PLUGIN, cooldown: { primary: "x" } }, CLUSTERS, {})).toThrow(/^cooldown\.primary: set by the generator/);
    expect(() => lib.streamedConfig({ ...PLUGIN, cooldown: 5 }, CLUSTERS, {})).toThrow(/^cooldown: must be an object/);
  });

  test("cooldown and hedge are refused together, naming both and the way out", () => {
    const both = { ...PLUGIN, firstPacketTimeout: 2000, hedge: { maxInFlight: 10 }, cooldown: {} };
    expect(() => lib.streamedConfig(both, CLUSTERS, {})).toThrow(/^cooldown: not together with hedge in the streamed mode .*remove hedge or cooldown, or use the dispatch mode/);
    expect(() => lib.streamedConfig({ ...both, cooldown: undefined }, CLUSTERS, {})).not.toThrow();
  });

  test("the module refuses a primary's upstream configuration with cooldown but no primary named", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 2, cooldown: {} }))).toMatch(/cooldown\.primary: required on attempt 1/);
  });
});
