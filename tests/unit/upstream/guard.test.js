// The primary guard's pure parts: its configuration, its decision on the primary's response
// headers, its reply for a headers-only error, and how the fallback filter classifies that reply.
const { load } = require("../support/wasm");
const w = load();

const guard = (fields) => JSON.stringify({ guard: fields });

describe("primary guard: configuration", () => {
  test("{\"guard\": {}} is a guard with the defaults", () => {
    expect(w.guardSummary(guard({}))).toEqual({
      isGuard: true, error: "", holdFirstPacket: true, replyToHeadersOnlyErrors: true, maxRequestBodyBytes: 10485760,
      keepAliveIsNotFirstPacket: false, firstPacket: 0,
    });
  });

  test("every field is read", () => {
    expect(w.guardSummary(guard({ holdFirstPacket: false, replyToHeadersOnlyErrors: false, maxRequestBodyBytes: 4096, keepAliveIsNotFirstPacket: true }))).toEqual({
      isGuard: true, error: "", holdFirstPacket: false, replyToHeadersOnlyErrors: false, maxRequestBodyBytes: 4096,
      keepAliveIsNotFirstPacket: true, firstPacket: 1,
    });
    // firstPacket: 0 "byte", 1 "event", 2 "content".
    expect(w.guardSummary(guard({ firstPacket: "content" })).firstPacket).toBe(2);
    expect(w.guardSummary(guard({ firstPacket: "event" })).firstPacket).toBe(1);
    expect(w.guardSummary(guard({ firstPacket: "byte" })).firstPacket).toBe(0);
  });

  test("a configuration without \"guard\" is not a guard (it is a backup entry), and has no error here", () => {
    expect(w.guardSummary(JSON.stringify({ service: "b" }))).toEqual({ isGuard: false, error: "" });
    expect(w.guardSummary("[1]")).toEqual({ isGuard: false, error: "" });
    expect(w.guardSummary("{")).toEqual({ isGuard: false, error: "" });
  });

  test("bad guard fields are refused, naming the field", () => {
    expect(w.guardSummary(guard({ holdFirstPacket: "yes" })).error).toBe("guard.holdFirstPacket: must be true or false, got \"yes\"");
    expect(w.guardSummary(guard({ retryMark: "a\tb" })).error).toMatch(/^guard\.retryMark: must be visible ASCII characters/);
    expect(w.guardSummary(guard({ retryMark: true })).error).toMatch(/^guard\.retryMark: must be a string, got true/);
    expect(w.guardSummary(guard({ retryMark: "f00d" })).error).toBe("");
    expect(w.guardSummary(guard({ replyToHeadersOnlyErrors: 1 })).error).toMatch(/^guard\.replyToHeadersOnlyErrors: must be true or false/);
    expect(w.guardSummary(guard({ maxRequestBodyBytes: 0 })).error).toMatch(/^guard\.maxRequestBodyBytes: must be an integer number of bytes from 1 to 268435456/);
    expect(w.guardSummary(guard({ maxRequestBodyBytes: 1.5 })).error).toMatch(/^guard\.maxRequestBodyBytes: must be an integer/);
    expect(w.guardSummary(guard({ firstPacketTimeout: 300 })).error).toBe(
      "guard.firstPacketTimeout: unknown field (known: holdFirstPacket, replyToHeadersOnlyErrors, maxRequestBodyBytes, keepAliveIsNotFirstPacket, firstPacket, hedgedOnly, retryMark)");
    expect(w.guardSummary(guard({ firstPacket: "token" })).error).toBe(
      'guard.firstPacket: must be "byte", "event" (keep-alives are held) or "content" (events without content are held), got "token"');
    expect(w.guardSummary(guard({ firstPacket: "content", keepAliveIsNotFirstPacket: true })).error).toMatch(/^guard\.keepAliveIsNotFirstPacket: set firstPacket alone/);
    expect(w.guardSummary(guard({ keepAliveIsNotFirstPacket: "on" })).error).toMatch(/^guard\.keepAliveIsNotFirstPacket: must be true or false/);
    expect(w.guardSummary(JSON.stringify({ guard: true })).error).toMatch(/^guard: must be an object/);
    expect(w.guardSummary(JSON.stringify({ guard: {}, service: "b" })).error).toMatch(/^service: unknown field next to "guard"/);
    expect(w.guardSummary(guard({ holdFirstPacket: "x" })).isGuard).toBe(true);
  });

  test("maxRequestBodyBytes, no longer used (the guard copies no body), still loads, with a warning", () => {
    expect(w.guardWarnings(guard({}))).toBe("");
    expect(w.guardWarnings(guard({ maxRequestBodyBytes: 4096 }))).toMatch(/^guard\.maxRequestBodyBytes is no longer used: the guard copies no request body/);
  });
});

describe("primary guard: what it does with the primary's response headers", () => {
  const defaults = guard({});
  test("a 2xx whose first packet is timed downstream waits for the first body byte", () => {
    expect(w.guardStep(defaults, true, 200, false)).toBe("hold");
    expect(w.guardStep(defaults, true, 206, false)).toBe("hold");
  });

  test("not held: a request not timed downstream, a headers-only 2xx, a 1xx/3xx, or holdFirstPacket off", () => {
    expect(w.guardStep(defaults, false, 200, false)).toBe("continue");
    expect(w.guardStep(defaults, true, 200, true)).toBe("continue");
    expect(w.guardStep(defaults, true, 304, false)).toBe("continue");
    expect(w.guardStep(guard({ holdFirstPacket: false }), true, 200, false)).toBe("continue");
  });

  test("a headers-only 4xx/5xx gets a body (streaming or not); one with a body to come passes", () => {
    expect(w.guardStep(defaults, false, 503, true)).toBe("reply");
    expect(w.guardStep(defaults, true, 429, true)).toBe("reply");
    expect(w.guardStep(defaults, false, 404, true)).toBe("reply");
    expect(w.guardStep(defaults, false, 503, false)).toBe("continue");
    expect(w.guardStep(defaults, false, 302, true)).toBe("continue");
  });

  test("the happy path reads no status: only a headers-only response, or one timed downstream, needs it", () => {
    expect(w.guardReadsStatus(defaults, false, false)).toBe(false);
    expect(w.guardReadsStatus(defaults, true, false)).toBe(true);
    expect(w.guardReadsStatus(defaults, false, true)).toBe(true);
    expect(w.guardReadsStatus(guard({ holdFirstPacket: false }), true, false)).toBe(false);
    expect(w.guardReadsStatus(guard({ replyToHeadersOnlyErrors: false }), false, true)).toBe(false);
  });

  test("replyToHeadersOnlyErrors off (the streamed mode: Envoy retries the status, not a local reply) lets them pass", () => {
    expect(w.guardStep(guard({ replyToHeadersOnlyErrors: false }), false, 503, true)).toBe("continue");
  });

  test("the reply keeps the primary's own headers, not its status, framing or hop-by-hop headers, and says what happened", () => {
    const out = w.guardReply(503, [
      [":status", "503"], ["content-length", "0"], ["content-type", "text/plain"], ["retry-after", "3"],
      ["transfer-encoding", "chunked"], ["connection", "close"], ["x-request-id", "r1"],
    ]);
    const [headers, body] = out.split("\n\n");
    expect(headers.split("\n")).toEqual(["content-type=application/json", "retry-after=3", "x-request-id=r1"]);
    expect(JSON.parse(body)).toEqual({ error: { message: "the model service answered 503 without a body", type: "upstream_error", code: 503 } });
  });
});

describe("the fallback filter counts the guard's reply as the model service's own answer", () => {
  const conf = JSON.stringify({ backups: [{ service: "b" }] });
  test("with backendErrorsOnly on, the guard's 503 triggers like the model service's; another filter's 503 does not", () => {
    expect(w.verdict(conf, 503, "ai_fallback_guard{headers_only_error}")).toBe("fallback");
    expect(w.verdict(conf, 503, "local_rate_limited")).toBe("intercepted-pass");
  });

  test("only the exact details count: a look-alike is this filter's own reply (passes), never the model service's", () => {
    expect(w.verdict(conf, 503, "ai_fallback_guard")).toBe("pass");
    expect(w.verdict(conf, 503, "ai_fallback_guard{headers_only_error}x")).toBe("pass");
  });
});
