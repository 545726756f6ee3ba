// A model service's error falls back by what it means, not only by its status (issue 25): a refusal
// of the request's content passes through unreplayed with a report header, a context-length error
// falls back even where its status would not. The error bodies are the providers' documented shapes.
// Both modes.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };

// OpenAI's API reference (error codes): a refused image prompt, and a request over the model's context.
const OPENAI_CONTENT_POLICY = {
  error: {
    message: "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
    type: "invalid_request_error", param: null, code: "content_policy_violation",
  },
};
const OPENAI_CONTEXT_LENGTH = {
  error: {
    message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130542 tokens. Please reduce the length of the messages.",
    type: "invalid_request_error", param: "messages", code: "context_length_exceeded",
  },
};
// Azure OpenAI's content filtering documentation: a prompt the filter refused.
const AZURE_CONTENT_FILTER = {
  error: {
    message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
    type: null, param: "prompt", code: "content_filter", status: 400,
    innererror: {
      code: "ResponsibleAIPolicyViolation",
      content_filter_result: {
        hate: { filtered: false, severity: "safe" }, jailbreak: { filtered: false, detected: false },
        self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" },
        violence: { filtered: true, severity: "medium" },
      },
    },
  },
};
// Anthropic's errors documentation: a prompt over the model's context is an invalid_request_error.
const ANTHROPIC_PROMPT_TOO_LONG = {
  type: "error",
  error: { type: "invalid_request_error", message: "prompt is too long: 208310 tokens > 200000 maximum" },
};

const BACKUPS = [{ service: "backup-a" }];
// The streamed mode's primary filter defines its counter at its first refusal: absent before, it counts 0.
const NEVER_TRIGGER = "wasmcustom.ai_fallback.never_trigger";
const neverTriggerCount = (stats) => (stats.includes(`${NEVER_TRIGGER}: `) ? counter(stats, NEVER_TRIGGER) : 0);
/** Only server errors and 429 by status: a 400 falls back only by its meaning. */
const NARROW = { backups: BACKUPS, triggerStatuses: [429, "5xx"] };

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const clusters = () => ({ primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port });

const MODES = [
  ["dispatch mode", (plugin) => startEnvoy({ pluginConfig: plugin, clusters: clusters() })],
  ["streamed mode", (plugin) => startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, plugin) })],
];

describe.each(MODES)("%s: error-aware triggers", (mode, start) => {
  let defaults;
  let narrow;
  let noNever;
  beforeAll(async () => {
    [defaults, narrow, noNever] = await Promise.all([
      start({ backups: BACKUPS }), start(NARROW), start({ backups: BACKUPS, neverTrigger: [] }),
    ]);
  }, 30000);

  test.each([
    ["OpenAI content_policy_violation", OPENAI_CONTENT_POLICY, "never_trigger=content_policy_violation"],
    ["Azure OpenAI content_filter (ResponsibleAIPolicyViolation)", AZURE_CONTENT_FILTER, "never_trigger=content_filter"],
  ])("a 400 %s reaches the client unreplayed, with the report header", async (_, error, report) => {
    m.primary.behave({ status: 400, json: error });
    const before = await defaults.stats();
    const res = await request(defaults.port, { body: CHAT });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual(error);
    expect(res.headers["x-ai-fallback-declined"]).toBe(report);
    expect(res.headers["x-ai-fallback-trigger"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
    expect(neverTriggerCount(await defaults.stats()) - neverTriggerCount(before)).toBe(1);
  });

  test.each([
    ["OpenAI context_length_exceeded", OPENAI_CONTEXT_LENGTH],
    ["Anthropic \"prompt is too long\"", ANTHROPIC_PROMPT_TOO_LONG],
  ])("a 400 %s falls back although triggerStatuses leaves 400 out (alwaysTrigger)", async (_, error) => {
    m.primary.behave({ status: 400, json: error });
    const res = await request(narrow.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=400");
    expect(m.backupA.requests.length).toBe(1);
  });

  test("a 400 whose meaning is in neither list keeps today's rule: out of triggerStatuses it passes, in them it falls back", async () => {
    const other = { error: { message: "Invalid value for 'temperature'", type: "invalid_request_error", param: "temperature", code: "invalid_value" } };
    m.primary.behave({ status: 400, json: other });
    const passed = await request(narrow.port, { body: CHAT });
    expect(passed.status).toBe(400);
    expect(passed.json()).toEqual(other);
    expect(passed.headers["x-ai-fallback-declined"]).toBeUndefined();
    expect(m.backupA.requests.length).toBe(0);
    const replayed = await request(defaults.port, { body: CHAT });
    expect(replayed.status).toBe(200);
    expect(replayed.json().served_by).toBe("backup-a");
  });

  test("an error body that is not JSON is decided by its status alone", async () => {
    m.primary.behave({ status: 400, body: "<html>content_filter</html>", headers: { "content-type": "text/html" } });
    const replayed = await request(defaults.port, { body: CHAT });
    expect(replayed.status).toBe(200);
    expect(replayed.json().served_by).toBe("backup-a");
    m.backupA.reset();
    const passed = await request(narrow.port, { body: CHAT });
    expect(passed.status).toBe(400);
    expect(passed.text).toBe("<html>content_filter</html>");
    expect(m.backupA.requests.length).toBe(0);
  });

  test("neverTrigger: [] lets a content refusal fall back like any other 400", async () => {
    m.primary.behave({ status: 400, json: AZURE_CONTENT_FILTER });
    const res = await request(noNever.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-declined"]).toBeUndefined();
  });

  test("an error body that comes after its headers is still read", async () => {
    m.primary.behave({ status: 400, json: AZURE_CONTENT_FILTER, delayBodyMs: 300 });
    const res = await request(defaults.port, { body: CHAT });
    expect(res.status).toBe(400);
    expect(res.headers["x-ai-fallback-declined"]).toBe("never_trigger=content_filter");
    expect(m.backupA.requests.length).toBe(0);
  });

  test("only the body's first 8 KiB are read: a code past them is not seen, and the status decides", async () => {
    const late = { error: { message: "x".repeat(9000), code: "content_filter" } };
    m.primary.behave({ status: 400, json: late });
    const res = await request(defaults.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-declined"]).toBeUndefined();
  });

  test("a body with no length is read up to 8 KiB only: a code past them is not seen", async () => {
    // Chunked (no content-length) and ended by trailers: only the read's bound stops the read.
    const late = { error: { message: "x".repeat(9000), code: "content_filter" } };
    m.primary.behave({ status: 400, json: late, trailers: { "x-end": "1" }, announceTrailers: false });
    const res = await request(defaults.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-declined"]).toBeUndefined();
  });

  test("a 2xx and a server error are unchanged: the answer, or a fallback by status", async () => {
    const ok = await request(defaults.port, { body: CHAT });
    expect(ok.status).toBe(200);
    expect(ok.json().served_by).toBe("primary");
    m.primary.behave({ status: 503, json: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } });
    const res = await request(defaults.port, { body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=503");
  });
});

describe("dispatch mode: a held error after its meaning started a fallback", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      pluginConfig: {
        backups: BACKUPS, triggerStatuses: [429, "5xx"],
        _rules_: [
          { _match_route_: ["nowhere"], backups: [{ service: "no-such-cluster" }] },
          { _match_route_: ["all-4xx"], triggerStatuses: ["4xx", "5xx"] },
        ],
      },
      clusters: clusters(),
      routes: [
        { name: "nowhere", prefix: "/nowhere", cluster: "primary" }, { name: "all-4xx", prefix: "/all-4xx", cluster: "primary" },
        { name: "primary-route", prefix: "/", cluster: "primary" },
      ],
    });
  }, 30000);

  test("every backup failing: the last backup's error is served", async () => {
    m.primary.behave({ status: 400, json: OPENAI_CONTEXT_LENGTH });
    m.backupA.behave({ status: 503 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(503);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, backup-a;model=pass-through;result=503");
  });

  test("no backup reachable: the primary's own error goes on, whole, with the report", async () => {
    m.primary.behave({ status: 400, json: OPENAI_CONTEXT_LENGTH });
    const res = await request(envoy.port, { path: "/nowhere", body: CHAT });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual(OPENAI_CONTEXT_LENGTH);
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=400");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, no-such-cluster;model=pass-through;result=unknown_cluster");
  });

  test("a body that does not come within a second is not waited for: the status decides, unread", async () => {
    // Read, this refusal would pass through; its 400 is in this route's triggerStatuses.
    m.primary.behave({ status: 400, json: AZURE_CONTENT_FILTER, delayBodyMs: 5000 });
    const started = Date.now();
    const res = await request(envoy.port, { path: "/all-4xx", body: CHAT });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(res.headers["x-ai-fallback-trigger"]).toBe("status=400");
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(4000);
  });
});

describe("streamed mode: the router retries on the attempt filters' marker, which the client never sees", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, { backups: [{ service: "backup-a" }, { service: "backup-b" }] }) });
  }, 30000);

  test("a content refusal is one attempt: not retried, no marker", async () => {
    m.primary.behave({ status: 400, json: AZURE_CONTENT_FILTER });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(400);
    expect(res.headers["x-envoy-attempt-count"]).toBe("1");
    expect(res.headers["x-ai-fallback-declined"]).toBe("never_trigger=content_filter");
    expect(res.headers["x-ai-fallback-retry"]).toBeUndefined();
    expect(m.backupA.requests.length + m.backupB.requests.length).toBe(0);
  });

  test("a context-length 400 goes to the next backup; every backup failing, the last error arrives unmarked", async () => {
    m.primary.behave({ status: 400, json: OPENAI_CONTEXT_LENGTH });
    m.backupA.behave({ status: 400, json: OPENAI_CONTEXT_LENGTH });
    m.backupB.behave({ status: 503 });
    const res = await request(envoy.port, { body: CHAT });
    expect(res.status).toBe(503);
    expect(res.headers["x-envoy-attempt-count"]).toBe("3");
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=400, backup-a;model=pass-through;result=400, backup-b;model=pass-through;result=503");
    expect(res.headers["x-ai-fallback-retry"]).toBeUndefined();
  });
});
