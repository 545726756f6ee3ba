// The streamed mode's pure parts: the per-attempt header edits of the upstream role, and the
// generator of the Envoy route and clusters.
const { load } = require("../support/wasm");
const w = load();

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const lib = require("../../../scripts/streamed_config_lib.cjs");

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

  test("credentialHeaders (from the plugin configuration) are removed for a backup with its own credential, and count as one", () => {
    const client = [...CLIENT, ["x-tenant-key", "client-secret"]];
    const attempt = (backup, extra = {}) => JSON.stringify({ attempt: 2, attempts: 2, ...extra, backup });
    expect(lines(w.attemptEdits(attempt({ service: "b", headers: { "x-goog-api-key": "mine" } }, { credentialHeaders: ["X-Tenant-Key"] }), client)))
      .toEqual(["-authorization", "-cookie", "-x-api-key", "-x-tenant-key", ":path=/v1/chat/completions?x=1", "x-goog-api-key=mine"]);
    expect(lines(w.attemptEdits(attempt({ service: "b", headers: { "x-tenant-key": "mine" } }, { credentialHeaders: ["x-tenant-key"] }), client)))
      .toEqual(["-authorization", "-cookie", "-x-api-key", ":path=/v1/chat/completions?x=1", "x-tenant-key=mine"]);
    // Not listed: a header like any other.
    expect(lines(w.attemptEdits(attempt({ service: "b", headers: { "x-tenant-key": "mine" } }), client))).toEqual(["x-tenant-key=mine"]);
  });

  test("the headers earlier backups set are removed unless this backup sets them itself, present or not", () => {
    const config = { attempt: 4, attempts: 4, earlierBackupHeaders: ["ocp-apim-subscription-key", "X-Other-Key", "x-mine"], backup: { service: "b3", headers: { "x-mine": "3" } } };
    expect(lines(w.attemptEdits(JSON.stringify(config), CLIENT))).toEqual(["-ocp-apim-subscription-key", "-x-other-key", "x-mine=3"]);
    const passThrough = { ...config, backup: { service: "b3" } };
    expect(lines(w.attemptEdits(JSON.stringify(passThrough), CLIENT))).toEqual(["-ocp-apim-subscription-key", "-x-other-key", "-x-mine"]);
    // A name both earlier and a credential this backup replaces is removed once.
    const overlap = { attempt: 3, attempts: 3, earlierBackupHeaders: ["authorization"], backup: { service: "b2", headers: { "x-api-key": "2" } } };
    expect(lines(w.attemptEdits(JSON.stringify(overlap), CLIENT))).toEqual(["-authorization", "-cookie", ":path=/v1/chat/completions?x=1", "x-api-key=2"]);
  });

  test("credentialHeaders and earlierBackupHeaders are checked as header names, naming the field", () => {
    const bad = (extra) => w.attemptEdits(JSON.stringify({ attempt: 2, backup: { service: "b" }, ...extra }), CLIENT);
    expect(bad({ credentialHeaders: [":path"] })).toMatch(/^error: credentialHeaders\[0\]: must name an ordinary header/);
    expect(bad({ earlierBackupHeaders: "x" })).toMatch(/^error: earlierBackupHeaders: must be an array of header names/);
    expect(bad({ earlierBackupHeaders: ["ok", "host"] })).toMatch(/^error: earlierBackupHeaders\[1\]: must name an ordinary header/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, earlierBackupHeaders: ["x"] }))).toMatch(/^error: earlierBackupHeaders: only on a backup's attempt/);
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

  test("a backup whose edits do not depend on the client's headers does not read them (one host call less); content-length goes with a model override regardless", () => {
    expect(w.upstreamReadsClientHeaders(JSON.stringify({ service: "b", model: "m", path: "/v2", authority: "b.example", headers: { "x-org": "1" } }))).toBe(false);
    expect(w.upstreamReadsClientHeaders(JSON.stringify({ service: "b", headers: { authorization: "Bearer mine" } }))).toBe(true);
    expect(w.upstreamReadsClientHeaders(JSON.stringify({ service: "b", dropHeaders: ["x-user"] }))).toBe(true);
    // Without reading: the same edits as with the client's headers, content-length removed blindly.
    expect(lines(w.upstreamEdits(JSON.stringify({ service: "b", model: "m", path: "/v2" }), [[":path", "/v1"]]))).toEqual(["-content-length", ":path=/v2"]);
});

describe("streamed mode: the upstream role's configuration (one per attempt)", () => {
  // The default error-meaning lists (neverTrigger, alwaysTrigger), as the summary ends with them.
  const LISTS = " never=content_policy_violation,moderation_blocked,content_filter,ResponsibleAIPolicyViolation" +
    " always=context_length_exceeded,string_above_max_length,request_too_large";

  test("an attempt's number, the chain's length, trigger statuses and, on a backup, its entry", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 3, triggerStatuses: ["5xx"] })))
      .toBe("attempt=1 attempts=3 hideTopology=false 404=false 503=true backup=none" + LISTS);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2, attempts: 3, hideTopology: true, backup: { service: "b1" } })))
      .toBe("attempt=2 attempts=3 hideTopology=true 404=true 503=true backup=b1" + LISTS);
  });

  test("the primary's error-meaning lists, read and refused as the plugin's", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, attempts: 2, neverTrigger: ["x"], alwaysTrigger: [] })))
      .toMatch(/ never=x always=$/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, alwaysTrigger: ["content_filter"] })))
      .toMatch(/^error: alwaysTrigger\[0\]: "content_filter" is also in neverTrigger \(by default\)/);
  });

  test("lean mode: a backup is told that the primary's cluster has no filter; the primary cannot be told so", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2, attempts: 2, primaryFilter: false, backup: { service: "b1" } })))
      .toBe("attempt=2 attempts=2 hideTopology=false 404=true 503=true backup=b1 primaryFilter=false" + LISTS);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2, primaryFilter: true, backup: { service: "b1" } }))).toMatch(/ backup=b1 never=/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, primaryFilter: false }))).toMatch(/^error: primaryFilter: only on a backup's attempt/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2, primaryFilter: "no", backup: { service: "b1" } }))).toMatch(/^error: primaryFilter: must be true or false/);
  });

  test("bad configurations are refused, naming the field", () => {
    expect(w.upstreamConfigSummary(JSON.stringify({ attempts: 2 }))).toMatch(/^error: attempt: required/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 0 }))).toMatch(/^error: attempt: must be an integer from 1/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 3, attempts: 2, backup: { service: "b" } }))).toMatch(/^error: attempts: must be an integer from 3/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2 }))).toMatch(/^error: backup: required/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, backup: { service: "b" } }))).toMatch(/^error: backup: not allowed/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 2, backup: { service: "b", path: "v1" } }))).toMatch(/^error: backup\.path: must start with "\/"/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, triggerStatuses: [200] }))).toMatch(/^error: triggerStatuses\[0\]/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, bogus: 1 }))).toMatch(/^error: bogus: unknown field/);
    // The retry mark's value: the route matches it exactly, so it must be a header value (1..128 visible ASCII).
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, retryMark: "" }))).toMatch(/^error: retryMark: must be 1 to 128 characters, got 0 \(the value the generated route retries on/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, retryMark: "a b" }))).toMatch(/^error: retryMark: must be visible ASCII characters .* at 1 /);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, retryMark: "x".repeat(129) }))).toMatch(/^error: retryMark: must be 1 to 128 characters, got 129/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, retryMark: 7 }))).toMatch(/^error: retryMark: must be a string, got 7/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, retryMark: "0123abcdef" }))).not.toMatch(/^error/);
    expect(w.upstreamConfigSummary(JSON.stringify({ attempt: 1, methods: ["get"] }))).toMatch(/^error: methods\[0\]: must be an upper-case HTTP method/);
    expect(w.upstreamConfigSummary("[1]")).toMatch(/^error: configuration: must be a JSON object/);
    expect(w.upstreamConfigSummary("")).toMatch(/^error: configuration: empty/);
  });
});

describe("streamed mode: the attempt log that carries results from one attempt to the next", () => {
  test("an attempt takes what the one before left, once", () => {
    expect(w.attemptLogScript(["put 7 0 503", "take 7", "take 7", "size"]))
      .toEqual(["ok", "primary;result=503 trigger=status=503", "none", "0"]);
  });

  test("requests do not see each other's records", () => {
    expect(w.attemptLogScript(["put 1 0 503", "put 2 0 no_response", "put 3 0 429", "take 2", "take 3", "take 1"]))
      .toEqual(["ok", "ok", "ok", "primary;result=no_response trigger=upstream_failure", "primary;result=429 trigger=status=429",
        "primary;result=503 trigger=status=503"]);
  });

  test("a record no attempt takes is dropped after 60 s, at the next sweep", () => {
    expect(w.attemptLogScript(["put 1 0 503", "put 2 59999 503", "size", "put 3 60000 503", "size", "take 1"]))
      .toEqual(["ok", "ok", "2", "ok", "2", "none"]);
  });

  test("the table never holds more than 4096 records; a full table refuses", () => {
    const puts = Array.from({ length: 4097 }, (_, i) => `put ${i + 1} 1 503`);
    const out = w.attemptLogScript([...puts, "size", "put 9999 60001 503", "size"]);
    expect(out.slice(0, 4096).every((a) => a === "ok")).toBe(true);
    expect(out[4096]).toBe("full");
    expect(out.slice(4097)).toEqual(["4096", "ok", "1"]);
  });

  test("every entry's bytes are taken from the budget (320 + 96 per attempt) and given back when taken or swept", () => {
    expect(w.attemptLogScript(["put 1 0 503", "bytes", "put 2 0 retry,503", "bytes", "take 1", "bytes", "put 3 60000 503", "bytes", "take 3", "bytes"]))
      .toEqual(["ok", "416 416", "ok", "928 928", "primary;result=503 trigger=status=503", "512 512", "ok", "416 416",
        "primary;result=503 trigger=status=503", "0 0"]);
    // A full table at its bound: 4096 entries of one attempt each.
    const out = w.attemptLogScript([...Array.from({ length: 4096 }, (_, i) => `put ${i + 1} 1 503`), "bytes"]);
    expect(out[4096]).toBe(`${4096 * 416} ${4096 * 416}`);
  });

  test("past the budget an entry is not kept (the next attempt reports unknown), and nothing is taken from it", () => {
    expect(w.attemptLogScript(["put 1 0 503", "put 2 0 503", "bytes", "take 2", "fill 2 2"], 800))
      .toEqual(["ok", "over_budget", "416 416", "none", "primary;result=unknown trigger=unknown"]);
  });

  test("an entry whose key digest another request shares is neither taken nor replaced by it", () => {
    // "c<n>": identities whose digest is made to collide (the unit host's stand-in for a 64-bit collision).
    expect(w.attemptLogScript(["put c1 0 503", "put c2 0 429", "take c2", "size", "take c1", "bytes"]))
      .toEqual(["ok", "collision", "none", "1", "primary;result=503 trigger=status=503", "0 0"]);
  });

  test("attempts that left no record keep their places as unknown", () => {
    expect(w.attemptLogScript(["fill 1 3"])).toEqual(["primary;result=unknown, attempt-2;result=unknown trigger=unknown"]);
    expect(w.attemptLogScript(["put 2 0 429", "fill 2 3"])).toEqual(["ok", "primary;result=429, attempt-2;result=unknown trigger=status=429"]);
  });

  test("lean mode: the primary's place says the router retried it (its cluster has no filter to say why)", () => {
    expect(w.attemptLogScript(["fill 1 2 retry"])).toEqual(["primary;result=retry trigger=retry"]);
    expect(w.attemptLogScript(["fill 1 3 retry"])).toEqual(["primary;result=retry, attempt-2;result=unknown trigger=retry"]);
    expect(w.attemptLogScript(["put 2 0 retry,503", "fill 2 3 retry"])).toEqual(["ok", "primary;result=retry, b1;result=503 trigger=retry"]);
  });

  test("the trigger is named as in the dispatch mode", () => {
    expect(w.attemptTrigger("503")).toBe("status=503");
    expect(w.attemptTrigger("no_response")).toBe("upstream_failure");
    expect(w.attemptTrigger("first_packet_timeout")).toBe("first_packet_timeout");
  });
});

describe("streamed mode: the generated Envoy configuration", () => {
  const clusters = { primary: "p", addresses: { p: "127.0.0.1:8001", b1: "127.0.0.1:8002", b2: "https://api.example.com" } };
  const plugin = { backups: [{ service: "b1", model: "m1", headers: { authorization: "Bearer 1" } }, { service: "b2", headers: { "x-api-key": "2" } }], triggerStatuses: ["5xx", 429] };

  test("backendErrorsOnly: false is refused, naming the field (gateway replies never reach the router's retries)", () => {
    expect(() => lib.streamedConfig({ ...plugin, backendErrorsOnly: false }, clusters, {})).toThrow(/^backendErrorsOnly: streamed mode: must be true/);
    expect(() => lib.streamedConfig({ ...plugin, backendErrorsOnly: true }, clusters, {})).not.toThrow();
  });

  test("fields the dispatch mode uses and this mode cannot are named, and the command prints them", () => {
    const shared = { ...plugin, fallbackDeadline: 60000, maxKeptBytesPerWorker: 1 << 28, backups: [{ ...plugin.backups[0], timeout: 30000 }, plugin.backups[1]] };
    expect(lib.ignoredFields(plugin)).toEqual([]);
    expect(lib.ignoredFields(shared).map((f) => f.field)).toEqual(["fallbackDeadline", "maxKeptBytesPerWorker", "backups[0].timeout"]);
    // With firstPacketTimeout the streamed role's body scan is budgeted by it (docs/reliability.md, "One memory budget per VM").
    expect(lib.ignoredFields({ ...shared, firstPacketTimeout: 600 }).map((f) => f.field)).toEqual(["fallbackDeadline", "backups[0].timeout"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "streamed-cli-"));
    try {
      const write = (name, value) => { const f = path.join(dir, name); fs.writeFileSync(f, JSON.stringify(value)); return f; };
      const run = spawnSync(process.execPath,
        [path.join(__dirname, "../../../scripts/streamed-config.mjs"), write("plugin.json", shared), write("clusters.json", clusters)], { encoding: "utf8" });
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout).static_resources).toBeDefined();
      expect(run.stderr).toMatch(/^note: fallbackDeadline is ignored in streamed mode: /m);
      expect(run.stderr).toMatch(/^note: backups\[0\]\.timeout is ignored in streamed mode: /m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("one priority group per attempt, retries = backups, retriable statuses from triggerStatuses", () => {
    const { route } = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const groups = route.inline_cluster_specifier_plugin.extension.typed_config.priority_groups;
    expect(groups.map((g) => g.clusters[0].cluster_name)).toEqual(["p", "b1", "b2"]);
    expect(route.retry_policy.num_retries).toBe(2);
    expect(route.retry_policy.refresh_cluster_on_retry).toBe(true);
    // The next attempt is another cluster: Envoy's least back-off, not its default 25 ms.
    expect(route.retry_policy.retry_back_off).toEqual({ base_interval: "0.001s", max_interval: "0.005s" });
    expect(route.retry_policy.retry_on).toBe("reset,connect-failure,refused-stream,retriable-status-codes,retriable-headers");
    expect(route.retry_policy.retriable_status_codes).toEqual([429, ...Array.from({ length: 100 }, (_, i) => 500 + i)]);
    expect(lib.retriableStatusCodes(undefined)).toHaveLength(200);
  });

  test("a 4xx other than 429 is retried by the filters' marker, not by its status (its error code may decide)", () => {
    const fourXx = { ...plugin, triggerStatuses: ["4xx", 503] };
    const { route, clusters: out, virtual_host_options } = lib.streamedConfig(fourXx, clusters, { wasmPath: "/x.wasm" });
    expect(route.retry_policy.retriable_status_codes).toEqual([429, 503]);
    // Only the mark's value this configuration's filters set (a model service's own header of that name is not retried).
    expect(route.retry_policy.retriable_headers).toEqual([{ name: "x-ai-fallback-retry", string_match: { exact: lib.retryMark(fourXx) } }]);
    expect(JSON.parse(out[1].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config.config.configuration.value).retryMark)
      .toMatch(/^[0-9a-f]{32}$/);
    // The marker of an answer no attempt followed never reaches the client.
    expect(virtual_host_options.response_headers_to_remove).toEqual(["x-ai-fallback-retry", "x-ai-fallback-stream-error"]);
    // Only 4xx to retry: no status list at all.
    const only400 = lib.streamedConfig({ ...plugin, triggerStatuses: [400] }, clusters, { wasmPath: "/x.wasm" }).route.retry_policy;
    expect(only400.retry_on).toBe("reset,connect-failure,refused-stream,retriable-headers");
    expect(only400.retriable_status_codes).toBeUndefined();
    // The primary's filter holds a 4xx's headers for its body (Envoy shows it the body only with this flag), and gets the lists.
    const primary = out[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config.config;
    expect(primary.allow_on_headers_stop_iteration).toBe(true);
    const withLists = lib.streamedConfig({ ...plugin, neverTrigger: ["a"], alwaysTrigger: [] }, clusters, { wasmPath: "/x.wasm" }).clusters;
    const configOf = (c) => JSON.parse(c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config.config.configuration.value);
    expect(configOf(withLists[0])).toMatchObject({ attempt: 1, neverTrigger: ["a"], alwaysTrigger: [] });
    expect(configOf(withLists[1]).neverTrigger).toBeUndefined();
  });

  test("every cluster carries the upstream role with its attempt's configuration (a backup's with its entry), then the codec", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    const configOf = (c) => JSON.parse(opts(c).http_filters[0].typed_config.config.configuration.value);
    expect(configOf(out.clusters[0])).toEqual({ attempt: 1, attempts: 3, retryMark: lib.retryMark(plugin), triggerStatuses: ["5xx", 429], retryingRouteOnly: true });
    // The second backup's filter removes the first's header (Envoy keeps one header map for all attempts).
    expect(configOf(out.clusters[2])).toEqual({ attempt: 3, attempts: 3, retryMark: lib.retryMark(plugin), triggerStatuses: ["5xx", 429], earlierBackupHeaders: ["authorization"], backup: plugin.backups[1] });
    const filters = opts(out.clusters[1]).http_filters;
    expect(filters.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]);
    expect(filters[0].typed_config.config.root_id).toBe("ai-fallback-upstream");
    expect(configOf(out.clusters[1])).toEqual({ attempt: 2, attempts: 3, retryMark: lib.retryMark(plugin), triggerStatuses: ["5xx", 429], holdsRequestHeaders: true, backup: plugin.backups[0] });
    // An override backup's filter holds the request's headers until its body's model is rewritten; a pass-through one need not.
    const filterOf = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config.config;
    expect(filterOf(out.clusters[1]).allow_on_headers_stop_iteration).toBe(true);
    expect(plugin.backups[1].model).toBeUndefined();
    expect(filterOf(out.clusters[2]).allow_on_headers_stop_iteration).toBeUndefined();
    expect(out.clusters.every((c) => c.circuit_breakers.thresholds[0].max_retries === lib.DEFAULT_MAX_RETRIES)).toBe(true);
    expect(out.clusters[2].transport_socket.typed_config.sni).toBe("api.example.com");
    expect(out.clusters[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(443);
    expect(out.request_body_buffer_limit).toBe(lib.DEFAULT_REQUEST_BUFFER_BYTES);
  });

  test("an https cluster checks its server: certificate from the CA bundle (default, clusters.caBundle, --ca-bundle) and naming its host", () => {
    const tlsOf = (out) => out.clusters[2].transport_socket.typed_config;
    const validationOf = (out) => tlsOf(out).common_tls_context.validation_context;
    const dflt = lib.streamedConfig(plugin, clusters, {});
    expect(tlsOf(dflt).sni).toBe("api.example.com");
    expect(validationOf(dflt)).toEqual({
      trusted_ca: { filename: "/etc/ssl/certs/ca-certificates.crt" },
      match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "api.example.com" } }],
    });
    // Plain clusters have no TLS at all.
    expect(dflt.clusters[0].transport_socket).toBeUndefined();
    const fromFile = lib.streamedConfig(plugin, { ...clusters, caBundle: "/etc/pki/tls/certs/ca-bundle.crt" }, {});
    expect(validationOf(fromFile).trusted_ca).toEqual({ filename: "/etc/pki/tls/certs/ca-bundle.crt" });
    // The option wins over the file.
    const fromOption = lib.streamedConfig(plugin, { ...clusters, caBundle: "/etc/pki/tls/certs/ca-bundle.crt" }, { caBundle: "/tmp/ca.pem" });
    expect(validationOf(fromOption).trusted_ca).toEqual({ filename: "/tmp/ca.pem" });
    // An IP address is matched among the certificate's IP addresses.
    const byIp = lib.streamedConfig(plugin, { ...clusters, addresses: { ...clusters.addresses, b2: "https://10.0.0.7:8443" } }, {});
    expect(validationOf(byIp).match_typed_subject_alt_names).toEqual([{ san_type: "IP_ADDRESS", matcher: { exact: "10.0.0.7" } }]);
    expect(() => lib.streamedConfig(plugin, { ...clusters, caBundle: "" }, {})).toThrow(/^clusters\.caBundle: must be the path of a CA bundle file/);
    expect(() => lib.streamedConfig(plugin, { ...clusters, caBundle: 7 }, {})).toThrow(/^clusters\.caBundle: /);
    expect(() => lib.streamedConfig(plugin, clusters, { caBundle: " " })).toThrow(/^--ca-bundle: must be the path of a CA bundle file/);
  });

  test("lean (primaryFilter: false, --no-primary-filter): the primary's cluster has no filter at all; the backups keep theirs and are told", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm", primaryFilter: false });
    const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(opts(out.clusters[0]).http_filters).toBeUndefined();
    expect(out.http_filters).toEqual([]);
    const configOf = (c) => JSON.parse(opts(c).http_filters[0].typed_config.config.configuration.value);
    expect(configOf(out.clusters[1])).toEqual({ attempt: 2, attempts: 3, retryMark: lib.retryMark(plugin), triggerStatuses: ["5xx", 429], primaryFilter: false, holdsRequestHeaders: true, backup: plugin.backups[0] });
    expect(configOf(out.clusters[2])).toEqual({ attempt: 3, attempts: 3, retryMark: lib.retryMark(plugin), triggerStatuses: ["5xx", 429], primaryFilter: false, earlierBackupHeaders: ["authorization"], backup: plugin.backups[1] });
    // The same route but for the retry policy: no filter on the primary marks its answers, so every trigger status is retried by status.
    const full = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    expect({ ...out.route, retry_policy: null }).toEqual({ ...full.route, retry_policy: null });
    expect(out.route.retry_policy.retry_on).toBe("reset,connect-failure,refused-stream,retriable-status-codes");
    expect(out.route.retry_policy.retriable_headers).toBeUndefined();
    const lean4xx = lib.streamedConfig({ ...plugin, triggerStatuses: ["4xx"] }, clusters, { primaryFilter: false }).route.retry_policy;
    expect(lean4xx.retriable_status_codes).toHaveLength(100);
    // Error meanings need the primary's filter: lists that ask for them are refused, naming the way out.
    expect(() => lib.streamedConfig({ ...plugin, neverTrigger: ["content_filter"] }, clusters, { primaryFilter: false }))
      .toThrow(/^neverTrigger: the lean streamed mode \(--no-primary-filter\) reads no error body/);
    expect(() => lib.streamedConfig({ ...plugin, neverTrigger: [], alwaysTrigger: [] }, clusters, { primaryFilter: false })).not.toThrow();
    expect(out.method_match).toEqual(full.method_match);
    // The default keeps the primary's filter.
    expect(opts(full.clusters[0]).http_filters.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]);
    expect(configOf(full.clusters[1]).primaryFilter).toBeUndefined();
    // firstPacketTimeout needs the primary's guard: refused, naming the field.
    expect(() => lib.streamedConfig({ ...plugin, firstPacketTimeout: 600 }, clusters, { primaryFilter: false })).toThrow(/^firstPacketTimeout: needs the primary's filters/);
    expect(() => lib.streamedConfig(plugin, clusters, { primaryFilter: "no" })).toThrow(/^primaryFilter: must be true or false/);
  });

  test("the command's --no-primary-filter generates the lean mode", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "streamed-cli-"));
    try {
      const write = (name, value) => { const f = path.join(dir, name); fs.writeFileSync(f, JSON.stringify(value)); return f; };
      const args = [path.join(__dirname, "../../../scripts/streamed-config.mjs"), write("plugin.json", plugin), write("clusters.json", clusters)];
      const clusterFilters = (run) => JSON.parse(run.stdout).static_resources.clusters.map((c) =>
        (c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters ?? []).length);
      const lean = spawnSync(process.execPath, [...args, "--no-primary-filter"], { encoding: "utf8" });
      expect(lean.status).toBe(0);
      expect(clusterFilters(lean)).toEqual([0, 2, 2]);
      const full = spawnSync(process.execPath, args, { encoding: "utf8" });
      expect(clusterFilters(full)).toEqual([2, 2, 2, 0]); // the last: the primary for the other methods
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Envoy reports the attempt count to the client, and its own replies become the JSON error (hideTopology leaves out the cluster)", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    expect(out.virtual_host_options).toEqual({ include_attempt_count_in_response: true, response_headers_to_remove: ["x-ai-fallback-retry", "x-ai-fallback-stream-error"] });
    const mapper = out.local_reply_config.mappers[0];
    expect(mapper.filter).toEqual({ response_flag_filter: {} });
    expect(mapper.body_format_override.json_format.error).toMatchObject({ type: "ai_fallback_exhausted", code: "%RESPONSE_CODE%", last: "%UPSTREAM_CLUSTER%" });
    const hidden = lib.streamedConfig({ ...plugin, hideTopology: true }, clusters, { wasmPath: "/x.wasm" });
    expect(hidden.local_reply_config.mappers[0].body_format_override.json_format.error.last).toBeUndefined();
    const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(JSON.parse(opts(hidden.clusters[1]).http_filters[0].typed_config.config.configuration.value).hideTopology).toBe(true);
  });

  test("only the methods in `methods` (POST by default) take the retrying route; every other request goes to the primary alone", () => {
    const boot = lib.streamedBootstrap(plugin, clusters, { wasmPath: "/x.wasm" });
    const routes = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    expect(routes).toHaveLength(2);
    expect(routes[0].match.headers).toEqual([{ name: ":method", string_match: { safe_regex: { regex: "POST" } } }]);
    expect(routes[0].route.retry_policy).toBeDefined();
    expect(routes[1]).toEqual({ match: { prefix: "/" }, route: { cluster: "p-other-methods", timeout: "0s" } });
    const put = lib.streamedConfig({ ...plugin, methods: ["POST", "PUT"] }, clusters, { wasmPath: "/x.wasm" });
    expect(put.method_match.string_match.safe_regex.regex).toBe("POST|PUT");
    const opts = (c) => c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(JSON.parse(opts(put.clusters[0]).http_filters[0].typed_config.config.configuration.value).methods).toEqual(["POST", "PUT"]);
    expect(() => lib.streamedConfig({ ...plugin, methods: ["post"] }, clusters)).toThrow(/^methods\[0\]: must be an upper-case HTTP method/);
    expect(() => lib.streamedConfig({ ...plugin, methods: [] }, clusters)).toThrow(/^methods: must list at least one/);
  });

  test("each backup's filter is given the header names the backups before it set and it does not; credentialHeaders goes to every backup", () => {
    const three = {
      credentialHeaders: ["X-Tenant-Key"],
      backups: [
        { service: "b1", headers: { "OCP-Apim-Subscription-Key": "k1", "x-shared": "1" } },
        { service: "b2", headers: { "x-tenant-key": "k2", "x-shared": "2" } },
        { service: "b3", headers: { "x-goog-api-key": "k3" } },
      ],
    };
    const cl = { primary: "p", addresses: { p: "127.0.0.1:1", b1: "127.0.0.1:2", b2: "127.0.0.1:3", b3: "127.0.0.1:4" } };
    const configs = lib.streamedConfig(three, cl, { wasmPath: "/x.wasm" }).clusters.slice(0, 4)
      .map((c) => JSON.parse(c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config.config.configuration.value));
    expect(configs.map((c) => c.earlierBackupHeaders)).toEqual([undefined, undefined, ["ocp-apim-subscription-key"], ["ocp-apim-subscription-key", "x-shared", "x-tenant-key"]]);
    expect(configs.map((c) => c.credentialHeaders)).toEqual([undefined, ["X-Tenant-Key"], ["X-Tenant-Key"], ["X-Tenant-Key"]]);
  });

  test("credentialHeaders counts for a backup's own credential, and is checked as the module checks it", () => {
    const listed = { credentialHeaders: ["x-tenant-key"], backups: [{ service: "b1", headers: { "x-tenant-key": "1" } }, { service: "b2" }] };
    expect(() => lib.streamedConfig(listed, clusters)).toThrow(/^backups\[1\]\.headers: streamed mode: must set its own credential/);
    expect(() => lib.streamedConfig({ ...listed, credentialHeaders: undefined }, clusters)).not.toThrow();
    expect(() => lib.streamedConfig({ ...plugin, credentialHeaders: "x" }, clusters)).toThrow(/^credentialHeaders: must be an array of header names/);
    expect(() => lib.streamedConfig({ ...plugin, credentialHeaders: [1] }, clusters)).toThrow(/^credentialHeaders\[0\]: must be a string/);
    for (const bad of [":path", "Host", "content-length", "transfer-encoding", "x y", ""]) {
      expect(() => lib.streamedConfig({ ...plugin, credentialHeaders: ["x-ok", bad] }, clusters)).toThrow(/^credentialHeaders\[1\]: must name an ordinary header/);
    }
  });

  test("the connection manager takes the client's address from the connection (or xffNumTrustedHops proxies) and replaces clients' x-request-id", () => {
    const hcm = (b) => b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const boot = hcm(lib.streamedBootstrap(plugin, clusters, { wasmPath: "/x.wasm" }));
    expect(boot.use_remote_address).toBe(true);
    expect(boot.xff_num_trusted_hops).toBeUndefined();
    expect(boot.preserve_external_request_id).toBeUndefined();
    const behind = hcm(lib.streamedBootstrap(plugin, clusters, { wasmPath: "/x.wasm", xffNumTrustedHops: 1 }));
    expect(behind).toMatchObject({ use_remote_address: true, xff_num_trusted_hops: 1 });
    expect(() => lib.streamedBootstrap(plugin, clusters, { xffNumTrustedHops: -1 })).toThrow(/^xffNumTrustedHops: must be an integer >= 0/);
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

  test("the primary gets the guard (holding only: the router retries headers-only errors itself), allowed to hold headers, before its attempt filter", () => {
    const out = lib.streamedConfig(plugin, clusters, { wasmPath: "/x.wasm" });
    const filters = opts(out.clusters[0]).http_filters;
    expect(filters.map((f) => f.name)).toEqual(["envoy.filters.http.wasm", "envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]);
    // Upstream filters see the answer in reverse order: the attempt filter records the primary's result before the guard holds it.
    expect(JSON.parse(filters[1].typed_config.config.configuration.value)).toEqual({ attempt: 1, attempts: 2, retryMark: lib.retryMark(plugin), retryingRouteOnly: true });
    const config = filters[0].typed_config.config;
    expect(config.root_id).toBe("ai-fallback-upstream");
    expect(JSON.parse(config.configuration.value)).toEqual({ guard: { replyToHeadersOnlyErrors: false, retryMark: lib.retryMark(plugin) } });
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

  test("the route's request buffer holds at least maxRequestBodyBytes (the role holds bodies up to it)", () => {
    expect(lib.streamedConfig(plugin, clusters).request_body_buffer_limit).toBe(lib.DEFAULT_REQUEST_BUFFER_BYTES);
    const big = 64 * 1024 * 1024;
    expect(lib.streamedConfig({ ...plugin, maxRequestBodyBytes: big }, clusters).request_body_buffer_limit).toBe(big);
  });

  test("keepAliveIsNotFirstPacket is passed on to the guard", () => {
    const keepAlive = { ...plugin, keepAliveIsNotFirstPacket: true };
    const out = lib.streamedConfig(keepAlive, clusters, { wasmPath: "/x.wasm" });
    expect(JSON.parse(opts(out.clusters[0]).http_filters[0].typed_config.config.configuration.value)).toEqual(
      { guard: { replyToHeadersOnlyErrors: false, retryMark: lib.retryMark(keepAlive), keepAliveIsNotFirstPacket: true } });
  });

  test("firstPacket \"content\": the route also retries on the guard's stream-error mark (and only then)", () => {
    const content = { ...plugin, firstPacket: "content" };
    const out = lib.streamedConfig(content, clusters, { wasmPath: "/x.wasm" });
    expect(out.route.retry_policy.retry_on).toBe("reset,connect-failure,refused-stream,retriable-status-codes,retriable-headers");
    // Beside the attempt filters' retry marker (error meanings); both only with this configuration's value.
    const exact = { exact: lib.retryMark(content) };
    expect(out.route.retry_policy.retriable_headers).toEqual([
      { name: "x-ai-fallback-retry", string_match: exact }, { name: "x-ai-fallback-stream-error", string_match: exact }]);
    for (const p of [plugin, { ...plugin, firstPacket: "event" }, { backups: plugin.backups, firstPacket: "content" }]) {
      const route = lib.streamedConfig(p, clusters, { wasmPath: "/x.wasm" }).route;
      expect(route.retry_policy.retriable_headers).toEqual([{ name: "x-ai-fallback-retry", string_match: { exact: lib.retryMark(p) } }]);
    }
    // One value per configuration, the same each time it is generated, and none a model service could know.
    expect(lib.retryMark(content)).toBe(lib.retryMark({ ...content }));
    expect(lib.retryMark(content)).not.toBe(lib.retryMark(plugin));
    // Every layout (hedge, cooldown, retry fill in defaults first) marks and retries with one value: the configuration's as given.
    const strings = (o, out = []) => {
      if (typeof o === "string") out.push(o);
      else if (o && typeof o === "object") for (const v of Object.values(o)) strings(v, out);
      return out;
    };
    for (const extra of [{ hedge: { maxInFlight: 2 } }, { cooldown: {} }, { retry: { attempts: 2 } }, { firstPacket: "content" }]) {
      const p = { ...plugin, ...extra };
      const boot = lib.streamedBootstrap(p, clusters, { wasmPath: "/x.wasm" });
      const marks = new Set(strings(boot).filter((t) => t.includes("retryMark")).flatMap((t) => [...t.matchAll(/"retryMark":"([^"]+)"/g)].map((m) => m[1])));
      const exact = new Set([...JSON.stringify(boot).matchAll(/"exact":"([0-9a-f]{32})"/g)].map((m) => m[1]));
      expect([...marks]).toEqual([lib.retryMark(p)]);
      expect([...exact]).toEqual([lib.retryMark(p)]);
    }
    // Or the operator's own secret (--retry-mark), everywhere the digest would go.
    const secret = "0123456789abcdef0123456789abcdef";
    const own = lib.streamedConfig(content, clusters, { wasmPath: "/x.wasm", retryMark: secret });
    expect(own.route.retry_policy.retriable_headers.map((h) => h.string_match.exact)).toEqual([secret, secret]);
    const filters = opts(own.clusters[0]).http_filters.map((f) => JSON.parse(f.typed_config.config?.configuration.value ?? "null"));
    expect(filters[0].guard.retryMark).toBe(secret);
    expect(filters[1].retryMark).toBe(secret);
    expect(JSON.parse(opts(own.clusters[1]).http_filters[0].typed_config.config.configuration.value).retryMark).toBe(secret);
    for (const bad of ["short", "has a space in it here", "x".repeat(129), 7]) {
      expect(() => lib.streamedConfig(content, clusters, { retryMark: bad })).toThrow(/^--retry-mark: must be 16 to 128 visible ASCII characters/);
    }
  });

  test("streamIdleTimeout becomes the route's idle_timeout; it must outlast firstPacketTimeout; a bad value is refused, teaching", () => {
    expect(lib.streamedConfig({ ...plugin, streamIdleTimeout: 30000 }, clusters).route.idle_timeout).toBe("30s");
    expect(lib.streamedConfig({ ...plugin, streamIdleTimeout: 4500 }, clusters).route.idle_timeout).toBe("4.5s");
    for (const p of [plugin, { ...plugin, streamIdleTimeout: 0 }]) expect(lib.streamedConfig(p, clusters).route.idle_timeout).toBeUndefined();
    expect(() => lib.streamedConfig({ ...plugin, streamIdleTimeout: "30s" }, clusters)).toThrow(
      "streamIdleTimeout: must be an integer number of milliseconds from 0 (off: Envoy's stream_idle_timeout applies, 5 minutes by default) to 2147483647, e.g. 30000 for 30 s; got \"30s\"");
    expect(() => lib.streamedConfig({ ...plugin, firstPacketTimeout: 2000, streamIdleTimeout: 2000 }, clusters)).toThrow(
      /^streamIdleTimeout: must be longer than firstPacketTimeout \(2000 ms\), got 2000: in the streamed mode it is the route's idle timeout/);
  });

  test("without firstPacketTimeout (or 0) neither is added; a bad value is refused, naming the field", () => {
    for (const p of [{ backups: plugin.backups }, { ...plugin, firstPacketTimeout: 0 }]) {
      const out = lib.streamedConfig(p, clusters, { wasmPath: "/x.wasm" });
      expect(opts(out.clusters[0]).http_filters.map((f) => JSON.parse(f.typed_config.config?.configuration.value ?? "null"))).toEqual([{ attempt: 1, attempts: 2, retryMark: lib.retryMark(p), retryingRouteOnly: true }, null]);
      expect(out.http_filters).toEqual([]);
    }
    expect(() => lib.streamedConfig({ ...plugin, firstPacketTimeout: "3s" }, clusters)).toThrow(/^firstPacketTimeout: must be an integer from 0/);
  });
});

describe("streamed mode: the per-try timeout a request gets from the ai-fallback-streamed role", () => {
  test("firstPacketTimeout for a streaming request, none for any other, none without firstPacketTimeout", () => {
    const conf = JSON.stringify({ backups: [{ service: "b" }], firstPacketTimeout: 2500 });
    expect(w.perTryTimeout(conf, "POST", true)).toBe(2500);
    expect(w.perTryTimeout(conf, "POST", false)).toBe(0);
    expect(w.perTryTimeout(JSON.stringify({ backups: [{ service: "b" }] }), "POST", true)).toBe(0);
  });

  test("only for the methods that fall back (the route retries no other): none for a streaming PUT by default", () => {
    const conf = { backups: [{ service: "b" }], firstPacketTimeout: 2500 };
    expect(w.perTryTimeout(JSON.stringify(conf), "PUT", true)).toBe(0);
    expect(w.perTryTimeout(JSON.stringify({ ...conf, methods: ["POST", "PUT"] }), "PUT", true)).toBe(2500);
  });
});
