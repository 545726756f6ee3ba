// Issue 8 end to end: a backup sees only what the gateway would have let through to the primary, and
// only the credentials configured for it. Real Envoy filters: ext_authz (with a mock authorization
// service), direct_response, a route that does not exist, a local rate limiter.
const { startEnvoy, counter } = require("../support/envoy");
const { startMock } = require("../support/mock_model");
const { startAuthz, extAuthzFilter } = require("../support/mock_authz");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const { rateLimiterFilter, oneRequestPerHour } = require("../support/http_filters");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let authz;
let closedPort;
beforeAll(async () => {
  authz = await startAuthz();
  const closed = await startMock("closed");
  closedPort = closed.port;
  await closed.stop();
});
afterAll(async () => {
  if (authz) await authz.stop();
});
beforeEach(() => authz.reset());

const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port, authz: authz.port });
const noBackupCalled = () => expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);

describe("only model-API requests are replayed", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], _rules_: [{ _match_route_: ["files"], methods: ["POST", "GET"] }] },
      clusters: clusters(),
      routes: [{ name: "files", prefix: "/v1/files" }, { name: "other", prefix: "/" }],
    });
  });

  test("[pass-through] by default only POST: a GET the primary answers 404 reaches the client as it is, no backup is called", async () => {
    m.primary.behave({ status: 404, body: "no such model list" });
    const res = await request(envoy.port, { method: "GET", path: "/v1/models" });
    expect(res.status).toBe(404);
    expect(res.text).toBe("no such model list");
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    noBackupCalled();
    for (const method of ["PUT", "DELETE"]) {
      expect((await request(envoy.port, { method, path: "/v1/models/x", body: CHAT })).status).toBe(404);
    }
    noBackupCalled();
  });

  test("a rule's methods list widens it for its route", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { method: "GET", path: "/v1/files/f1" });
    expect(res.status).toBe(200);
    expect(m.backupA.requests[0].method).toBe("GET");
  });
});

describe("a backup with its own credential gets none of the client's", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [
          { service: "backup-a", headers: { "x-goog-api-key": "backup-key" }, dropHeaders: ["x-user-token"] },
          { service: "backup-b" },
        ],
      },
      clusters: clusters(),
    });
  });

  test("no cookie, no credential header, no credential query parameter, no dropped header", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 500 });
    const path = "/v1beta/models/gemini:generateContent?alt=sse&key=client-key&API-KEY=client-2&api_key=client-3&access_token=client-4&%6Bey=client-5";
    const res = await request(envoy.port, {
      path,
      headers: { cookie: "session=client-cookie", authorization: "Bearer client-key-6", "x-user-token": "client-7", "x-trace": "t1" },
      body: CHAT,
    });
    expect(res.status).toBe(200);
    const a = m.backupA.requests[0];
    expect(a.path).toBe("/v1beta/models/gemini:generateContent?alt=sse");
    expect(a.headers["x-goog-api-key"]).toBe("backup-key");
    expect(a.headers["x-trace"]).toBe("t1");
    expect(a.headers.cookie).toBeUndefined();
    expect(JSON.stringify(a.rawHeaders) + a.path).not.toMatch(/client/);
    // backup-b brings no credential: it is the client's own request (the operator's choice).
    const b = m.backupB.requests[0];
    expect(b.path).toBe(path);
    expect(b.headers.cookie).toBe("session=client-cookie");
  });
});

describe("gateway replies (backendErrorsOnly: false)", () => {
  let envoy;
  let explicit;
  beforeAll(async () => {
    const routes = [
      { name: "limited", prefix: "/v1/limited", typedPerFilterConfig: oneRequestPerHour },
      { name: "direct", prefix: "/v1/direct", directResponse: { status: 403, body: "forbidden by gateway" } },
      { name: "busy-direct", prefix: "/v1/busy", directResponse: { status: 503, body: "maintenance page" } },
      { name: "chat", prefix: "/v1/" },
    ];
    const pluginConfig = {
      backups: [{ service: "backup-a", headers: { authorization: "Bearer backup-key" } }],
      backendErrorsOnly: false,
      _rules_: [{ _match_route_: ["limited"], gatewayTriggerStatuses: [503] }],
    };
    envoy = await startEnvoy({
      pluginConfig,
      clusters: clusters(),
      extraHttpFiltersAfter: [rateLimiterFilter, extAuthzFilter()],
      routes,
    });
    explicit = await startEnvoy({
      pluginConfig: { ...pluginConfig, gatewayTriggerStatuses: [429, 503, 403], _rules_: [] },
      clusters: clusters(),
      extraHttpFiltersAfter: [rateLimiterFilter, extAuthzFilter()],
      routes,
    });
  });

  test("[pass-through] an authorizer's 403 reaches the client; no backup is called", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { path: "/v1/deny/chat/completions", body: CHAT });
    expect(res.status).toBe(403);
    expect(res.text).toBe("denied by authz");
    expect(authz.checks.length).toBe(1);
    noBackupCalled();
    expect(m.primary.requests.length).toBe(0);
  });

  test("no route: the router's 404 reaches the client and is never replayed (code details route_not_found)", async () => {
    const res = await request(explicit.port, { path: "/internal/keys", headers: { "x-request-id": "no-route-1" }, body: CHAT });
    expect(res.status).toBe(404);
    noBackupCalled();
    { const line = /status=404 \(route_not_found\) passed through: the gateway answered without a route to the model service: never replayed x-request-id=no-route-1/; expect(await explicit.logsWhen(line)).toMatch(line); }
  });

  test("a direct_response is never replayed, whatever its status (code details direct_response)", async () => {
    const denied = await request(explicit.port, { path: "/v1/direct", headers: { "x-request-id": "direct-1" }, body: CHAT });
    expect([denied.status, denied.text]).toEqual([403, "forbidden by gateway"]);
    const busy = await request(explicit.port, { path: "/v1/busy", body: CHAT });
    expect([busy.status, busy.text]).toEqual([503, "maintenance page"]);
    noBackupCalled();
    const line = /status=403 \(direct_response\) passed through: .* x-request-id=direct-1/;
    expect(await explicit.logsWhen(line)).toMatch(line);
  });

  test("a local rate limiter's 429 triggers when listed; a rule that lists only 503 lets it through", async () => {
    await request(envoy.port, { path: "/v1/limited", body: CHAT });
    const limited = await request(envoy.port, { path: "/v1/limited", body: CHAT });
    expect(limited.status).toBe(429);
    noBackupCalled();
    await request(explicit.port, { path: "/v1/limited", body: CHAT });
    const replayed = await request(explicit.port, { path: "/v1/limited", body: CHAT });
    expect(replayed.status).toBe(200);
    expect(replayed.headers["x-ai-fallback-trigger"]).toBe("intercepted=429");
  });

  test("403 listed explicitly: a warning at load, and then an authorizer's 403 is replayed", async () => {
    expect(explicit.logs()).toMatch(/\[warning\].*configuration warning: gatewayTriggerStatuses lists 403: requests the gateway refused/);
    expect(envoy.logs()).not.toMatch(/configuration warning/);
    const res = await request(explicit.port, { path: "/v1/deny/chat/completions", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("intercepted=403");
  });
});

describe("an authorizer that fails closed with 503", () => {
  test("is a refusal, not a busy gateway: never replayed although 503 is listed", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false },
      clusters: { ...clusters(), authz: closedPort },
      extraHttpFiltersAfter: [extAuthzFilter({ status_on_error: { code: "ServiceUnavailable" } })],
    });
    try {
      const res = await request(envoy.port, { headers: { "x-request-id": "authz-error-1" }, body: CHAT });
      expect(res.status).toBe(503);
      noBackupCalled();
      const line = /status=503 \(ext_authz_error\) passed through: an authorisation refusal/;
      expect(await envoy.logsWhen(line)).toMatch(line);
    } finally {
      await envoy.stop();
    }
  });
});

describe("calls Envoy will not make, and a hidden topology", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "no-such-cluster" }, { service: "empty" }, { service: "backup-a" }], hideTopology: true },
      clusters: { ...clusters(), empty: { noEndpoints: true } },
    });
  });

  test("an unknown cluster and a cluster with no healthy host get distinct results and log lines; neither counts as a call", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { headers: { "x-request-id": "refused-1" }, body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    const logs = await envoy.logsWhen(/result=200 x-request-id=refused-1/);
    expect(logs).toMatch(/\[warning\].*backup no-such-cluster could not be called: unknown cluster .* x-request-id=refused-1/);
    expect(logs).toMatch(/\[warning\].*backup empty could not be called: Envoy refused the call at once \(no healthy upstream, or a circuit breaker overflow\) x-request-id=refused-1/);
    expect(logs).toMatch(/primary;result=503, no-such-cluster;model=pass-through;result=unknown_cluster, empty;model=pass-through;result=refused, backup-a;model=pass-through;result=200 x-request-id=refused-1/);
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.backup_calls")).toBe(1);
  });

  test("hideTopology: no cluster names or attempts in headers or in the filter's own error body", async () => {
    m.primary.behave({ status: 503 });
    const served = await request(envoy.port, { body: CHAT });
    expect(served.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(served.headers["x-ai-fallback-service"]).toBeUndefined();
    expect(served.headers["x-ai-fallback-attempts"]).toBeUndefined();
    m.backupA.behave({ status: 500 });
    const resumed = await request(envoy.port, { body: CHAT });
    expect(resumed.status).toBe(500);
    expect(resumed.headers["x-ai-fallback-attempts"]).toBeUndefined();
    m.primary.behave({ hang: true });
    const lonely = await startEnvoy({
      pluginConfig: { backups: [{ service: "no-such-cluster" }], hideTopology: true, firstPacketTimeout: 200 },
      clusters: clusters(),
    });
    try {
      const own = await request(lonely.port, { body: { ...CHAT, stream: true } });
      expect(own.status).toBe(504);
      expect(own.json()).toEqual({ error: { type: "ai_fallback_exhausted", code: 504, message: "every model service failed" } });
      expect(own.text).not.toMatch(/no-such-cluster/);
      expect(Object.keys(own.headers).filter((h) => h.startsWith("x-ai-fallback"))).toEqual(["x-ai-fallback-trigger"]);
      const line = /primary;result=first_packet_timeout, no-such-cluster;model=pass-through;result=unknown_cluster/;
      expect(await lonely.logsWhen(line)).toMatch(line);
    } finally {
      await lonely.stop();
    }
  });
});

describe("the first-packet timer starts when the request left for the primary (ext_authz after the filter)", () => {
  const AUTHZ_DELAY_MS = 1000;
  const FIRST_PACKET_MS = 300;
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a", headers: { authorization: "Bearer backup-key" } }], firstPacketTimeout: FIRST_PACKET_MS },
      clusters: clusters(),
      extraHttpFiltersAfter: [extAuthzFilter()],
    });
  });
  const STREAM = { ...CHAT, stream: true };

  test("slow and denying: the client gets the authorizer's 403 and no backup is called", async () => {
    authz.delayMs = AUTHZ_DELAY_MS;
    const started = Date.now();
    const res = await request(envoy.port, { path: "/v1/deny/chat/completions", body: STREAM });
    expect(res.status).toBe(403);
    expect(res.text).toBe("denied by authz");
    expect(Date.now() - started).toBeGreaterThanOrEqual(AUTHZ_DELAY_MS - 50);
    expect(m.primary.requests.length).toBe(0);
    noBackupCalled();
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.timers")).toBe(0);
  });

  test("slow and allowing, a stalled primary: falls back firstPacketTimeout after the request reached the primary", async () => {
    authz.delayMs = AUTHZ_DELAY_MS;
    m.primary.behave({ hang: true });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM });
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(m.primary.requests.length).toBe(1);
    expect(m.backupA.requests.length).toBe(1);
    // Timed from the primary's start: the authorizer's second is not part of the timeout.
    expect(took).toBeGreaterThanOrEqual(AUTHZ_DELAY_MS + FIRST_PACKET_MS - 50);
    const primaryToBackup = m.backupA.requests[0].receivedAt - m.primary.requests[0].receivedAt;
    expect(primaryToBackup).toBeGreaterThanOrEqual(FIRST_PACKET_MS - 30);
    expect(primaryToBackup).toBeLessThan(FIRST_PACKET_MS + 500);
  });

  test("without a slow filter the timer starts at once (no tick is waited for)", async () => {
    m.primary.behave({ hang: true });
    const started = Date.now();
    const res = await request(envoy.port, { body: STREAM });
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(FIRST_PACKET_MS + 400);
    expect(m.backupA.requests.length).toBe(1);
  });
});
