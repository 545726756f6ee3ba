// Issue 3 end to end: who triggers a fallback, one policy per Model API, per-backup request shaping,
// and what operators are told (headers, metrics, logs).
const { startEnvoy, growth, counter } = require("../support/envoy");
const { startMock } = require("../support/mock_model");
const { request, chunkedRequest } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const { rateLimiterFilter, oneRequestPerHour } = require("../support/http_filters");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let closedPort;

// A port where nothing listens: a primary cluster pointing there is unreachable.
beforeAll(async () => {
  const closed = await startMock("closed");
  closedPort = closed.port;
  await closed.stop();
});

const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port, dead: closedPort, empty: { noEndpoints: true } });

// A held request is let go after REQUEST_HOLD_MS (assembly/dispatch/fallback_root.ts), checked by the 10 ms tick.
const REQUEST_HOLD_MS = 1000;
// A request that is not held goes through in a few ms; half the hold is the margin for a loaded
// 2-core machine, and a request held by mistake still cannot arrive in time.
const NOT_HELD_MS = REQUEST_HOLD_MS / 2;

describe("backend errors only", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: [{ service: "backup-a" }],
        _rules_: [
          { _match_route_: ["limited-off", "direct-off", "free-off", "no-endpoints-off"], backendErrorsOnly: false },
          { _match_route_: ["small-hold"], backendErrorsOnly: false, maxHeldRequestBytes: 1000 },
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
        { name: "no-endpoints", prefix: "/empty", cluster: "empty" },
        { name: "no-endpoints-off", prefix: "/off/empty", cluster: "empty" },
        { name: "route-timeout", prefix: "/slow", cluster: "primary", timeoutMs: 300 },
        { name: "free-off", prefix: "/off/free" },
        { name: "small-hold", prefix: "/off/small-hold" },
        { name: "primary-route", prefix: "/", cluster: "primary" },
      ],
    });
  });

  test("[pass-through] on (default): a rate limiter's 429 reaches the client, no backup is called", async () => {
    const first = await request(envoy.port, { path: "/on/limited", body: CHAT });
    expect(first.status).toBe(200);
    const limited = await request(envoy.port, { path: "/on/limited", headers: { "x-request-id": "limited-on-2" }, body: CHAT });
    expect(limited.status).toBe(429);
    expect(limited.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
  });

  test("off: the rate limiter's 429 falls back like a backend error, with the whole body replayed", async () => {
    await request(envoy.port, { path: "/off/limited", body: CHAT }); // empties the bucket, if still full
    m.backupA.reset();
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
    expect(res.headers["x-ai-fallback-trigger"]).toBe("intercepted=429");
    expect(m.backupA.requests.length).toBe(1);
    const seen = m.backupA.requests[0].body;
    expect(seen.length).toBe(Buffer.byteLength(parts.join("")));
    expect(seen.equals(Buffer.from(parts.join("")))).toBe(true);
  });

  test("off: a body larger than Envoy's buffer is held only up to maxHeldRequestBytes, so it never stalls; a backend error still replays it whole", async () => {
    m.primary.behave({ status: 503 });
    const huge = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "z".repeat(2 * 1024 * 1024) }] });
    const res = await request(envoy.port, { path: "/off/free/v1/chat/completions", body: huge, timeoutMs: 10000 });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
    expect(m.primary.requests[0].body.length).toBe(Buffer.byteLength(huge));
    expect(m.backupA.requests[0].body.equals(Buffer.from(huge))).toBe(true);
  });

  test("[pass-through] off: once its body is copied the request is no longer held: a slow healthy primary is not replaced", async () => {
    // The hold's deadline (REQUEST_HOLD_MS) must go when the hold ends: the primary answers after it.
    m.primary.behave({ delayHeadersMs: REQUEST_HOLD_MS + 400 });
    const res = await request(envoy.port, { path: "/off/free/v1/chat/completions", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
  });

  test("off: a request is held until its body passes maxHeldRequestBytes, then let go before it is complete", async () => {
    m.primary.behave({ status: 503 });
    // 500 bytes (held), 800 more (1300 >= 1000: let go), the rest 300 ms later.
    const parts = ['{"model":"gpt-4o","pad":"' + "a".repeat(475), "b".repeat(800), '","messages":[]}'];
    const res = await chunkedRequest(envoy.port, "/off/small-hold/v1/chat/completions", parts, 300);
    expect(res.status).toBe(200);
    const reached = m.primary.requests[0].receivedAt;
    // Held while only the first piece was there; let go with the second, before the last was sent.
    expect(reached).toBeGreaterThanOrEqual(res.sentAt[1]);
    expect(reached).toBeLessThan(res.sentAt[2]);
    expect(m.backupA.requests[0].body.toString()).toBe(parts.join(""));
  });

  test("off: a gateway reply to a request over maxHeldRequestBytes passes through: its body had not all been copied", async () => {
    await request(envoy.port, { path: "/off/limited", body: CHAT }); // empties the bucket, if still full
    m.backupA.reset();
    const big = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "q".repeat(600 * 1024) }] });
    const res = await request(envoy.port, { path: "/off/limited", headers: { "x-request-id": "over-held-1" }, body: big, timeoutMs: 10000 });
    expect(res.status).toBe(429);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
    const line = /status=429 passed through: the primary answered before the request was complete x-request-id=over-held-1/;
    expect(await envoy.logsWhen(line)).toMatch(line);
  });

  test("off: an Envoy without allow_on_headers_stop_iteration shows no body to a held request: released after 1 s, an error line and a count once per worker", async () => {
    const unset = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false },
      clusters: clusters(),
      allowOnHeadersStopIteration: false,
    });
    const started = Date.now();
    const res = await request(unset.port, { body: CHAT });
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers["x-served-by"]).toBe("primary");
    // Let go at REQUEST_HOLD_MS, found by the 10 ms tick (bench: at most ~14 ms late); 150 ms more is
    // the margin for the request's own path on a loaded 2-core machine.
    expect(took).toBeGreaterThanOrEqual(REQUEST_HOLD_MS);
    expect(took).toBeLessThan(REQUEST_HOLD_MS + 10 + 14 + 150);
    const second = await request(unset.port, { body: CHAT });
    expect(second.status).toBe(200);
    const hint = /\[error\].*allow_on_headers_stop_iteration is not set in this filter's wasm plugin config: Envoy showed it no request body while the request's headers waited/g;
    expect(unset.logs().match(hint)).toHaveLength(1); // one worker (concurrency 1): one error line
    expect(counter(await unset.stats(), "wasmcustom.ai_fallback.pause_not_honoured")).toBe(1);
    await unset.stop();
  });

  test("[pass-through] off: a WebSocket upgrade is a tunnel, not a request to hold or replay", async () => {
    const net = require("node:net");
    const upstream = net.createServer((s) => s.once("data", () =>
      s.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: x\r\n\r\n")));
    const sockets = new Set();
    upstream.on("connection", (s) => sockets.add(s));
    await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
    try {
      const ws = await startEnvoy({
        // GET is replayed here too, so that only the tunnel check keeps the upgrade from being held.
        pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false, methods: ["POST", "GET"] },
        clusters: { ...clusters(), primary: upstream.address().port },
        connectionManager: { upgrade_configs: [{ upgrade_type: "websocket" }] },
      });
      const started = Date.now();
      const statusLine = await new Promise((resolve) => {
        const c = net.connect(ws.port, "127.0.0.1", () => c.write("GET /v1/realtime HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n" +
          "upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        let text = "";
        const timer = setTimeout(() => { c.destroy(); resolve("no answer"); }, 4000);
        c.on("data", (d) => { text += d; if (text.includes("\r\n\r\n")) { clearTimeout(timer); c.destroy(); resolve(text.split("\r\n")[0]); } });
      });
      expect(statusLine).toMatch(/^HTTP\/1\.1 101/);
      expect(Date.now() - started).toBeLessThan(NOT_HELD_MS);
      await ws.stop();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => upstream.close(r));
    }
  });

  test("[pass-through] off: a CONNECT tunnel is left alone: not held, its bytes flow both ways", async () => {
    const net = require("node:net");
    const echo = net.createServer((s) => s.on("data", (d) => s.write(d)));
    const sockets = new Set();
    echo.on("connection", (s) => sockets.add(s));
    await new Promise((r) => echo.listen(0, "127.0.0.1", r));
    let client = null;
    try {
      const tunnel = await startEnvoy({
        // CONNECT is replayed here too, so that only the tunnel check keeps the tunnel from being held.
        pluginConfig: { backups: [{ service: "backup-a" }], backendErrorsOnly: false, methods: ["POST", "CONNECT"] },
        clusters: { ...clusters(), echo: echo.address().port },
        connectionManager: { upgrade_configs: [{ upgrade_type: "CONNECT" }] },
        routes: [{ name: "tunnel", connect: true, cluster: "echo" }, { name: "primary-route", prefix: "/" }],
      });
      const started = Date.now();
      const { head, echoed, headAt } = await new Promise((resolve) => {
        client = net.connect(tunnel.port, "127.0.0.1", () => client.write("CONNECT model.test:443 HTTP/1.1\r\nhost: model.test:443\r\n\r\n"));
        let text = "";
        let headAt = 0;
        const timer = setTimeout(() => resolve({ head: text, echoed: "", headAt: 0 }), 4000);
        client.on("data", (d) => {
          text += d;
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) return;
          if (!headAt) {
            headAt = Date.now() - started;
            client.write("ping through the tunnel");
          }
          const rest = text.slice(end + 4);
          if (rest.length >= "ping through the tunnel".length) {
            clearTimeout(timer);
            resolve({ head: text.slice(0, end), echoed: rest, headAt });
          }
        });
      });
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      expect(echoed).toBe("ping through the tunnel");
      expect(headAt).toBeLessThan(NOT_HELD_MS);
      await tunnel.stop();
    } finally {
      if (client) client.destroy();
      for (const s of sockets) s.destroy();
      await new Promise((r) => echo.close(r));
    }
  });

  test("[pass-through] a direct_response never triggers, even with the switch off", async () => {
    for (const path of ["/on/direct", "/off/direct"]) {
      const res = await request(envoy.port, { path, body: CHAT });
      expect([path, res.status, res.text]).toEqual([path, 403, "forbidden by gateway"]);
      expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    }
    expect(m.backupA.requests.length).toBe(0);
  });

  test("an unreachable primary (closed port) falls back even with the switch on", async () => {
    const res = await request(envoy.port, { path: "/dead/v1/chat/completions", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
  });

  test("a primary that resets the connection before answering falls back (Envoy's 503)", async () => {
    m.primary.behave({ reset: true });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
  });

  test("a primary past its route timeout falls back (Envoy's 504)", async () => {
    m.primary.behave({ delayHeadersMs: 2000 });
    const res = await request(envoy.port, { path: "/slow/v1/chat/completions", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/^primary;result=timeout, /);
  });

  test("a primary cluster with no healthy host falls back (Envoy's 503 no_healthy_upstream); with a body, only when the request is held", async () => {
    // Envoy's router answers no_healthy_upstream at the request's headers, before any body has passed.
    const bodiless = await request(envoy.port, { method: "POST", path: "/empty/v1/chat/completions" });
    expect(bodiless.status).toBe(200);
    expect(bodiless.json().served_by).toBe("backup-a");
    expect(bodiless.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    // backendErrorsOnly on: nothing holds the body back, so there is none to replay.
    const unheld = await request(envoy.port, { path: "/empty/v1/chat/completions", headers: { "x-request-id": "no-host-1" }, body: CHAT });
    expect(unheld.status).toBe(503);
    expect(unheld.text).toBe("no healthy upstream");
    const line = /status=503 passed through: the primary answered before the request was complete x-request-id=no-host-1/;
    expect(await envoy.logsWhen(line)).toMatch(line);
    // backendErrorsOnly off: the request waits for its body, which is then replayed.
    const held = await request(envoy.port, { path: "/off/empty/v1/chat/completions", body: CHAT });
    expect(held.status).toBe(200);
    expect(held.headers["x-ai-fallback-trigger"]).toBe("upstream_failure");
    expect(JSON.parse(m.backupA.requests[m.backupA.requests.length - 1].body)).toEqual(CHAT);
  });

  test("each trigger has its counter", async () => {
    await request(envoy.port, { path: "/off/limited", body: CHAT }); // empties the bucket, if still full
    const before = await envoy.stats();
    expect((await request(envoy.port, { path: "/dead/v1/chat/completions", body: CHAT })).status).toBe(200);
    expect((await request(envoy.port, { path: "/off/limited", body: CHAT })).status).toBe(200);
    m.primary.behave({ status: 503 });
    expect((await request(envoy.port, { body: CHAT })).status).toBe(200);
    const grew = growth(before, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.trigger.upstream_failure")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.intercepted")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.status")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.first_packet_timeout")).toBe(0);
    expect(grew("wasmcustom.ai_fallback.started")).toBe(3);
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
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-a;model=pass-through;result=timeout, backup-b/);
    // Envoy's own timer ends backup-a's call 800 ms after dispatch (after the client sent), and
    // backup-b is called at once: it receives the replay at most 800 ms plus a 100 ms margin for a
    // loaded 2-core machine (idle: a few ms) after backup-a did.
    expect(Date.now() - started).toBeGreaterThanOrEqual(800 - 10); // Envoy timers may fire a few ms early (cached loop time)
    const gap = m.backupB.requests[0].receivedAt - m.backupA.requests[0].receivedAt;
    expect(gap).toBeLessThan(800 + 100);
  });
});

describe("telling the operator", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ pluginConfig: { backups: [{ service: "backup-a" }, { service: "backup-b" }] }, clusters: clusters() });
  });

  test("counters for started, served, exhausted and by trigger reach /stats and /stats/prometheus", async () => {
    const before = await envoy.stats();
    const promBefore = await envoy.statsPrometheus();
    m.primary.behave({ status: 503 });
    await request(envoy.port, { body: CHAT });
    m.backupA.behave({ status: 500 });
    m.backupB.behave({ status: 500 });
    await request(envoy.port, { body: CHAT });
    m.primary.behave({});
    await request(envoy.port, { body: CHAT });
    const grew = growth(before, await envoy.stats());
    expect(grew("wasmcustom.ai_fallback.started")).toBe(2);
    expect(grew("wasmcustom.ai_fallback.served_by_backup")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.exhausted")).toBe(1);
    expect(grew("wasmcustom.ai_fallback.trigger.status")).toBe(2);
    expect(grew("wasmcustom.ai_fallback.backup_calls")).toBe(3);
    const promValue = (text, name) => {
      const line = text.split("\n").find((l) => new RegExp(`^${name}(\\{.*\\})? `).test(l));
      if (!line) throw new Error(`/stats/prometheus has no ${name}`);
      return Number(line.split(" ").pop());
    };
    const prom = await envoy.statsPrometheus();
    expect(promValue(prom, "ai_fallback_started") - promValue(promBefore, "ai_fallback_started")).toBe(2);
    expect(promValue(prom, "ai_fallback_served_by_backup") - promValue(promBefore, "ai_fallback_served_by_backup")).toBe(1);
  });

  test("one info line per fallback decision with the request id; nothing above debug on the happy path", async () => {
    const settle = () => new Promise((r) => setTimeout(r, 200));
    m.primary.behave({ status: 502 });
    await request(envoy.port, { headers: { "x-request-id": "decision-1" }, body: CHAT });
    await settle();
    const decision = envoy.logs().split("\n").filter((l) => l.includes("decision-1"));
    expect(decision.length).toBe(1);
    expect(decision[0]).toMatch(/\[info\]\[wasm\].*fallback: served by backup-a \(model pass-through\); trigger status=502; attempts primary;result=502, backup-a;model=pass-through;result=200 x-request-id=decision-1/);
    const before = envoy.logs().length;
    m.primary.behave({});
    for (let i = 0; i < 3; i++) await request(envoy.port, { headers: { "x-request-id": "happy-" + i }, body: CHAT });
    await settle();
    const after = envoy.logs().slice(before).split("\n");
    expect(after.filter((l) => l.includes("[wasm]") && /\]\[(info|warning|error|critical)\]/.test(l))).toEqual([]);
  });

  test("the decision line follows Envoy's wasm log level as the admin interface changes it (its text is built only when written)", async () => {
    const quiet = await startEnvoy({ pluginConfig: { backups: [{ service: "backup-a" }] }, clusters: clusters(), componentLogLevel: "wasm:warning" });
    try {
      const setLevel = (level) => new Promise((resolve, reject) => {
        const req = require("node:http").request({ host: "127.0.0.1", port: quiet.adminPort, method: "POST", path: `/logging?wasm=${level}` },
          (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
        req.on("error", reject);
        req.end();
      });
      const settle = () => new Promise((r) => setTimeout(r, 200));
      m.primary.behave({ status: 502 });
      await request(quiet.port, { headers: { "x-request-id": "at-warning" }, body: CHAT });
      expect(await setLevel("info")).toBe(200);
      await request(quiet.port, { headers: { "x-request-id": "at-info" }, body: CHAT });
      await settle();
      expect(quiet.logs()).not.toMatch(/x-request-id=at-warning/);
      expect(quiet.logs()).toMatch(/\[info\]\[wasm\].*fallback: served by backup-a \(model pass-through\); trigger status=502; attempts primary;result=502, backup-a;model=pass-through;result=200 x-request-id=at-info/);
    } finally {
      await quiet.stop();
    }
  });
});
