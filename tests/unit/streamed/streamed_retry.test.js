// Same-service retry in the streamed mode: the generated route (a matcher cluster specifier on the
// filter state the failed try's filter sets), its retry policy, and each attempt's configuration.
const { load } = require("../support/wasm");
const w = load();
const lib = require("../../../scripts/streamed_config_lib.cjs");

const clusters = { primary: "p", addresses: { p: "127.0.0.1:8001", b1: "127.0.0.1:8002", b2: "127.0.0.1:8003" } };
const plugin = { backups: [{ service: "b1", model: "m1", headers: { authorization: "Bearer 1" } }, { service: "b2", headers: { "x-api-key": "2" } }], triggerStatuses: ["5xx", 429] };
const RETRY = { attempts: 2, backoff: 50, maxRetryAfter: 3000, on: [500, 429, "reset"] };

function attemptConfig(out, cluster) {
  const c = out.clusters.find((x) => x.name === cluster);
  const filters = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters;
  return JSON.parse(filters[filters.length - 2].typed_config.config.configuration.value);
}

describe("streamed mode: same-service retry (the generator)", () => {
  test("each try's cluster is the one the failed try named in the filter state; the first try goes to the primary", () => {
    const out = lib.streamedConfig({ ...plugin, retry: RETRY }, clusters, { wasmPath: "/x.wasm" });
    const spec = out.route.inline_cluster_specifier_plugin.extension;
    expect(spec.name).toBe("envoy.router.cluster_specifier_plugin.matcher");
    const tree = spec.typed_config.cluster_matcher;
    expect(tree.matcher_tree.input.typed_config.key).toBe("wasm.ai_fallback.next");
    const map = tree.matcher_tree.exact_match_map.map;
    expect(Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.action.typed_config.cluster])))
      .toEqual({ p: "p", b1: "b1", b2: "b2", "-": "ai-fallback-chain-over" });
    expect(tree.on_no_match.action.typed_config.cluster).toBe("p");
    // The sink has no endpoint: the router answers itself (no healthy upstream).
    expect(out.clusters.find((c) => c.name === "ai-fallback-chain-over").load_assignment.endpoints).toEqual([]);
    expect(out.local_reply_config.mappers[0].body_format_override.json_format.error.last).toBe("%FILTER_STATE(wasm.ai_fallback.last:PLAIN)%");
  });

  test("the retry policy: the filters' mark alone (no status list), every try counted, backoff and Retry-After", () => {
    const withRetry = { ...plugin, retry: RETRY };
    const policy = lib.streamedConfig(withRetry, clusters, { wasmPath: "/x.wasm" }).route.retry_policy;
    expect(policy.retry_on).toBe("reset,connect-failure,refused-stream,retriable-headers");
    expect(policy.retriable_status_codes).toBeUndefined();
    expect(policy.retriable_headers).toEqual([{ name: "x-ai-fallback-retry", string_match: { exact: lib.retryMark(withRetry) } }]);
    expect(policy.num_retries).toBe(3 * 3 - 1);
    expect(policy.refresh_cluster_on_retry).toBe(true);
    expect(policy.retry_back_off).toEqual({ base_interval: "0.05s" });
    expect(policy.rate_limited_retry_back_off).toEqual({ reset_headers: [{ name: "retry-after", format: "SECONDS" }], max_interval: "3s" });
    // Defaults as the dispatch mode's; a maxRetryAfter under a second: Envoy reads seconds only, no rate-limited back-off.
    const defaults = lib.streamedConfig({ ...plugin, retry: {} }, clusters, {}).route.retry_policy;
    expect(defaults.num_retries).toBe(3 * 2 - 1);
    expect(defaults.retry_back_off).toEqual({ base_interval: "0.1s" });
    expect(lib.streamedConfig({ ...plugin, retry: { maxRetryAfter: 500 } }, clusters, {}).route.retry_policy.rate_limited_retry_back_off).toBeUndefined();
  });

  test("every attempt's configuration carries retry and the chain's clusters, which the module accepts", () => {
    const out = lib.streamedConfig({ ...plugin, retry: RETRY }, clusters, { wasmPath: "/x.wasm" });
    for (const [cluster, attempt] of [["p", 1], ["b1", 2], ["b2", 3]]) {
      const config = attemptConfig(out, cluster);
      expect(config.attempt).toBe(attempt);
      expect(config.retry).toEqual(RETRY);
      expect(config.retryClusters).toEqual(["p", "b1", "b2"]);
      expect(w.upstreamConfigSummary(JSON.stringify(config))).toMatch(/ retry=2 retryClusters=p,b1,b2$/);
    }
    // Without retry nothing changes: the priority groups, no retry in the attempts' configurations.
    const plain = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    expect(plain.route.inline_cluster_specifier_plugin.extension.name).toBe("envoy.router.cluster_specifier_plugin.priority_group");
    expect(attemptConfig(plain, "p").retry).toBeUndefined();
    expect(plain.clusters.map((c) => c.name)).toEqual(["p", "b1", "b2", "p-other-methods"]);
  });

  test("the module refuses retry without retryClusters, or a list that is not one name per attempt", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 2, retry: {} }))).toMatch(/^error: retry: needs retryClusters/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 2, retry: {}, retryClusters: ["p"] }))).toMatch(/^error: retryClusters: must be an array of 2 cluster names/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 2, retry: { on: [] }, retryClusters: ["p", "b"] }))).toMatch(/^error: retry\.on: must be a non-empty array/);
  });

  test("retry is refused with hedge, cooldown or the lean mode, naming the field", () => {
    expect(() => lib.streamedConfig({ ...plugin, retry: {}, firstPacketTimeout: 500, hedge: { maxInFlight: 2 } }, clusters, {})).toThrow(/^retry: not together with hedge/);
    expect(() => lib.streamedConfig({ ...plugin, retry: {}, cooldown: {} }, clusters, {})).toThrow(/^retry: not together with cooldown/);
    expect(() => lib.streamedConfig({ ...plugin, retry: {} }, clusters, { primaryFilter: false })).toThrow(/^retry: needs the primary's filter/);
    expect(() => lib.streamedConfig({ ...plugin, retry: 3 }, clusters, {})).toThrow(/^retry: must be an object/);
  });
});
