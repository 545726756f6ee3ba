// The streamed mode's attempt table (docs/reliability.md, docs/streamed-mode.md): keyed by a key the module
// mints into the request's filter state, so a client's x-request-id can neither grow, share nor collide
// with a key; every entry counted in the VM's budget; none left by a request
// whose client went away. Envoy keeps a client's x-request-id when told to (preserve_external_request_id,
// or from trusted addresses): most tests here tell it to, so that the module alone must hold.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { STREAM_CHAT, TWO_BACKUPS, streamedBootstrapFor } = require("../support/streamed_fixtures");
const { sendCancelled } = require("../support/cancelled_requests");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });

// What one kept entry takes from the budget (attempt_log.ts): 320 bytes, and 96 per listed attempt.
const ENTRY_WITH_ONE_ATTEMPT = 320 + 96;
// Envoy's default max_request_headers_kb is 60: the largest id a client can send, with room for the rest.
const MAX_ID_BYTES = 59 * 1024;
const FLAT_BYTES = 16 * 1024 * 1024;
const MiB = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The generated bootstrap with the connection manager told to keep external clients' x-request-id. */
function keepingClientIds(bootstrapFn) {
  return (ports) => {
    const boot = bootstrapFn(ports);
    boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.preserve_external_request_id = true;
    return boot;
  };
}

function rss(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match[1]) * 1024;
}

/** Polls admin /stats until `ready(stats)` (or 5 s), and returns the last stats. */
async function statsWhen(envoy, ready) {
  const until = Date.now() + 5000;
  let stats = await envoy.stats();
  while (!ready(stats) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    stats = await envoy.stats();
  }
  return stats;
}

/**
 * `count` streaming requests, `concurrency` at a time, each with its own `idBytes`-long x-request-id,
 * each closed by its client once `mock` (where they hang) has it. Returns how many reached the mock.
 */
function cancelled(envoy, mock, { from = 0, count, concurrency = 50, idBytes = MAX_ID_BYTES }) {
  const pad = "i".repeat(idBytes - 12);
  return sendCancelled({ port: envoy.port, mock, from, count, concurrency, body: JSON.stringify(STREAM_CHAT),
    requestId: (n) => `${String(n).padStart(10, "0")}-${pad}` });
}

describe("streamed mode's attempt table: clients cannot grow it", () => {
  test("10,000 cancelled streaming requests with the largest ids leave no entry: kept_bytes 0, Envoy's memory flat, no VM failure, and the next fallback works", async () => {
    const envoy = await startEnvoy({ bootstrap: keepingClientIds(streamedBootstrapFor(m, m.primary.port)), componentLogLevel: "wasm:info" });
    try {
      expect(await cancelled(envoy, m.primary, { count: 1000 })).toBe(1000);
      await statsWhen(envoy, (s) => counter(s, "wasmcustom.ai_fallback.kept_bytes") === 0);
      const before = rss(envoy.pid);
      const started = Date.now();
      expect(await cancelled(envoy, m.primary, { from: 1000, count: 10000 })).toBe(10000);
      const seconds = (Date.now() - started) / 1000;
      const stats = await statsWhen(envoy, (s) => counter(s, "wasmcustom.ai_fallback.kept_bytes") === 0);
      const after = rss(envoy.pid);
      console.log(`10,000 cancelled requests with ${MAX_ID_BYTES}-byte ids in ${seconds.toFixed(1)} s: Envoy RSS ${MiB(before)} -> ${MiB(after)}, ` +
        `kept_bytes ${counter(stats, "wasmcustom.ai_fallback.kept_bytes")}`);
      // Each of them would have left an entry for 60 s: none is left, and none is counted.
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
      expect(after - before).toBeLessThan(FLAT_BYTES);
      expect(envoy.logs()).not.toMatch(/proxy_on_\w+ failed|wasm trap|RuntimeError/);
      m.primary.behave({ status: 503 });
      m.backupA.behave({});
      const res = await request(envoy.port, { body: STREAM_CHAT, headers: { "x-request-id": "i".repeat(MAX_ID_BYTES) }, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=backup-model-a;result=200");
    } finally {
      await envoy.stop();
    }
  }, 120000);

  test("an entry no attempt takes (the router could not retry) counts against the budget: 416 bytes for the primary's result", async () => {
    // max_retries 0: the router may not retry, so the primary's result waits for an attempt that never comes.
    const envoy = await startEnvoy({ bootstrap: keepingClientIds(streamedBootstrapFor(m, m.primary.port, TWO_BACKUPS, { maxRetries: 0 })) });
    try {
      m.primary.behave({ status: 503 });
      for (let i = 0; i < 5; i++) {
        const res = await request(envoy.port, { body: STREAM_CHAT, headers: { "x-request-id": "the-same-id" }, timeoutMs: 15000 });
        expect(res.status).toBe(503);
      }
      expect(m.backupA.requests).toHaveLength(0);
      // Five requests with one client id: five entries, each counted.
      const stats = await statsWhen(envoy, (s) => counter(s, "wasmcustom.ai_fallback.kept_bytes") >= 5 * ENTRY_WITH_ONE_ATTEMPT);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(5 * ENTRY_WITH_ONE_ATTEMPT);
    } finally {
      await envoy.stop();
    }
  }, 30000);
});

/**
 * The primary's cluster shared by both routes, as a hand-written layout may have it: requests of other
 * methods reach the primary's filter too, whose configuration does not say retryingRouteOnly.
 */
function sharedPrimaryCluster(bootstrapFn) {
  return (ports) => {
    const boot = bootstrapFn(ports);
    const routes = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    routes[routes.length - 1].route.cluster = "primary";
    const clusters = boot.static_resources.clusters;
    clusters.splice(clusters.findIndex((c) => c.name === "primary-other-methods"), 1);
    const filter = clusters.find((c) => c.name === "primary").typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
      .http_filters.find((f) => f.typed_config.config?.name === "ai-fallback-upstream-primary");
    const config = JSON.parse(filter.typed_config.config.configuration.value);
    delete config.retryingRouteOnly;
    filter.typed_config.config.configuration.value = JSON.stringify(config);
    return boot;
  };
}

describe("streamed mode's attempt table: only requests the route retries leave an entry", () => {
  test("a primary's cluster that requests of other methods share: their failures leave no entry, a POST's does (416 bytes)", async () => {
    // max_retries 0: an entry, once left, stays (no attempt takes it) and shows in kept_bytes.
    const envoy = await startEnvoy({ bootstrap: sharedPrimaryCluster(streamedBootstrapFor(m, m.primary.port, TWO_BACKUPS, { maxRetries: 0 })) });
    try {
      m.primary.behave({ status: 503 });
      for (let i = 0; i < 5; i++) {
        const res = await request(envoy.port, { method: "GET", path: "/v1/models", timeoutMs: 15000 });
        expect(res.status).toBe(503);
      }
      expect(m.primary.requests).toHaveLength(5); // through the primary's own cluster, and its filter
      const res = await request(envoy.port, { body: STREAM_CHAT, timeoutMs: 15000 });
      expect(res.status).toBe(503);
      const stats = await statsWhen(envoy, (s) => counter(s, "wasmcustom.ai_fallback.kept_bytes") >= ENTRY_WITH_ONE_ATTEMPT);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(ENTRY_WITH_ONE_ATTEMPT);
    } finally {
      await envoy.stop();
    }
  }, 30000);
});

describe("streamed mode's attempt table: requests with the same client x-request-id do not mix", () => {
  test("lean mode: a cancelled request's failed backup attempt is not reported by a later request with its id", async () => {
    const envoy = await startEnvoy({ bootstrap: keepingClientIds(streamedBootstrapFor(m, m.primary.port, TWO_BACKUPS, { primaryFilter: false })) });
    try {
      m.primary.behave({ status: 500 });
      // The first request's client leaves while backup-a holds its attempt.
      expect(await cancelled(envoy, m.backupA, { count: 1, concurrency: 1, idBytes: 16 })).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      m.backupA.behave({});
      const res = await request(envoy.port, { body: STREAM_CHAT, headers: { "x-request-id": `${"0".repeat(10)}-${"i".repeat(4)}` }, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=retry, backup-a;model=backup-model-a;result=200");
    } finally {
      await envoy.stop();
    }
  }, 30000);

  test("two concurrent requests with one client id each get their own attempts reported", async () => {
    const envoy = await startEnvoy({ bootstrap: keepingClientIds(streamedBootstrapFor(m, m.primary.port)) });
    try {
      // Both primaries fail at the same moment, each with its own status; backup-a fails both, backup-b answers.
      m.primary.behave((entry) => ({ status: entry.headers["x-case"] === "a" ? 503 : 429, delayHeadersMs: 300 }));
      m.backupA.behave((entry) => ({ status: entry.headers["x-case"] === "a" ? 500 : 502, delayHeadersMs: 200 }));
      m.backupB.behave({});
      const send = (c) => request(envoy.port, { body: STREAM_CHAT, headers: { "x-request-id": "shared", "x-case": c }, timeoutMs: 15000 });
      const [a, b] = await Promise.all([send("a"), send("b")]);
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(a.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=backup-model-a;result=500, backup-b;model=backup-model-b;result=200");
      expect(b.headers["x-ai-fallback-attempts"]).toBe("primary;result=429, backup-a;model=backup-model-a;result=502, backup-b;model=backup-model-b;result=200");
    } finally {
      await envoy.stop();
    }
  }, 30000);
});

describe("streamed mode's generated bootstrap", () => {
  test("Envoy replaces a client's x-request-id (use_remote_address): the backup and the log see Envoy's", async () => {
    const envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port) });
    try {
      m.primary.behave({ status: 503 });
      const res = await request(envoy.port, { body: STREAM_CHAT, headers: { "x-request-id": "chosen-by-the-client" }, timeoutMs: 15000 });
      expect(res.status).toBe(200);
      expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
      const seen = m.backupA.requests[0].headers["x-request-id"];
      expect(seen).toMatch(/^[0-9a-f-]{36}$/);
      expect(m.primary.requests[0].headers["x-request-id"]).toBe(seen);
    } finally {
      await envoy.stop();
    }
  }, 30000);
});
