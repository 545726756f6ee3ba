// Nothing a client sends may crash the filter: the VM's real memory cap, a flood of large requests
// on one worker, many mixed faults, streams that end before reaching the filter, and Envoy
// reloading a VM that failed anyway (defense in depth).
const http = require("node:http");
const path = require("node:path");
const { startEnvoy, counter } = require("../support/envoy");
const { startMock, stopAllMocks } = require("../support/mock_model");
const { stopAllEnvoys } = require("../support/envoy");
const { request } = require("../support/client");

const PROBE = path.join(__dirname, "..", "..", "..", "build", "vm_probe.wasm");
const VM_FAILED = /Function: proxy_on_\w+ failed|wasm trap|RuntimeError/;

let primary;
let backup;
beforeAll(async () => {
  primary = await startMock("primary", { recordBodies: false });
  backup = await startMock("backup", { recordBodies: false });
});
beforeEach(() => {
  for (const m of [primary, backup]) m.reset();
});
afterAll(async () => {
  await stopAllEnvoys();
  await stopAllMocks();
});

/** A JSON chat request of exactly `size` bytes. */
function bigBody(size) {
  const body = Buffer.alloc(size, 0x61);
  const head = '{"model":"m","messages":[{"role":"user","content":"';
  body.write(head, 0);
  body.write('"}]}', size - 4);
  return body;
}

describe("the V8 VM's memory cap (measured with a test-only probe module)", () => {
  test("a VM's memory grows to 16384 pages (1 GiB) and no further", async () => {
    const envoy = await startEnvoy({ wasmPath: PROBE, pluginConfig: "{}", clusters: { primary: primary.port } });
    try {
      const r = await request(envoy.port, { method: "GET", headers: { "x-grow": "1" } });
      expect(r.status).toBe(200);
      expect(counter(await envoy.stats(), "wasmcustom.vm_probe.max_pages")).toBe(16384);
    } finally {
      await envoy.stop();
    }
  });
});

describe("failure_policy: FAIL_RELOAD", () => {
  const probeAfterTrap = async (pluginOptions) => {
    const envoy = await startEnvoy({ wasmPath: PROBE, pluginConfig: "{}", clusters: { primary: primary.port }, pluginOptions });
    try {
      expect((await request(envoy.port, { method: "GET" })).status).toBe(200);
      const trapped = await request(envoy.port, { method: "GET", headers: { "x-trap": "1" } });
      // Envoy's log line may reach us a moment after the response.
      for (let i = 0; i < 40 && !VM_FAILED.test(envoy.logs()); i++) await new Promise((r) => setTimeout(r, 25));
      expect(envoy.logs()).toMatch(VM_FAILED);
      const statuses = [trapped.status];
      for (let i = 0; i < 15; i++) {
        await new Promise((r) => setTimeout(r, 100));
        statuses.push((await request(envoy.port, { method: "GET" })).status);
      }
      return statuses;
    } finally {
      await envoy.stop();
    }
  };

  test("a worker whose VM failed serves again once Envoy has reloaded the VM", async () => {
    const statuses = await probeAfterTrap({ failure_policy: "FAIL_RELOAD", reload_config: { backoff: { base_interval: "0.2s" } } });
    expect(statuses[0]).toBe(503);
    expect(statuses.slice(-5)).toEqual([200, 200, 200, 200, 200]);
  });

  test("without it (Envoy's default, fail closed) that worker answers 503 to everything afterwards", async () => {
    const statuses = await probeAfterTrap({});
    expect(new Set(statuses)).toEqual(new Set([503]));
  });
});

describe("150 concurrent 4 MiB requests on one worker with a slow primary", () => {
  test("no VM failure, one response each, over-budget requests pass through, and the worker falls back normally afterwards", async () => {
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup", model: "backup-model" }] },
      clusters: { primary: primary.port, backup: backup.port },
      routeTimeoutMs: 60000,
      componentLogLevel: "wasm:info",
    });
    try {
      primary.behave({ status: 503, delayHeadersMs: 1500 });
      const body = bigBody(4 * 1024 * 1024 + 1024);
      const results = await Promise.all(Array.from({ length: 150 }, (_, i) =>
        request(envoy.port, { body, headers: { "content-type": "application/json", "x-request-id": `big-${i}` }, timeoutMs: 45000 })));
      expect(envoy.logs()).not.toMatch(VM_FAILED);
      // Exactly one complete HTTP response each: the backup's, or (past the budget) the primary's 503.
      for (const r of results) {
        expect(r.error).toBeUndefined();
        expect([200, 503]).toContain(r.status);
        expect(r.headers["x-served-by"]).toBe(r.status === 200 ? "backup" : "primary");
      }
      const served = results.filter((r) => r.status === 200).length;
      const stats = await envoy.stats();
      // The default budget (256 MiB) holds about 60 such copies at once; the rest were counted.
      expect(served).toBeGreaterThanOrEqual(40);
      expect(counter(stats, "wasmcustom.ai_fallback.over_budget")).toBe(150 - served);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
      expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
      expect(backup.requests.length).toBe(served);
      expect(backup.requests.every((e) => e.bodyLength > 4 * 1024 * 1024)).toBe(true);
      // The log says so at most about once a second, not once a request.
      expect((envoy.logs().match(/over the memory budget \(maxKeptBytesPerWorker/g) ?? []).length).toBeLessThan(10);

      primary.behave({ status: 503 });
      const after = await request(envoy.port, { body: { model: "m", messages: [] } });
      expect(after.status).toBe(200);
      expect(after.headers["x-ai-fallback-service"]).toBe("backup");
    } finally {
      await envoy.stop();
    }
  });
});

/**
 * Sends `total` requests, `concurrency` at a time, over kept-alive connections; `make(i)` gives each
 * one's { headers, body }. Resolves with [{ status, headers, error }] in request order.
 */
async function load(port, total, concurrency, make) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const results = new Array(total);
  let next = 0;
  const one = (i) => new Promise((resolve) => {
    const { headers, body } = make(i);
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", agent,
      headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers }));
      res.on("error", () => resolve({ status: res.statusCode, headers: res.headers, error: "reset" }));
    });
    req.setTimeout(30000, () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ status: 0, headers: {}, error: err.message }));
    req.end(body);
  });
  const worker = async () => {
    while (next < total) {
      const i = next++;
      results[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return results;
}

describe("10,000 requests, 200 at a time, 30% of them with a primary fault", () => {
  test("every one is answered 200; each faulty one was replayed to the backup exactly once", async () => {
    const FAULTS = ["429", "500", "503", "reset", "hang"];
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup", model: "backup-model" }] },
      clusters: { primary: primary.port, backup: backup.port },
      // A hanging primary is cut by the route timeout (Envoy answers 504 itself: an upstream failure).
      routeTimeoutMs: 2000,
      componentLogLevel: "wasm:warn",
    });
    try {
      primary.behave((req) => {
        switch (req.headers["x-fault"]) {
          case undefined: return {};
          case "reset": return { reset: true };
          case "hang": return { hang: true };
          default: return { status: Number(req.headers["x-fault"]) };
        }
      });
      // A fixed pseudo-random pattern (same every run): 30% faulty, spread over the five kinds.
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      const faults = Array.from({ length: 10000 }, () => (rand() < 0.3 ? FAULTS[Math.floor(rand() * FAULTS.length)] : null));
      const results = await load(envoy.port, faults.length, 200, (i) => ({
        headers: { "x-request-id": `load-${i}`, ...(faults[i] ? { "x-fault": faults[i] } : {}) },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: `question ${i}` }] }),
      }));
      const replays = new Map();
      for (const e of backup.requests) replays.set(e.headers["x-request-id"], (replays.get(e.headers["x-request-id"]) ?? 0) + 1);
      const wrong = [];
      results.forEach((r, i) => {
        const by = faults[i] ? "backup" : "primary";
        const replayed = replays.get(`load-${i}`) ?? 0;
        if (r.error || r.status !== 200 || r.headers["x-served-by"] !== by || replayed !== (faults[i] ? 1 : 0)) {
          wrong.push({ i, fault: faults[i], status: r.status, error: r.error, by: r.headers["x-served-by"], replayed, attempts: r.headers["x-ai-fallback-attempts"] });
        }
      });
      expect(wrong.slice(0, 5)).toEqual([]);
      const faulty = faults.filter(Boolean).length;
      expect(faulty).toBeGreaterThan(2800);
      for (const kind of FAULTS) expect(faults.filter((f) => f === kind).length).toBeGreaterThan(450);
      expect(backup.requests.length).toBe(faulty);
      expect(envoy.logs()).not.toMatch(VM_FAILED);
      const stats = await envoy.stats();
      expect(counter(stats, "wasmcustom.ai_fallback.served_by_backup")).toBe(faulty);
      expect(counter(stats, "wasmcustom.ai_fallback.pending_backup_calls")).toBe(0);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    } finally {
      await envoy.stop();
    }
  }, 120000);
});

describe("nothing outlives its stream", () => {
  test("requests answered before this filter (Envoy 1.40 calls proxy_on_log, then proxy_on_delete) leave no stream behind", async () => {
    const LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
    const envoy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup" }] },
      clusters: { primary: primary.port, backup: backup.port },
      // A rate limiter before the wasm filter that lets nothing through.
      extraHttpFilters: [{
        name: "envoy.filters.http.local_ratelimit",
        typed_config: {
          "@type": LIMIT_TYPE, stat_prefix: "limiter",
          token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: "3600s" },
          filter_enabled: { default_value: { numerator: 100, denominator: "HUNDRED" } },
          filter_enforced: { default_value: { numerator: 100, denominator: "HUNDRED" } },
        },
      }],
    });
    try {
      const results = [];
      for (let i = 0; i < 4; i++) {
        results.push(...await Promise.all(Array.from({ length: 50 }, () => request(envoy.port, { body: { model: "m" } }))));
      }
      expect(results.filter((r) => r.status === 429).length).toBe(199);
      // The gauges are summed with +1/-1 from the VM; wait for the last stream's end to be counted.
      let stats = await envoy.stats();
      for (let i = 0; i < 20 && counter(stats, "wasmcustom.ai_fallback.streams") !== 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        stats = await envoy.stats();
      }
      expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
      expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    } finally {
      await envoy.stop();
    }
  });
});
