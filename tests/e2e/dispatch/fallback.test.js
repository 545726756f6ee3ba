// Issue 2 end to end in a real Envoy: the primary's error is replaced by the first good backup answer.
const { startEnvoy, counter, growth } = require("../support/envoy");
const { request, chunkedRequest } = require("../support/client");
const { useMocks } = require("../support/fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
let envoy;

beforeAll(async () => {
  envoy = await startEnvoy({
    pluginConfig: {
      backups: [
        { service: "backup-a", timeout: 1500 },
        { service: "missing-cluster" },
        { service: "backup-b", model: "qwen-plus" },
      ],
      maxRequestBodyBytes: 4096,
    },
    clusters: { primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port },
  });
});

describe("fallback in a real Envoy", () => {
  test.each([500, 503, 429, 400])("primary %i: the client gets the first backup's answer", async (status) => {
    m.primary.behave({ status, json: { error: { message: "primary failed" } } });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-served-by"]).toBe("backup-a");
    expect(res.headers["content-type"]).toBe("application/json");
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
    expect(names.filter((h) => h === "content-type" || h === "content-length")).toEqual(["content-type", "content-length"].filter((h) => names.includes(h)));
    expect(names.filter((h) => h === "content-type").length).toBe(1);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(res.headers["x-ai-fallback-model"]).toBe("gpt-4o");
    expect(res.headers["x-ai-fallback-trigger"]).toBe(`status=${status}`);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(`primary;result=${status}, backup-a;model=pass-through;result=200`);
    expect(m.primary.requests.length).toBe(1);
    expect(m.backupA.requests.length).toBe(1);
    expect(m.backupB.requests.length).toBe(0);
  });

  test("[pass-through] a 2xx primary answer passes through untouched: same bytes, same headers", async () => {
    const body = '{"id":"x", "weird spacing" :  [1,2,3], "u":"\u00e9"}';
    m.primary.behave({ status: 201, headers: { "content-type": "application/json; charset=utf-8", "x-primary": "yes" }, body });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(201);
    expect(res.body.equals(Buffer.from(body))).toBe(true);
    expect(res.headers["x-primary"]).toBe("yes");
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(Object.keys(res.headers).filter((h) => h.startsWith("x-ai-fallback"))).toEqual([]);
    expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);
  });

  test("backup 1 fails, the unknown cluster is skipped, backup 2 answers", async () => {
    const calls = counter(await envoy.stats(), "wasmcustom.ai_fallback.backup_calls");
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 502, body: "bad gateway a" });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-model"]).toBe("qwen-plus");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, backup-a;model=pass-through;result=502, missing-cluster;model=pass-through;result=unknown_cluster, backup-b;model=qwen-plus;result=200");
    expect(envoy.logs()).toMatch(/backup missing-cluster could not be called: unknown cluster .*global\.onlyPushRouteCluster=false/);
    // Only calls that went out count: backup-a and backup-b, not the unknown cluster.
    expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.backup_calls")).toBe(calls + 2);
  });

  test("all backups fail: the client gets the last attempt's error response", async () => {
    m.primary.behave({ status: 500, body: "primary down" });
    m.backupA.behave({ status: 503, body: "a down" });
    m.backupB.behave({ status: 429, headers: { "content-type": "application/json", "retry-after": "7" }, body: '{"error":"b busy"}' });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(429);
    expect(res.text).toBe('{"error":"b busy"}');
    expect(res.headers["retry-after"]).toBe("7");
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-b;model=qwen-plus;result=429$/);
    expect(res.complete).toBe(true);
  });

  test("the backup receives the request replayed: method, path, headers, body byte for byte", async () => {
    m.primary.behave({ status: 500 });
    const raw = '{ "model" : "gpt-4o",\n "messages": [{"role":"user","content":"h\\u00e9 \\"model\\""}], "model_x": 1 }';
    const res = await request(envoy.port, {
      path: "/v1/chat/completions?trace=1",
      headers: { "content-type": "application/json", "x-custom": "kept", authorization: "Bearer client", connection: "keep-alive" },
      body: raw,
    });
    expect(res.status).toBe(200);
    const seen = m.backupA.requests[0];
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/v1/chat/completions?trace=1");
    expect(seen.headers["x-custom"]).toBe("kept");
    expect(seen.headers.authorization).toBe("Bearer client");
    expect(seen.headers["content-length"]).toBe(String(Buffer.byteLength(raw)));
    expect(seen.body.equals(Buffer.from(raw))).toBe(true);
  });

  test("a model override changes only the top-level model value", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 500 });
    const raw = '{ "model" : "gpt-4o",\n "messages": [{"role":"user","content":"h\\u00e9 \\"model\\": x"}], "meta": {"model": "inner"} }';
    const res = await request(envoy.port, { headers: { "content-type": "application/json" }, body: raw });
    expect(res.status).toBe(200);
    expect(m.backupA.requests[0].body.toString()).toBe(raw);
    expect(m.backupB.requests[0].body.toString()).toBe(raw.replace('"gpt-4o"', '"qwen-plus"'));
    expect(m.backupB.requests[0].headers["content-length"]).toBe(String(Buffer.byteLength(raw.replace('"gpt-4o"', '"qwen-plus"'))));
  });

  test("a body that is not JSON is not sent to a backup with a model override: skipped as not_rewritable, with a log line", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 500, body: "a down" });
    const res = await request(envoy.port, { headers: { "content-type": "text/plain" }, body: "model=gpt-4o, not json" });
    expect(res.status).toBe(500);
    expect(res.text).toBe("a down");
    expect(m.backupA.requests[0].body.toString()).toBe("model=gpt-4o, not json");
    expect(m.backupB.requests).toHaveLength(0);
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-b;model=qwen-plus;result=not_rewritable$/);
    expect(envoy.logs()).toMatch(/request body is not a JSON object: model qwen-plus cannot be written; backup-b is not called, the chain goes on/);
  });

  test("a JSON body without a model is not sent to the override backup; a BOM-prefixed one is rewritten after the mark", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ status: 500 });
    const noModel = await request(envoy.port, { body: { messages: [] } });
    expect(noModel.headers["x-ai-fallback-attempts"]).toMatch(/backup-b;model=qwen-plus;result=not_rewritable$/);
    expect(m.backupB.requests).toHaveLength(0);
    expect(envoy.logs()).toMatch(/request body has no top-level "model": model qwen-plus cannot be written; backup-b is not called/);
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const res = await request(envoy.port, { headers: { "content-type": "application/json" }, body: Buffer.concat([bom, Buffer.from(JSON.stringify(CHAT))]) });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-model"]).toBe("qwen-plus");
    expect(m.backupB.requests[0].body.equals(Buffer.concat([bom, Buffer.from(JSON.stringify({ ...CHAT, model: "qwen-plus" }))]))).toBe(true);
  });

  test("a body over maxRequestBodyBytes is not kept: the error passes through, no backup is called", async () => {
    m.primary.behave({ status: 503, body: "primary error body" });
    const big = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(6000) }] });
    const before = await envoy.stats();
    const res = await request(envoy.port, { headers: { "x-request-id": "big-body-1" }, body: big });
    expect(res.status).toBe(503);
    expect(res.text).toBe("primary error body");
    expect(m.primary.requests[0].body.length).toBe(big.length);
    expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);
    const line = /status=503 passed through: the request cannot be replayed: request body over maxRequestBodyBytes \(4096\) x-request-id=big-body-1/;
    expect(await envoy.logsWhen(line)).toMatch(line);
    expect(growth(before, await envoy.stats())("wasmcustom.ai_fallback.not_replayable")).toBe(1);
  });

  test("maxRequestBodyBytes is inclusive: a body of exactly 4096 bytes is replayed, 4097 is not", async () => {
    m.primary.behave({ status: 503 });
    const sized = (n) => {
      const text = JSON.stringify({ model: "gpt-4o", pad: "" });
      return text.replace('"pad":""', `"pad":"${"p".repeat(n - text.length)}"`);
    };
    expect(Buffer.byteLength(sized(4096))).toBe(4096);
    const exact = await request(envoy.port, { body: sized(4096) });
    expect(exact.status).toBe(200);
    expect(m.backupA.requests[0].body.toString()).toBe(sized(4096));
    const over = await request(envoy.port, { body: sized(4097) });
    expect(over.status).toBe(503);
    expect(m.backupA.requests.length).toBe(1);
  });

  test("a body dropped for its size on the happy path is logged at debug, and nothing above", async () => {
    const big = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(6000) }] });
    const res = await request(envoy.port, { headers: { "x-request-id": "dropped-quietly" }, body: big });
    expect(res.status).toBe(200);
    const dropped = /\]\[debug\]\[wasm\].*not keeping the request for replay: request body over maxRequestBodyBytes \(4096\) x-request-id=dropped-quietly/;
    const lines = (await envoy.logsWhen(dropped)).split("\n").filter((l) => l.includes("dropped-quietly"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(dropped);
  });

  test("a backup that hangs past its timeout is given up and the next one tried", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ hang: true });
    const started = Date.now();
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-a;model=pass-through;result=timeout/);
    // Envoy's timer ends backup-a's call 1500 ms after dispatch, which is after the client sent the
    // request; the next backup is called at once (the unknown cluster in between costs nothing), so
    // it receives the replay at most 1500 ms plus a 100 ms margin for a loaded 2-core machine after
    // backup-a did (its own delivery only shortens that).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500 - 10); // Envoy timers may fire a few ms early (cached loop time)
    const gap = m.backupB.requests[0].receivedAt - m.backupA.requests[0].receivedAt;
    expect(gap).toBeLessThan(1500 + 100);
  });

  test("hop-by-hop headers the client sent never reach a backup", async () => {
    m.primary.behave({ status: 500 });
    // Chunked, so that a `trailer` header is allowed.
    const res = await chunkedRequest(envoy.port, "/v1/chat/completions", [JSON.stringify(CHAT)], 0,
      { "keep-alive": "timeout=5", "proxy-connection": "keep-alive", trailer: "x-checksum", te: "trailers", "x-kept": "1" });
    expect(res.status).toBe(200);
    const seen = m.backupA.requests[0].headers;
    expect(seen["x-kept"]).toBe("1");
    for (const name of ["keep-alive", "proxy-connection", "trailer", "te", "upgrade"]) expect([name, seen[name]]).toEqual([name, undefined]);
  });

  test("a backup that resets the connection is skipped", async () => {
    m.primary.behave({ status: 500 });
    m.backupA.behave({ reset: true });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(res.headers["x-ai-fallback-attempts"]).toMatch(/backup-a;model=pass-through;result=no_response, /); // Envoy answers a reset call with its own 503
  });

  test("the body is copied as it streams past: the primary gets the request before the client has finished", async () => {
    m.primary.behave({ status: 500 });
    const parts = ['{"model":"gpt-4o",', '"messages":[{"role":"user",', '"content":"' + "y".repeat(3000) + '"}]}'];
    const res = await chunkedRequest(envoy.port, "/v1/chat/completions", parts, 300);
    expect(res.status).toBe(200);
    expect(m.primary.requests[0].receivedAt).toBeLessThan(res.sentAllAt - 300);
    expect(m.backupA.requests[0].body.equals(Buffer.from(parts.join("")))).toBe(true);
  });

  test("a primary that answers before the request is complete passes through: nothing whole to replay, and it is logged", async () => {
    m.primary.behave({ status: 503, answerEarly: true, body: "early no" });
    const parts = ['{"model":"gpt-4o",', '"messages":[]}'];
    const res = await chunkedRequest(envoy.port, "/v1/chat/completions", parts, 300, { "x-request-id": "early-1" });
    expect(res.status).toBe(503);
    expect(res.text).toBe("early no");
    expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);
    const line = /status=503 passed through: the primary answered before the request was complete x-request-id=early-1/;
    expect(await envoy.logsWhen(line)).toMatch(line);
  });

  test("a non-string model never reaches a response header (it could carry CR LF)", async () => {
    m.primary.behave({ status: 500 });
    const res = await request(envoy.port, { body: '{"model":["a",\r\n"b"],"messages":[]}' });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-model"]).toBe("pass-through");
  });

  test("a request without a body is replayed without one", async () => {
    m.primary.behave({ status: 404 });
    const res = await request(envoy.port, { method: "POST", path: "/v1/chat/completions" });
    expect(res.status).toBe(200);
    expect(m.backupA.requests[0].method).toBe("POST");
    expect(m.backupA.requests[0].path).toBe("/v1/chat/completions");
    expect(m.backupA.requests[0].body.length).toBe(0);
  });
});

describe("many fallbacks at once", () => {
  test("each of 40 concurrent requests on two workers gets the answer to its own replay", async () => {
    const busy = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }] },
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port },
      concurrency: 2,
    });
    m.primary.behave({ status: 503, delayHeadersMs: 20 });
    m.backupA.behave({ delayHeadersMs: 50 });
    const before = await busy.stats();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      request(busy.port, { headers: { "x-request-id": `many-${i}` }, body: { ...CHAT, model: `model-${i}` } })));
    results.forEach((res, i) => {
      expect([i, res.status, res.json().model]).toEqual([i, 200, `model-${i}`]);
      expect(res.headers["x-ai-fallback-model"]).toBe(`model-${i}`);
    });
    const grew = growth(before, await busy.stats());
    expect(grew("wasmcustom.ai_fallback.served_by_backup")).toBe(40);
    expect(grew("wasmcustom.ai_fallback.pending_backup_calls")).toBe(0);
    await busy.stop();
  });
});

describe("the worker's budget for request copies", () => {
  test("past maxKeptBytesPerWorker a request is not kept: its error passes through, and the budget comes back", async () => {
    const tight = await startEnvoy({
      // Room for one request's copies (its headers and its ~2 KiB body), not two.
      pluginConfig: { backups: [{ service: "backup-a" }], maxKeptBytesPerWorker: 4000 },
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port },
    });
    const body = (i) => JSON.stringify({ model: "m", n: i, messages: [{ role: "user", content: "x".repeat(2000) }] });
    m.primary.behave({ status: 503, delayHeadersMs: 300 });
    const [first, second] = await Promise.all([
      request(tight.port, { headers: { "x-request-id": "kept-1" }, body: body(1) }),
      new Promise((r) => setTimeout(r, 100)).then(() => request(tight.port, { headers: { "x-request-id": "kept-2" }, body: body(2) })),
    ]);
    expect(first.status).toBe(200);
    expect(second.status).toBe(503);
    expect(tight.logs()).toMatch(/over the memory budget \(maxKeptBytesPerWorker 4000, in use \d+\): a request body .*is not kept; it passes through without fallback x-request-id=kept-2/);
    expect(tight.logs()).toMatch(/status=503 passed through: the request cannot be replayed: over the memory budget \(maxKeptBytesPerWorker\) x-request-id=kept-2/);
    expect(counter(await tight.stats(), "wasmcustom.ai_fallback.over_budget")).toBe(1);
    // Both copies were given back: a third request is kept again.
    const third = await request(tight.port, { body: body(3) });
    expect(third.status).toBe(200);
    const stats = await tight.stats();
    expect(counter(stats, "wasmcustom.ai_fallback.kept_bytes")).toBe(0);
    expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
    await tight.stop();
  });
});

describe("the streams gauge", () => {
  test("shows the requests in flight while they wait, and 0 once they are answered", async () => {
    m.primary.behave({ delayHeadersMs: 1000 });
    const waiting = Promise.all([1, 2, 3].map(() => request(envoy.port, { body: CHAT })));
    let stats = await envoy.stats();
    for (let i = 0; i < 40 && counter(stats, "wasmcustom.ai_fallback.streams") < 3; i++) {
      await new Promise((r) => setTimeout(r, 25));
      stats = await envoy.stats();
    }
    // A new high is reported at once (it is lowered lazily, but never below what is alive).
    expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(3);
    expect((await waiting).map((r) => r.status)).toEqual([200, 200, 200]);
    // A stream ends (proxy_on_log) just after its last byte went out: wait for the last one to count.
    for (let i = 0; i < 20 && counter(stats, "wasmcustom.ai_fallback.streams") !== 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      stats = await envoy.stats();
    }
    expect(counter(stats, "wasmcustom.ai_fallback.streams")).toBe(0);
  });
});

describe("a held primary response with trailers", () => {
  test("its trailers stay held too: the backup's answer is served", async () => {
    const withTrailers = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }] },
      clusters: { primary: { port: m.primary.port, trailers: true }, "backup-a": m.backupA.port },
    });
    m.primary.behave({ status: 503, body: '{"error":"down"}', trailers: { "x-trailer": "1" } });
    m.backupA.behave({ delayHeadersMs: 300 });
    const res = await request(withTrailers.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    await withTrailers.stop();
  });

  test("a streaming 2xx held for its first packet stays held through trailers that come with no body", async () => {
    // Only the first-packet hold pauses the headers without holding the whole response, so only
    // there does Envoy call this filter with the trailers: continuing there would let the bodiless
    // primary out instead of the fallback its silence calls for.
    const silent = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }], firstPacketTimeout: 200 },
      clusters: { primary: { port: m.primary.port, trailers: true }, "backup-a": m.backupA.port },
    });
    m.primary.behave({ body: "", trailers: { "x-trailer": "1" } });
    const res = await request(silent.port, { body: { ...CHAT, stream: true } });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
    expect(res.json().served_by).toBe("backup-a");
    await silent.stop();
  });
});

describe("the same service twice", () => {
  test("one cluster may back up with two models, tried in order", async () => {
    const twice = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a", model: "model-one" }, { service: "backup-a", model: "model-two" }] },
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port },
    });
    m.primary.behave({ status: 503 });
    m.backupA.behave([{ status: 500 }, {}]);
    const res = await request(twice.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(m.backupA.requests.map((r) => JSON.parse(r.body).model)).toEqual(["model-one", "model-two"]);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=model-one;result=500, backup-a;model=model-two;result=200");
    await twice.stop();
  });
});

describe("when no backup gives an HTTP answer", () => {
  let lonely;
  beforeAll(async () => {
    lonely = await startEnvoy({
      pluginConfig: { backups: [{ service: "no-such-cluster" }, { service: "nor-this-one" }], firstPacketTimeout: 200 },
      clusters: { primary: m.primary.port },
    });
  });

  test("the primary's own error response goes to the client, marked with what was tried", async () => {
    m.primary.behave({ status: 503, headers: { "content-type": "application/json" }, body: '{"error":"primary says no"}' });
    const res = await request(lonely.port, { body: CHAT });
    expect(res.status).toBe(503);
    expect(res.text).toBe('{"error":"primary says no"}');
    expect(res.headers["x-served-by"]).toBe("primary");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, no-such-cluster;model=pass-through;result=unknown_cluster, nor-this-one;model=pass-through;result=unknown_cluster");
  });

  test("with nothing at all to return (first packet timeout, no primary headers), the client gets the filter's own 504", async () => {
    m.primary.behave({ hang: true });
    const res = await request(lonely.port, { body: { ...CHAT, stream: true } });
    expect(res.status).toBe(504);
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.json().error.type).toBe("ai_fallback_exhausted");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("first_packet_timeout");
  });
});

describe("credentials", () => {
  const CREDENTIALS = ["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];
  test("a backup that sets any one credential header gets none of the client's five", async () => {
    // Five backups on one cluster, each setting another credential; the first four fail.
    const keyed = await startEnvoy({
      pluginConfig: { backups: CREDENTIALS.map((name) => ({ service: "backup-a", model: name, headers: { [name]: `backup-${name}` } })) },
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port },
    });
    m.primary.behave({ status: 401 });
    m.backupA.behave([{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }, {}]);
    const res = await request(keyed.port, { headers: Object.fromEntries(CREDENTIALS.map((c) => [c, "client-secret"])), body: CHAT });
    expect(res.status).toBe(200);
    expect(m.backupA.requests.length).toBe(5);
    m.backupA.requests.forEach((r, i) => {
      const own = CREDENTIALS[i];
      expect([own, JSON.parse(r.body).model, r.headers[own]]).toEqual([own, own, `backup-${own}`]);
      expect([own, JSON.stringify(r.rawHeaders).includes("client-secret")]).toEqual([own, false]);
    });
    await keyed.stop();
  });
});

describe("the last backup gives no good answer", () => {
  let single;
  beforeAll(async () => {
    single = await startEnvoy({
      pluginConfig: { backups: [{ service: "backup-a" }] },
      clusters: { primary: m.primary.port, "backup-a": m.backupA.port },
    });
  });

  test("it resets: the client gets the 503 Envoy answers the call with", async () => {
    m.primary.behave({ status: 500, body: "primary down" });
    m.backupA.behave({ reset: true });
    const res = await request(single.port, { body: CHAT });
    expect(res.status).toBe(503);
    expect(res.text).toMatch(/^upstream connect error or disconnect\/reset before headers/);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=500, backup-a;model=pass-through;result=no_response");
  });

  test("its answer is over Envoy's 32 MiB cap: no HTTP answer, so the client gets the primary's own error", async () => {
    m.primary.behave({ status: 503, body: "primary says no" });
    m.backupA.behave({ body: Buffer.alloc(33 * 1024 * 1024, 0x61), headers: { "content-type": "text/plain" } });
    const res = await request(single.port, { body: CHAT, timeoutMs: 20000 });
    expect(res.status).toBe(503);
    expect(res.text).toBe("primary says no");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=pass-through;result=no_response");
  });

  test("an answer just under the cap is served", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ body: Buffer.alloc(31 * 1024 * 1024, 0x62), headers: { "content-type": "text/plain" } });
    const res = await request(single.port, { body: CHAT, timeoutMs: 20000 });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(31 * 1024 * 1024);
  });
});

describe("bad configuration is refused by Envoy, naming the field", () => {
  test.each([
    ["not JSON", "{backups", /invalid configuration: configuration: not valid JSON/],
    ["empty list", { backups: [] }, /invalid configuration: backups: must list at least one backup/],
    ["missing service", { backups: [{ model: "m" }] }, /invalid configuration: backups\[0\]\.service: required/],
    ["wrong type", { backups: [{ service: "a", timeout: "10s" }] }, /invalid configuration: backups\[0\]\.timeout: must be an integer/],
    ["unknown key", { backups: [{ service: "a" }], retries: 3 }, /invalid configuration: retries: unknown field/],
  ])("%s", async (_, pluginConfig, message) => {
    const result = await startEnvoy({ pluginConfig, clusters: { primary: 1, a: 1 }, expectFailure: true });
    expect(result.exitCode).not.toBe(0);
    expect(result.logs()).toMatch(message);
  });
});
