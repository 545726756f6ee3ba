// Issue 26 part 1 end to end: with `"handoff": "higress-route-fallback"` the filter calls no backup;
// it marks the answers it decides to fall back on, and Envoy's custom_response (first in the chain,
// matcher on the marker, a local response policy in place of Higress's redirect, keeping the status)
// sees every marked answer, the filter's own replies included. Healthy answers and a neighbour's refusals are never marked.
const path = require("node:path");
const { startEnvoy } = require("../support/envoy");
const { startMock } = require("../support/mock_model");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { MARKER, customResponseLocal, handedOver } = require("../support/route_fallback");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const STREAM_CHAT = { ...CHAT, stream: true };
const REFUSER_WASM = path.join(__dirname, "..", "..", "..", "build", "refuser.wasm");

const m = useMocks({ primary: "primary", backup: "backup" });
let closedPort;
beforeAll(async () => {
  const closed = await startMock("closed");
  closedPort = closed.port;
  await closed.stop();
});

/** The test-only refusing module (tests/e2e/support/probe/refuser.wat): `x-refuse: <details>` is refused 403. */
const refuserFilter = {
  name: "envoy.filters.http.wasm",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    config: {
      name: "guardrail",
      root_id: "guardrail",
      vm_config: { vm_id: "guardrail", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: REFUSER_WASM } } },
      allow_on_headers_stop_iteration: true,
    },
  },
};

const HANDOFF = { handoff: "higress-route-fallback", backups: [{ service: "backup", model: "backup-model" }], firstPacketTimeout: 400 };

describe("handoff: decided failures leave marked, and reach the filter placed first", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: HANDOFF,
      clusters: { primary: m.primary.port, backup: m.backup.port, dead: closedPort },
      extraHttpFilters: [customResponseLocal],
      extraHttpFiltersAfter: [refuserFilter],
      routes: [
        { name: "dead-route", prefix: "/dead/", cluster: "dead" },
        { name: "slow-route", prefix: "/slow/", cluster: "primary", timeoutMs: 300 },
        { name: "primary-route", prefix: "/", cluster: "primary" },
      ],
      routeTimeoutMs: 30000,
    });
  });

  test("the model service's 503 is marked; no backup is called by the filter", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { body: CHAT });
    expect([handedOver(res), res.status]).toEqual([true, 503]);
    expect(m.primary.requests.length).toBe(1);
    expect(m.backup.requests.length).toBe(0);
  });

  test("a connect failure (Envoy's 503 for an unreachable service) is marked", async () => {
    const res = await request(envoy.port, { path: "/dead/v1/chat/completions", body: CHAT });
    expect(handedOver(res)).toBe(true);
    expect(m.backup.requests.length).toBe(0);
  });

  test("the route's timeout before any header (Envoy's 504) is marked", async () => {
    m.primary.behave({ delayHeadersMs: 3000 });
    const res = await request(envoy.port, { path: "/slow/v1/chat/completions", body: CHAT });
    expect(handedOver(res)).toBe(true);
  });

  test("a first-packet timeout before any response: the filter's own reply is marked and reaches custom_response", async () => {
    m.primary.behave({ delayHeadersMs: 3000, sse: { events: ["late"] } });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect([handedOver(res), res.status]).toEqual([true, 504]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(m.backup.requests.length).toBe(0);
  });

  test("held 2xx headers whose first packet is late leave as a marked error", async () => {
    m.primary.behave({ sse: { firstDelayMs: 3000, events: ["late"] } });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM_CHAT });
    expect([handedOver(res), res.status]).toEqual([true, 504]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test("[pass-through] a healthy answer, streamed or not, is not marked", async () => {
    const plain = await request(envoy.port, { body: CHAT });
    expect([plain.status, plain.json().served_by, plain.headers[MARKER]]).toEqual([200, "primary", undefined]);
    m.primary.behave({ sse: { firstDelayMs: 50, events: ["on time"] } });
    const streamed = await request(envoy.port, { body: STREAM_CHAT });
    expect([streamed.status, streamed.headers[MARKER]]).toEqual([200, undefined]);
    expect(streamed.text).toMatch(/on time/);
  });

  test("[pass-through] a neighbour's refusal, with response details or none, is not marked", async () => {
    const bare = await request(envoy.port, { headers: { "x-refuse": "" }, body: CHAT });
    expect([bare.status, bare.text]).toEqual([403, "refused by guardrail"]);
    const named = await request(envoy.port, { headers: { "x-refuse": "guardrail_denied" }, body: CHAT });
    expect([named.status, named.text]).toEqual([403, "refused by guardrail"]);
    expect(m.primary.requests.length + m.backup.requests.length).toBe(0);
  });

  test("a client's copy of the marker header is dropped: a service that echoes it cannot mark its own answer", async () => {
    m.primary.behave((req) => ({ headers: req.headers[MARKER] ? { [MARKER]: req.headers[MARKER] } : {} }));
    const res = await request(envoy.port, { headers: { [MARKER]: "1" }, body: CHAT });
    expect([res.status, res.json().served_by, res.headers[MARKER]]).toEqual([200, "primary", undefined]);
    expect(m.primary.requests[0].headers[MARKER]).toBeUndefined();
  });
});
