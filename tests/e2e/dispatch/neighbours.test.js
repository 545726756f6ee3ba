// Issue 20 end to end: a backup answers only what the gateway let through, whatever the filters
// around ai-fallback do. A neighbour behind it that refuses a request (with response details or none,
// as the Rust and Go proxy-wasm SDKs send, or an ext_proc processor's ImmediateResponse without
// details), and one that sends the request to another route.
const path = require("node:path");
const { startEnvoy } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { startExtProc, extProcFilter, REFUSE_HEADER, REFUSAL_BODY } = require("../support/mock_ext_proc");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const REFUSER_WASM = path.join(__dirname, "..", "..", "..", "build", "refuser.wasm");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port });
const noBackupCalled = () => expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);

/** The test-only refusing module (tests/e2e/support/probe/refuser.wat): `x-refuse: <details>` is refused 403. */
const refuserFilter = {
  name: "envoy.filters.http.wasm",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    config: {
      name: "guardrail",
      root_id: "guardrail",
      vm_config: { vm_id: "guardrail", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: REFUSER_WASM } } },
      // It holds the request at its headers until the body is whole, and must see that body.
      allow_on_headers_stop_iteration: true,
    },
  },
};

/** A Lua filter: requests with `x-lua-refuse` are answered 403 by respond(). */
const luaRefuser = {
  name: "envoy.filters.http.lua",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    default_source_code: {
      inline_string: `function envoy_on_request(handle)
  if handle:headers():get("x-lua-refuse") ~= nil then
    handle:body()
    handle:respond({[":status"] = "403"}, "refused by lua")
  end
end`,
    },
  },
};

describe("a neighbour's refusal is the gateway's, with response details or none", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a", headers: { authorization: "Bearer backup-key" } }] },
      clusters: clusters(),
      extraHttpFiltersAfter: [refuserFilter, luaRefuser],
    });
  });

  test("[pass-through] a refusal with no response details reaches the client; the backup never sees the request", async () => {
    const res = await request(envoy.port, { headers: { "x-refuse": "", "x-request-id": "refused-1" }, body: CHAT });
    expect([res.status, res.text]).toEqual([403, "refused by guardrail"]);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.primary.requests.length).toBe(0);
    noBackupCalled();
  });

  test("[pass-through] a refusal with response details of its own, and a Lua respond(), are not replayed either", async () => {
    const named = await request(envoy.port, { headers: { "x-refuse": "guardrail_denied" }, body: CHAT });
    expect([named.status, named.text]).toEqual([403, "refused by guardrail"]);
    const lua = await request(envoy.port, { headers: { "x-lua-refuse": "1" }, body: CHAT });
    expect([lua.status, lua.text]).toEqual([403, "refused by lua"]);
    expect(m.primary.requests.length).toBe(0);
    noBackupCalled();
  });

  test("the model service's own 403 behind the same neighbours still falls back", async () => {
    m.primary.behave({ status: 403 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=403");
    expect(m.backupA.requests.length).toBe(1);
  });
});

describe("ext_proc behind the filter: an ImmediateResponse without details is the gateway's", () => {
  let envoy;
  let processor;
  beforeAll(async () => {
    processor = await startExtProc();
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a", headers: { authorization: "Bearer backup-key" } }] },
      clusters: { ...clusters(), "ext-proc": { port: processor.port, http2: true } },
      extraHttpFiltersAfter: [extProcFilter("ext-proc")],
    });
  });
  afterAll(async () => {
    if (envoy) await envoy.stop();
    if (processor) await processor.stop();
  });
  beforeEach(() => processor.reset());

  test("[pass-through] ext_proc refusing the whole body with a 403 and no details: the client gets it, no backup sees the request", async () => {
    const res = await request(envoy.port, { headers: { [REFUSE_HEADER]: "1", "x-request-id": "ext-proc-refused-1" }, body: CHAT });
    expect([res.status, res.text]).toEqual([403, REFUSAL_BODY]);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    // The processor refused after it had the whole body (so the filter held a complete copy to replay).
    expect(processor.streams.map((s) => [s.refused, s.bodies.join("")])).toEqual([[true, JSON.stringify(CHAT)]]);
    expect(m.primary.requests.length).toBe(0);
    noBackupCalled();
  });

  test("a request the processor lets through, whose primary answers 503, falls back to the backup", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(processor.streams.map((s) => [s.refused, s.bodies.join("")])).toEqual([[false, JSON.stringify(CHAT)]]);
    expect(m.primary.requests.length).toBe(1);
    expect(m.backupA.requests.length).toBe(1);
  });
});

/**
 * A body-based model router stand-in behind ai-fallback: a request with `x-reroute: <pool>` is sent
 * to that pool's route (x-pool is what the routes match on, the route cache is cleared).
 */
const luaRerouter = {
  name: "envoy.filters.http.lua",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    default_source_code: {
      inline_string: `function envoy_on_request(handle)
  local pool = handle:headers():get("x-reroute")
  if pool ~= nil then
    handle:headers():replace("x-pool", pool)
    handle:clearRouteCache()
  end
end`,
    },
  },
};

describe("the rule of the route the request finally took applies (a filter behind changed the route)", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        _rules_: [
          { _match_route_: ["premium"], backups: [{ service: "backup-a", headers: { authorization: "Bearer premium-key" } }] },
          { _match_route_: ["cheap"], backups: [{ service: "backup-b", model: "small-model" }] },
        ],
      },
      clusters: clusters(),
      extraHttpFiltersAfter: [luaRerouter],
      routes: [
        { name: "premium", prefix: "/", headers: { "x-pool": "premium" } },
        { name: "cheap", prefix: "/", headers: { "x-pool": "cheap" } },
        { name: "unguarded", prefix: "/" },
      ],
    });
  });

  test("rerouted from premium to cheap: cheap's backup answers, premium's never sees the request", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { headers: { "x-pool": "premium", "x-reroute": "cheap" }, body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(m.backupA.requests.length).toBe(0);
    expect(JSON.parse(m.backupB.requests[0].body).model).toBe("small-model");
  });

  test("[pass-through] rerouted to a route without fallback: the primary's error reaches the client, no backup is called", async () => {
    m.primary.behave({ status: 503, body: "primary down" });
    const res = await request(envoy.port, { headers: { "x-pool": "premium", "x-reroute": "other" }, body: CHAT });
    expect([res.status, res.text]).toEqual([503, "primary down"]);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    noBackupCalled();
  });
});
