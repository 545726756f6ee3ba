// Issue 3 end to end: who triggers a fallback, one policy per Model API, per-backup request shaping,
// and what operators are told (headers, metrics, logs).
const { startEnvoy, counter } = require("./envoy");
const { startMock } = require("./mock_model");
const { request, chunkedRequest } = require("./client");
const { useMocks } = require("./fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

// A local rate limiter after the wasm filter; routes opt in with a one-token bucket of their own.
const rateLimiterFilter = { name: "envoy.filters.http.local_ratelimit", typed_config: { "@type": LIMIT_TYPE, stat_prefix: "limiter" } };
const oneRequestPerHour = {
  "envoy.filters.http.local_ratelimit": {
    "@type": LIMIT_TYPE,
    stat_prefix: "limiter",
    token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: "3600s" },
    filter_enabled: { default_value: { numerator: 100, denominator: "HUNDRED" } },
    filter_enforced: { default_value: { numerator: 100, denominator: "HUNDRED" } },
  },
};

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let closedPort;

// A port where nothing listens: a primary cluster pointing there is unreachable.
beforeAll(async () => {
  const closed = await startMock("closed");
  closedPort = closed.port;
  await closed.stop();
});

const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port, dead: closedPort });

describe("backend errors only", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [{ service: "backup-a" }],
        _rules_: [
          { _match_route_: ["limited-off", "direct-off", "free-off"], backendErrorsOnly: false },
        ],
      },
      clusters: clusters(),
      extraHttpFiltersAfter: [rateLimiterFilter],
      routes: [
        { name: "limited-on", prefix: "/on/limited", typedPerFilterConfig: oneRequestPerHour },
        { name: "limited-off", prefix: "/off/limited", typedPerFilterConfig: oneRequestPerHour },
        { name: "direct-on", prefix: "/on/direct", directResponse: { status: 403, body: "forbidden by gateway" } },
        { name: "direct-off", prefix: "/off/direct", directResponse: { status: 403, body: "forbidden by gateway" } },
        { name: "dead-primary", prefix: "/dead", cluster: "dead" },
        { name: "free-off", prefix: "/off/free" },
        { name: "primary-route", prefix: "/", cluster: "primary" },
      ],
    });
  });

  test("on (default): a rate limiter's 429 reaches the client, no backup is called", async () => {
    const first = await request(envoy.port, { path: "/on/limited", body: CHAT });
    expect(first.status).toBe(200);
    const limited = await request(envoy.port, { path: "/on/limited", headers: { "x-request-id": "limited-on-2" }, body: CHAT });
    expect(limited.status).toBe(429);
    expect(limited.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
  });

  test("off: the rate limiter's 429 falls back like a backend error, with the whole body replayed", async () => {
    await request(envoy.port, { path: "/off/limited", body: CHAT });
    const limited = await request(envoy.port, { path: "/off/limited", body: CHAT });
    expect(limited.status).toBe(200);
    expect(limited.json().served_by).toBe("backup-a");
    expect(limited.headers["x-ai-fallback-trigger"]).toBe("intercepted=429");
    expect(m.backupA.requests.length).toBe(1);
    expect(JSON.parse(m.backupA.requests[0].body)).toEqual(CHAT);
  });

  test("off: a body streamed in pieces is held until complete and replayed byte for byte", async () => {
    await request(envoy.port, { path: "/off/limited", body: CHAT }); // empties the bucket, if still full
    m.backupA.reset();
    const parts = ['{"model":"gpt-4o",', '"messages":[{"role":"user",', '"content":"' + "x".repeat(70000) + '"}]}'];
    const res = await chunkedRequest(envoy.port, "/off/limited", parts, 100);
    expect(res.status).toBe(200);
    expect(m.backupA.requests.length).toBe(1);
    const seen = m.backupA.requests[0].body;
    expect(seen.length).toBe(Buffer.byteLength(parts.join("")));
    expect(seen.equals(Buffer.from(parts.join("")))).toBe(true);
  });

  test("off: a body larger than Envoy's buffer is held only up to maxHeldRequestBytes, so it never stalls", async () => {
    m.primary.behave({});
    const huge = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "z".repeat(2 * 1024 * 1024) }] });
    const res = await request(envoy.port, { path: "/off/free/v1/chat/completions", body: huge, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(m.primary.requests[0].body.length).toBe(Buffer.byteLength(huge));
  });

  test("off: an Envoy without allow_on_headers_stop_iteration shows no body to a held request: released after 1 s, with a hint", async () => {
    const unset = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false },
      clusters: clusters(),
      allowOnHeadersStopIteration: false,
    });
    const started = Date.now();
    const res = await request(unset.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(Date.now() - started).toBeLessThan(3000);
    expect(unset.logs()).toMatch(/a request held for its body got none in 1000 ms; with backendErrorsOnly: false, set allow_on_headers_stop_iteration: true/);
    await unset.stop();
  });

  test("off: a WebSocket upgrade is a tunnel, not a request to hold or replay", async () => {
    const net = require("node:net");
    const upstream = net.createServer((s) => s.once("data", () =>
      s.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: x\r\n\r\n")));
    const sockets = new Set();
    upstream.on("connection", (s) => sockets.add(s));
    await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
    try {
      const ws = await startEnvoy({
        pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false },
        clusters: { ...clusters(), primary: upstream.address().port },
        connectionManager: { upgrade_configs: [{ upgrade_type: "websocket" }] },
      });
      const statusLine = await new Promise((resolve) => {
        const c = net.connect(ws.port, "127.0.0.1", () => c.write("GET /v1/realtime HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n" +
          "upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        let text = "";
        const timer = setTimeout(() => { c.destroy(); resolve("no answer"); }, 4000);
        c.on("data", (d) => { text += d; if (text.includes("\r\n\r\n")) { clearTimeout(timer); c.destroy(); resolve(text.split("\r\n")[0]); } });
      });
      expect(statusLine).toMatch(/^HTTP\/1\.1 101/);
      await ws.stop();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => upstream.close(r));
    }
  });

  test("a direct_response is intercepted too: passes when on, falls back when off", async () => {
    const on = await request(envoy.port, { path: "/on/direct", body: CHAT });
    expect(on.status).toBe(403);
    expect(on.text).toBe("forbidden by gateway");
    const off = await request(envoy.port, { path: "/off/direct", body: CHAT });
    expect(off.status).toBe(200);
    expect(off.headers["x-ai-fallback-trigger"]).toBe("intercepted=403");
  });

  test("an unreachable primary (closed port) falls back even with the switch on", async () => {
    const res = await request(envoy.port, { path: "/dead/v1/chat/completions", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure=503");
  });

  test("each trigger has its counter", async () => {
    const stats = await envoy.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.trigger.upstream_failure")).toBe(1);
    expect(counter(stats, "wasmcustom.ai_fallback.trigger.intercepted")).toBeGreaterThanOrEqual(3);
    expect(counter(stats, "wasmcustom.ai_fallback.trigger.status")).toBe(0);
  });
});

describe("trigger statuses and one policy per Model API", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [{ service: "backup-a" }],
        triggerStatuses: [429, "5xx"],
        _rules_: [
          { _match_route_: ["chat-b"], backups: [{ service: "backup-b", model: "qwen-max-通义" }] },
          { _match_domain_: ["*.models.test"], backups: [{ service: "backup-b" }, { service: "backup-a" }], triggerStatuses: ["4xx"] },
          { _match_service_: ["outbound|443||primary-b.dns"], backups: [{ service: "backup-b", model: "by-service" }] },
        ],
      },
      clusters: { ...clusters(), "outbound|443||primary-b.dns": m.primary.port },
      routes: [
        { name: "chat-svc", prefix: "/svc/", cluster: "outbound|443||primary-b.dns" },
        { name: "chat-a", prefix: "/a/" },
        { name: "chat-b", prefix: "/b/" },
        { name: "chat-default", prefix: "/" },
      ],
    });
  });

  test("a status outside the list passes through; one inside falls back", async () => {
    m.primary.behave({ status: 401, body: "no key" });
    const passed = await request(envoy.port, { path: "/a/chat", body: CHAT });
    expect(passed.status).toBe(401);
    expect(passed.text).toBe("no key");
    m.primary.behave({ status: 429 });
    const fell = await request(envoy.port, { path: "/a/chat", body: CHAT });
    expect(fell.status).toBe(200);
    expect(fell.json().served_by).toBe("backup-a");
  });

  test("two routes, two backup lists", async () => {
    m.primary.behave({ status: 503 });
    const a = await request(envoy.port, { path: "/a/chat", body: CHAT });
    const b = await request(envoy.port, { path: "/b/chat", body: CHAT });
    expect(a.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(b.headers["x-ai-fallback-service"]).toBe("backup-b");
    // Header values travel as bytes: the model's UTF-8 bytes exactly (node reads them as latin1).
    expect(Buffer.from(b.headers["x-ai-fallback-model"], "latin1").toString("utf8")).toBe("qwen-max-通义");
    expect(JSON.parse(m.backupB.requests[0].body).model).toBe("qwen-max-通义");
  });

  test("a service rule (Higress _match_service_) matches the route's upstream cluster", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { path: "/svc/chat", body: CHAT });
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
    expect(res.headers["x-ai-fallback-model"]).toBe("by-service");
  });

  test("a domain rule applies its own list and statuses", async () => {
    m.primary.behave({ status: 401 });
    m.backupB.behave({ status: 500 });
    const res = await request(envoy.port, { path: "/any", headers: { host: "eu.models.test:8080" }, body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=401, backup-b;model=pass-through;result=500, backup-a;model=pass-through;result=200");
  });
});

describe("_rules_ as Higress's controller writes them", () => {
  // Istio-style cluster names and Higress route names; the configuration carries _plugin_id_ and
  // rules written the way Higress's console writes them (FQDN services, "namespace/name" routes).
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [{ service: "outbound|443||backup-a.dns" }],
        _plugin_id_: "ai-fallback-1.0.0",
        _rules_: [
          { backups: [{ service: "outbound|443||backup-b.dns", model: "by-route" }], _match_route_: ["default/chat-gpt4o"] },
          { backups: [{ service: "outbound|443||backup-b.dns", model: "by-service" }], _match_service_: ["llm-b.internal.dns:80"] },
          { backups: [{ service: "outbound|443||backup-b.dns", model: "by-domain" }], _match_domain_: ["api.*"] },
        ],
      },
      primaryCluster: "outbound|443||primary.dns",
      clusters: {
        "outbound|443||primary.dns": m.primary.port,
        "outbound|80||llm-b.internal.dns": m.primary.port,
        "outbound|443||backup-a.dns": m.backupA.port,
        "outbound|443||backup-b.dns": m.backupB.port,
      },
      routes: [
        { name: "default/chat-gpt4o", prefix: "/gpt4o/" },
        { name: "ai-route-b.internal", prefix: "/b/", cluster: "outbound|80||llm-b.internal.dns" },
        { name: "default/other", prefix: "/" },
      ],
    });
  });

  test.each([
    ["a route rule (ingress)", "/gpt4o/chat", "gw.test", "by-route"],
    ["a service rule by FQDN and port", "/b/chat", "gw.test", "by-service"],
    ["a domain rule with a trailing *", "/x", "api.models.test:8080", "by-domain"],
  ])("%s picks its own backups", async (_, path, host, model) => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { path, headers: { host }, body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("outbound|443||backup-b.dns");
    expect(res.headers["x-ai-fallback-model"]).toBe(model);
  });

  test("an unmatched request gets the global backups", async () => {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { path: "/x", headers: { host: "gw.test" }, body: CHAT });
    expect(res.headers["x-ai-fallback-service"]).toBe("outbound|443||backup-a.dns");
  });
});

describe("per-backup request shaping", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [
          { service: "backup-a", path: "/compatible-mode/v1/chat/completions", authority: "dashscope.test", timeout: 800,
            headers: { Authorization: "Bearer backup-key", "x-provider": "qwen" } },
          { service: "backup-b" },
        ],
      },
      clusters: clusters(),
    });
  });

  test("a backup with its own credentials gets them, never the client's", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 500 });
    const res = await request(envoy.port, {
      headers: { authorization: "Bearer client-key", "x-api-key": "client-key-2", "x-trace": "t1" },
      body: CHAT,
    });
    expect(res.status).toBe(200);
    const a = m.backupA.requests[0];
    expect(a.path).toBe("/compatible-mode/v1/chat/completions");
    expect(a.headers.host).toBe("dashscope.test");
    expect(a.headers.authorization).toBe("Bearer backup-key");
    expect(a.headers["x-api-key"]).toBeUndefined();
    expect(a.headers["x-provider"]).toBe("qwen");
    expect(a.headers["x-trace"]).toBe("t1");
    expect(JSON.stringify(a.rawHeaders)).not.toMatch(/client-key/);
    // A backup without its own credentials gets the client's request as it was.
    const b = m.backupB.requests[0];
    expect(b.path).toBe("/v1/chat/completions");
    expect(b.headers.authorization).toBe("Bearer client-key");
    expect(b.headers["x-api-key"]).toBe("client-key-2");
  });

  test("each backup has its own timeout", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ hang: true });
    const started = Date.now();
    const res = await request(envoy.port, { body: CHAT });
    const took = Date.now() - started;
    expect(res.json().served_by).toBe("backup-b");
    expect(took).toBeGreaterThanOrEqual(750);
    expect(took).toBeLessThan(5000);
  });
});

describe("telling the operator", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ pluginConfig: { backups: [{ service: "backup-a" }, { service: "backup-b" }] }, clusters: clusters() });
  });

  test("counters for started, served, exhausted and by trigger reach /stats and /stats/prometheus", async () => {
    m.primary.behave({ status: 503 });
    await request(envoy.port, { body: CHAT });
    m.backupA.behave({ status: 500 });
    m.backupB.behave({ status: 500 });
    await request(envoy.port, { body: CHAT });
    m.primary.behave({});
    await request(envoy.port, { body: CHAT });
    const stats = await envoy.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.started")).toBe(2);
    expect(counter(stats, "wasmcustom.ai_fallback.served_by_backup")).toBe(1);
    expect(counter(stats, "wasmcustom.ai_fallback.exhausted")).toBe(1);
    expect(counter(stats, "wasmcustom.ai_fallback.trigger.status")).toBe(2);
    expect(counter(stats, "wasmcustom.ai_fallback.backup_calls")).toBe(3);
    const prom = await envoy.statsPrometheus();
    expect(prom).toMatch(/^ai_fallback_started\{?.*\}? 2$/m);
    expect(prom).toMatch(/^ai_fallback_served_by_backup\{?.*\}? 1$/m);
  });

  test("one info line per fallback decision with the request id; nothing above debug on the happy path", async () => {
    const settle = () => new Promise((r) => setTimeout(r, 200));
    m.primary.behave({ status: 502 });
    await request(envoy.port, { headers: { "x-request-id": "decision-1" }, body: CHAT });
    await settle();
    const decision = envoy.logs().split("\n").filter((l) => l.includes("decision-1"));
    expect(decision.length).toBe(1);
    expect(decision[0]).toMatch(/\[info\]\[wasm\].*status=502 -> served by backup-a attempts: primary;result=502, backup-a;model=pass-through;result=200 x-request-id=decision-1/);
    const before = envoy.logs().length;
    m.primary.behave({});
    for (let i = 0; i < 3; i++) await request(envoy.port, { headers: { "x-request-id": "happy-" + i }, body: CHAT });
    await settle();
    const after = envoy.logs().slice(before).split("\n");
    expect(after.filter((l) => l.includes("[wasm]") && /\]\[(info|warning|error|critical)\]/.test(l))).toEqual([]);
  });
});
