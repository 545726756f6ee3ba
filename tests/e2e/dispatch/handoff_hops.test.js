// Issue 26 part 2 end to end: each backup's hop after Higress's route fallback recreated the stream.
// The first redirect is a real one: upstream Envoy's custom_response recreates the stream on the
// fallback route (the original body, which the route's retry policy kept in Envoy's buffer, is
// replayed as Higress's use_original_request_body does; a Lua filter puts back the POST that upstream's
// redirect turns into a GET, which Higress's fork keeps). Upstream also gives the recreated stream's
// answer the first answer's status (Higress's fork only with keep_original_response_code): a hop's own
// status is read from the report. Upstream's custom_response redirects only
// once: the redirect to a third hop is emulated by the test, which sends the original body again with
// x-higress-fallback-from, the headers the recreated request would keep, and the chain the filter
// handed on (read from the marked answer's report), set as the stream property by a test-only module
// (tests/e2e/support/probe/chain_carrier.wat) where Higress's recreated stream would still hold it.
const path = require("node:path");
const { startEnvoy, growth } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { MARKER, customResponseRedirect, restoreMethod } = require("../support/route_fallback");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const STREAM_CHAT = { ...CHAT, stream: true };
const CARRIER_WASM = path.join(__dirname, "..", "..", "..", "build", "chain_carrier.wasm");
const FROM = "x-higress-fallback-from";

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });

const carrierFilter = {
  name: "envoy.filters.http.wasm",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    config: {
      name: "chain-carrier",
      root_id: "chain-carrier",
      vm_config: { vm_id: "chain-carrier", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: CARRIER_WASM } } },
    },
  },
};

const PLUGIN = {
  handoff: "higress-route-fallback",
  firstPacketTimeout: 400,
  backups: [
    // Its path and authority are its hop route's to rewrite (set by the filter, Envoy would match another route).
    { service: "backup-a", model: "model-a", path: "/compatible/v1/chat", authority: "a.example", headers: { authorization: "Bearer key-a", "x-backup": "a" }, dropHeaders: ["x-client-secret"] },
    { service: "backup-b", model: "model-b", headers: { "x-api-key": "key-b" } },
  ],
};

/** The chain the marked answer reports, in the filter's wire form (core/handoff.ts), for the emulated redirect. */
function chainOf(marked) {
  const fields = [marked.headers[MARKER], marked.headers["x-ai-fallback-trigger"]];
  for (const attempt of marked.headers["x-ai-fallback-attempts"].split(", ")) {
    const parts = Object.fromEntries(attempt.split(";").slice(1).map((p) => p.split("=")));
    fields.push(attempt.split(";")[0], parts.model ?? "", parts.result);
  }
  return fields.join("\t");
}

/** The emulated redirect to the next hop: the original body, the headers the recreated request keeps, the chain. */
const redirectAgain = (envoy, marked, { body = CHAT, kept = {} } = {}) =>
  request(envoy.port, { body, headers: { ...kept, [FROM]: "primary-route", "x-emulated-chain": chainOf(marked) } });

describe("handoff hops: each backup's rewrite, its own first-packet timer, the chain's report", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: PLUGIN,
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port },
      extraHttpFilters: [customResponseRedirect("primary-route"), restoreMethod, carrierFilter],
      routes: [
        // The fallback routes (what scripts/higress-handoff.mjs generates for Higress): hop 2 by the
        // hop header the filter sets, hop 1 by the route fallback's header alone.
        { name: "primary-route-fallback-2", prefix: "/", cluster: "backup-b", headers: { [FROM]: "primary-route", "x-ai-fallback-hop": "2" } },
        { name: "primary-route-fallback-1", prefix: "/", cluster: "backup-a", headers: { [FROM]: "primary-route" } },
        // Its retry policy keeps the request body in Envoy's buffer, which the recreated stream replays.
        { name: "primary-route", prefix: "/", cluster: "primary", routeExtra: { retry_policy: { retry_on: "reset", num_retries: 1 } } },
      ],
      routeTimeoutMs: 30000,
    });
  });

  test("hop 1, after a real recreated stream: the original body with its model, its key (the client's removed), its headers; its answer reports the chain", async () => {
    m.primary.behave({ status: 503 });
    const before = await envoy.stats();
    const res = await request(envoy.port, { body: CHAT, headers: { authorization: "Bearer client", "x-client-secret": "s", "x-request-id": "hop-1" } });
    expect([res.json().served_by, res.headers[MARKER]]).toEqual(["backup-a", undefined]);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=200");
    expect([res.headers["x-ai-fallback-service"], res.headers["x-ai-fallback-model"]]).toEqual(["backup-a", "model-a"]);
    expect(m.primary.requests[0].headers.authorization).toBe("Bearer client");
    const hop = m.backupA.requests[0];
    expect([hop.method, hop.path, hop.headers[FROM], hop.headers.authorization, hop.headers["x-backup"], hop.headers["x-client-secret"]])
      .toEqual(["POST", "/v1/chat/completions", "primary-route", "Bearer key-a", "a", undefined]);
    expect(JSON.parse(hop.body.toString())).toEqual({ ...CHAT, model: "model-a" });
    const grew = growth(before, await envoy.stats());
    expect([grew("wasmcustom.ai_fallback.started"), grew("wasmcustom.ai_fallback.served_by_backup")]).toEqual([1, 1]);
    const logs = await envoy.logsWhen(/served by backup-a/);
    expect(logs).toMatch(/fallback: served by backup-a \(model model-a\); trigger status=503; attempts primary;result=503, backup-a;model=model-a;result=200 x-request-id=hop-1/);
  });

  test("three hops: backup-a's 503 is handed on; backup-b gets its own model and key, none of backup-a's; the report tells the whole chain", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 503 });
    const marked = await request(envoy.port, { body: CHAT, headers: { authorization: "Bearer client", "x-request-id": "three-hops" } });
    // Upstream Envoy redirects once: hop 1's marked answer reaches the client, with the report so far.
    expect(marked.headers[MARKER]).toBe("2");
    expect(marked.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=503");
    const kept = { authorization: "Bearer key-a", "x-backup": "a", "x-ai-fallback-hop": "1", "x-request-id": "three-hops" };
    const res = await redirectAgain(envoy, marked, { kept });
    expect([res.status, res.json().served_by, res.headers[MARKER]]).toEqual([200, "backup-b", undefined]);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=503, backup-b;model=model-b;result=200");
    expect([res.headers["x-ai-fallback-service"], res.headers["x-ai-fallback-model"]]).toEqual(["backup-b", "model-b"]);
    const hop = m.backupB.requests[0];
    expect([hop.headers["x-api-key"], hop.headers.authorization, hop.headers["x-backup"]]).toEqual(["key-b", undefined, undefined]);
    expect(JSON.parse(hop.body.toString())).toEqual({ ...CHAT, model: "model-b" });
    const logs = await envoy.logsWhen(/served by backup-b/);
    expect(logs).toMatch(/fallback: served by backup-b \(model model-b\); trigger status=503; attempts primary;result=503, backup-a;model=model-a;result=503, backup-b;model=model-b;result=200 x-request-id=three-hops/);
  });

  test("the last hop's answer is final: backup-b's error reaches the client unmarked, with the report", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 503 });
    m.backupB.behave({ status: 500 });
    const marked = await request(envoy.port, { body: CHAT });
    const before = await envoy.stats();
    const res = await redirectAgain(envoy, marked);
    expect([res.status, res.headers[MARKER]]).toEqual([500, undefined]);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=503, backup-b;model=model-b;result=500");
    expect(growth(before, await envoy.stats())("wasmcustom.ai_fallback.exhausted")).toBe(1);
  });

  test("a hop times its own first packet: backup-a's late stream leaves as a marked 504 for hop 2", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ sse: { firstDelayMs: 3000, events: ["late"] } });
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect(res.headers[MARKER]).toBe("2");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=first_packet_timeout");
    // The report keeps what started the whole chain, not the hop's own trigger.
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    // Marked when its timer fired (where Higress redirects); the late body follows here only because upstream Envoy does not redirect again.
    expect(res.headersAt).toBeLessThan(2000);
  });

  test("a body whose model cannot be written never reaches the override backup: the hop hands on at once", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { body: { messages: CHAT.messages } });
    expect(res.headers[MARKER]).toBe("2");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-a;result=not_rewritable");
    expect(m.backupA.requests.length).toBe(0);
  });

  test("[pass-through] a request naming x-higress-fallback-from itself, with no chain handed on, is not rewritten: no backup's key or model", async () => {
    const res = await request(envoy.port, { body: CHAT, headers: { [FROM]: "primary-route", authorization: "Bearer client" } });
    expect([res.status, res.json().served_by]).toEqual([200, "backup-a"]);
    const seen = m.backupA.requests[0];
    expect([seen.headers.authorization, seen.headers["x-backup"], JSON.parse(seen.body.toString()).model]).toEqual(["Bearer client", undefined, "gpt-4o"]);
  });
});
