// The streamed mode's pure parts: the per-attempt header edits of the upstream role, and the
// generator of the Envoy route and clusters.
const { load } = require("./wasm");
const w = load();

const lib = require("../../scripts/streamed_config_lib.cjs");

const CLIENT = [
  [":method", "POST"], [":path", "/v1/chat/completions?key=secret&x=1"], [":authority", "gw.example.com"],
  ["content-type", "application/json"], ["content-length", "42"], ["authorization", "Bearer client"],
  ["cookie", "s=1"], ["x-api-key", "k"], ["x-custom", "c"],
];
const lines = (text) => (text === "" ? [] : text.split("\n"));

describe("streamed mode: per-attempt header edits of a backup's upstream filter", () => {
  test("a backup with its own credential removes the client's, sets path, authority, headers, and drops content-length for a model override", () => {
    const entry = JSON.stringify({ service: "b", model: "m2", path: "/v2", authority: "b.example", headers: { authorization: "Bearer mine" } });
    expect(lines(w.upstreamEdits(entry, CLIENT))).toEqual([
      "-cookie", "-x-api-key", "-content-length", ":path=/v2", ":authority=b.example", "authorization=Bearer mine",
    ]);
  });

  test("without its own path, a backup with its own credential strips credential query parameters from the client's path", () => {
    const entry = JSON.stringify({ service: "b", headers: { "x-api-key": "mine" } });
    expect(lines(w.upstreamEdits(entry, CLIENT))).toEqual([
      "-authorization", "-cookie", ":path=/v1/chat/completions?x=1", "x-api-key=mine",
    ]);
  });

  test("a pass-through backup without settings changes nothing", () => {
    expect(lines(w.upstreamEdits(JSON.stringify({ service: "b" }), CLIENT))).toEqual([]);
  });

  test("dropHeaders are removed; the entry is validated as an element of backups", () => {
    expect(lines(w.upstreamEdits(JSON.stringify({ service: "b", dropHeaders: ["X-Custom"] }), CLIENT))).toEqual(["-x-custom"]);
    expect(w.upstreamEdits(JSON.stringify({ service: "b", path: "v2" }), CLIENT)).toMatch(/^error: backup\.path: must start with "\/"/);
    expect(w.upstreamEdits(JSON.stringify({ model: "m" }), CLIENT)).toMatch(/^error: backup\.service: required/);
    expect(w.upstreamEdits("[1]", CLIENT)).toMatch(/^error: backup: must be a JSON object/);
  });
});

describe("streamed mode: the generated Envoy configuration", () => {
  const clusters = { primary: "p", addresses: { p: "127.0.0.1:8001", b1: "127.0.0.1:8002", b2: "https://api.example.com" } };
  const plugin = { backups: [{ service: "b1", model: "m1", headers: { authorization: "Bearer 1" } }, { service: "b2", headers: { "x-api-key": "2" } }], triggerStatuses: ["5xx", 429] };

  test("one priority group per attempt, retries = backups, retriable statuses from triggerStatuses", () => {
    const { route } = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const groups = route.inline_cluster_specifier_plugin.extension.typed_config.priority_groups;
    expect(groups.map((g) => g.clusters[0].cluster_name)).toEqual(["p", "b1", "b2"]);
    expect(route.retry_policy.num_retries).toBe(2);
    expect(route.retry_policy.refresh_cluster_on_retry).toBe(true);
    expect(route.retry_policy.retry_on).toBe("reset,connect-failure,refused-stream,retriable-status-codes");
    expect(route.retry_policy.retriable_status_codes).toEqual([429, ...Array.from({ length: 100 }, (_, i) => 500 + i)]);
    expect(lib.retriableStatusCodes(undefined)).toHaveLength(200);
  });

  test("backup clusters carry the upstream role with their own entry, then the codec; the primary has no filter", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(opts(out.clusters[0]).http_filters).toBeUndefined();
    const filters = opts(out.clusters[1]).http_filters;
    expect(filters.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]);
    expect(filters[0].typed_config.config.root_id).toBe("ai-fallback-upstream");
    expect(JSON.parse(filters[0].typed_config.config.configuration.value)).toEqual(plugin.backups[0]);
    expect(out.clusters.every((c) => c.circuit_breakers.thresholds[0].max_retries === lib.DEFAULT_MAX_RETRIES)).toBe(true);
    expect(out.clusters[2].transport_socket.typed_config.sni).toBe("api.example.com");
    expect(out.clusters[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(443);
    expect(out.request_body_buffer_limit).toBe(lib.DEFAULT_REQUEST_BUFFER_BYTES);
  });

  test("orders whose header edits would leak into a later attempt are refused, naming the field", () => {
    const leak = { backups: [{ service: "b1", headers: { authorization: "Bearer 1" } }, { service: "b2" }] };
    expect(() => lib.streamedConfig(leak, clusters)).toThrow(/^backups\[1\]\.headers: streamed mode: must set its own credential/);
    const path = { backups: [{ service: "b1", path: "/v2" }, { service: "b2" }] };
    expect(() => lib.streamedConfig(path, clusters)).toThrow(/^backups\[1\]\.path: streamed mode: required/);
  });

  test("bad input names the field", () => {
    expect(() => lib.streamedConfig({ backups: [{ service: "b1" }] }, { primary: "p", addresses: { p: "127.0.0.1:1" } })).toThrow(/^clusters\.addresses\.b1: required/);
    expect(() => lib.streamedConfig({ backups: [{ service: "p" }] }, clusters)).toThrow(/^backups: streamed mode: every attempt needs its own cluster/);
    expect(() => lib.streamedConfig({ ...plugin, triggerStatuses: [200] }, clusters)).toThrow(/^triggerStatuses\[0\]/);
    expect(() => lib.streamedConfig(plugin, { primary: "p", addresses: { ...clusters.addresses, b1: "nohost" } })).toThrow(/^clusters\.addresses\.b1: must be/);
    expect(() => lib.streamedConfig({ backups: [{ service: "b1", bogus: 1 }] }, clusters)).toThrow(/^backups\[0\]\.bogus: unknown field/);
  });
});

describe("streamed mode: firstPacketTimeout in the generated configuration", () => {
  const clusters = { primary: "p", addresses: { p: "127.0.0.1:8001", b1: "127.0.0.1:8002" } };
  const plugin = { backups: [{ service: "b1" }], firstPacketTimeout: 3000 };
  const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];

  test("the primary gets the guard (holding only: the router retries headers-only errors itself), allowed to hold headers", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const filters = opts(out.clusters[0]).http_filters;
    expect(filters.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]);
    const config = filters[0].typed_config.config;
    expect(config.root_id).toBe("ai-fallback-upstream");
    expect(JSON.parse(config.configuration.value)).toEqual({ guard: { replyToHeadersOnlyErrors: false } });
    expect(config.allow_on_headers_stop_iteration).toBe(true);
  });

  test("before the router, the streamed role gets the whole plugin configuration; the route keeps no per-try timeout of its own", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    expect(out.http_filters).toHaveLength(1);
    const config = out.http_filters[0].typed_config.config;
    expect(config.root_id).toBe(lib.STREAMED_ROOT_ID);
    expect(JSON.parse(config.configuration.value)).toEqual(plugin);
    expect(config.allow_on_headers_stop_iteration).toBe(true);
    expect(out.route.retry_policy.per_try_timeout).toBeUndefined();
    const boot = lib.streamedBootstrap(plugin, clusters, { wasmPath: "/x.wasm" });
    const chain = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
    expect(chain.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.router"]);
  });

  test("keepAliveIsNotFirstPacket is passed on to the guard", () => {
    const out = lib.streamedConfig({ ...plugin, keepAliveIsNotFirstPacket: true }, clusters, { wasmPath: "/x.wasm" });
    expect(JSON.parse(opts(out.clusters[0]).http_filters[0].typed_config.config.configuration.value)).toEqual(
      { guard: { replyToHeadersOnlyErrors: false, keepAliveIsNotFirstPacket: true } });
  });

  test("without firstPacketTimeout (or 0) neither is added; a bad value is refused, naming the field", () => {
    for (const p of [{ backups: plugin.backups }, { ...plugin, firstPacketTimeout: 0 }]) {
      const out = lib.streamedConfig(p, clusters, { wasmPath: "/x.wasm" });
      expect(opts(out.clusters[0]).http_filters).toBeUndefined();
      expect(out.http_filters).toEqual([]);
    }
    expect(() => lib.streamedConfig({ ...plugin, firstPacketTimeout: "3s" }, clusters)).toThrow(/^firstPacketTimeout: must be an integer from 0/);
  });
});

describe("streamed mode: the per-try timeout a request gets from the ai-fallback-streamed role", () => {
  test("firstPacketTimeout for a streaming request, none for any other, none without firstPacketTimeout", () => {
    const conf = JSON.stringify({ backups: [{ service: "b" }], firstPacketTimeout: 2500 });
    expect(w.perTryTimeout(conf, true)).toBe(2500);
    expect(w.perTryTimeout(conf, false)).toBe(0);
    expect(w.perTryTimeout(JSON.stringify({ backups: [{ service: "b" }] }), true)).toBe(0);
  });
});
