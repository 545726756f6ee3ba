// What a model service's error body means (core/error_meaning.ts), and how neverTrigger / alwaysTrigger
// decide by it (core/policy.ts), in the shapes the providers document.
const { load } = require("../support/wasm");
const w = load();
const body = (obj) => JSON.stringify(obj);
const conf = (extra = {}) => JSON.stringify({ backups: [{ service: "b" }], ...extra });

describe("error meanings", () => {
  test("OpenAI: the error's code and type", () => {
    expect(w.meanings(body({ error: { message: "This model's maximum context length is 8192 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } })))
      .toEqual(["invalid_request_error", "context_length_exceeded"]);
  });

  test("the codes come in the order the body gives them, each once", () => {
    expect(w.meanings(body({ error: { code: "content_policy_violation", type: "invalid_request_error" } }))).toEqual(["content_policy_violation", "invalid_request_error"]);
    expect(w.meanings(body({ error: { type: "x", code: "x" } }))).toEqual(["x"]);
  });

  test("Azure OpenAI: the code and the inner code (a null type and a numeric status are no meaning)", () => {
    const azure = { error: { message: "filtered", type: null, param: "prompt", code: "content_filter", status: 400,
      innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: { violence: { filtered: true, severity: "medium" } } } } };
    expect(w.meanings(body(azure))).toEqual(["content_filter", "ResponsibleAIPolicyViolation"]);
  });

  test("Anthropic: the error's type; \"prompt is too long\" is read as context_length_exceeded", () => {
    expect(w.meanings(body({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }))).toEqual(["overloaded_error"]);
    expect(w.meanings(body({ type: "error", error: { type: "invalid_request_error", message: "prompt is too long: 208310 tokens > 200000 maximum" } })))
      .toEqual(["invalid_request_error", "context_length_exceeded"]);
    // Only the error's own message counts, and only at its start.
    expect(w.meanings(body({ type: "error", error: { type: "invalid_request_error", message: "your prompt is too long" } }))).toEqual(["invalid_request_error"]);
    expect(w.meanings(body({ message: "prompt is too long", error: { type: "invalid_request_error" } }))).toEqual(["invalid_request_error"]);
  });

  test("Gemini: the error's status (its numeric code is no meaning)", () => {
    expect(w.meanings(body({ error: { code: 400, message: "Request contains an invalid argument.", status: "INVALID_ARGUMENT" } }))).toEqual(["INVALID_ARGUMENT"]);
  });

  test("codes elsewhere are not the error's: top level, deeper objects, arrays", () => {
    expect(w.meanings(body({ code: "content_filter", type: "error" }))).toEqual([]);
    expect(w.meanings(body({ error: { details: [{ code: "content_filter" }], data: { code: "content_filter", type: "t" } } }))).toEqual([]);
    expect(w.meanings(body({ error: { innererror: { detail: { code: "content_filter" } } } }))).toEqual([]);
    expect(w.meanings(body({ data: { error: { code: "content_filter" } } }))).toEqual([]);
    expect(w.meanings(body({ error: "content_filter" }))).toEqual([]);
  });

  test("a body that is not a JSON object means nothing", () => {
    for (const b of ["", "   ", "<html>content_filter</html>", "[{\"error\":{\"code\":\"content_filter\"}}]", "\"content_filter\"", "null", "upstream connect error"]) {
      expect([b, w.meanings(b)]).toEqual([b, []]);
    }
  });

  test("a body cut at the read's bound keeps what came before the cut", () => {
    const whole = body({ error: { code: "content_filter", message: "x".repeat(100), innererror: { code: "ResponsibleAIPolicyViolation" } } });
    expect(w.meanings(whole.slice(0, whole.indexOf("innererror") + 16))).toEqual(["content_filter"]);
    expect(w.meanings(whole.slice(0, 20))).toEqual([]);
    expect(w.meanings(body({ error: { code: "abc" } }).slice(0, 21))).toEqual([]); // cut inside the code: not a code
  });

  test("escapes are read as the characters they stand for; a long string is cut to 128 characters", () => {
    expect(w.meanings("{\"error\":{\"code\":\"content\\/filter\",\"type\":\"a\\\"b\"}}")).toEqual(["content/filter", "a\"b"]);
    expect(w.meanings(body({ error: { code: "c".repeat(500) } }))).toEqual(["c".repeat(128)]);
  });

  test("whitespace and key order do not matter", () => {
    expect(w.meanings("{ \"type\" : \"error\" ,\n \"error\" :\n {\n \"message\": \"m\", \"type\" : \"rate_limit_error\" } }")).toEqual(["rate_limit_error"]);
  });
});

describe("deciding by meaning", () => {
  test("defaults: a refusal of the request's content never falls back; other 4xx fall back by status", () => {
    for (const code of ["content_policy_violation", "moderation_blocked", "content_filter", "ResponsibleAIPolicyViolation"]) {
      expect([code, w.meaningVerdict(conf(), 400, ["invalid_request_error", code])]).toEqual([code, `never ${code}`]);
    }
    expect(w.meaningVerdict(conf(), 400, ["invalid_request_error", "context_length_exceeded"])).toBe("fallback");
    expect(w.meaningVerdict(conf(), 400, [])).toBe("fallback");
    expect(w.meaningVerdict(conf(), 404, ["model_not_found"])).toBe("fallback");
  });

  test("5xx, 429 and 2xx are never read: their status decides, as before", () => {
    for (const s of [200, 429, 500, 503, 529]) expect([s, w.meaningVerdict(conf(), s, ["content_filter"])]).toEqual([s, "unread"]);
  });

  test("alwaysTrigger falls back where triggerStatuses leaves the status out", () => {
    const narrow = conf({ triggerStatuses: [429, "5xx"] });
    for (const code of ["context_length_exceeded", "string_above_max_length", "request_too_large"]) {
      expect([code, w.meaningVerdict(narrow, 400, ["invalid_request_error", code])]).toEqual([code, `fallback by ${code}`]);
    }
    expect(w.meaningVerdict(narrow, 400, ["invalid_request_error"])).toBe("pass");
    // A refusal is not "never triggered" where its status would not trigger anyway: no report.
    expect(w.meaningVerdict(narrow, 400, ["content_filter"])).toBe("pass");
  });

  test("neverTrigger wins over alwaysTrigger when one body carries both", () => {
    const c = conf({ triggerStatuses: [429, "5xx"], neverTrigger: ["ResponsibleAIPolicyViolation"], alwaysTrigger: ["content_filter"] });
    expect(w.meaningVerdict(c, 400, ["content_filter", "ResponsibleAIPolicyViolation"])).toBe("pass");
    expect(w.meaningVerdict(conf({ neverTrigger: ["ResponsibleAIPolicyViolation"], alwaysTrigger: ["content_filter"] }), 400,
      ["content_filter", "ResponsibleAIPolicyViolation"])).toBe("never ResponsibleAIPolicyViolation");
  });

  test("codes are case-sensitive, as the providers send them", () => {
    expect(w.meaningVerdict(conf(), 400, ["Content_Filter"])).toBe("fallback");
  });

  test("empty lists: nothing is read, the status decides", () => {
    const none = conf({ neverTrigger: [], alwaysTrigger: [] });
    expect(w.meaningVerdict(none, 400, ["content_filter"])).toBe("unread");
    expect(w.meaningVerdict(conf({ neverTrigger: [], triggerStatuses: ["5xx"] }), 400, ["context_length_exceeded"])).toBe("fallback by context_length_exceeded");
  });
});

describe("neverTrigger and alwaysTrigger in the configuration", () => {
  test("defaults, and a rule's lists replacing the global ones", () => {
    const c = w.configSummary(conf({
      neverTrigger: ["content_filter"],
      _rules_: [{ _match_route_: ["r"], alwaysTrigger: [] }, { _match_route_: ["s"], neverTrigger: [], alwaysTrigger: ["content_filter"] }],
    }));
    expect(c.global.neverTrigger).toEqual(["content_filter"]);
    expect(c.global.alwaysTrigger).toEqual(["context_length_exceeded", "string_above_max_length", "request_too_large"]);
    expect(c.rules[0].policy.neverTrigger).toEqual(["content_filter"]);
    expect(c.rules[0].policy.alwaysTrigger).toEqual([]);
    expect(c.rules[1].policy.neverTrigger).toEqual([]);
    expect(c.rules[1].policy.alwaysTrigger).toEqual(["content_filter"]);
    const d = w.configSummary(conf());
    expect(d.global.neverTrigger).toEqual(["content_policy_violation", "moderation_blocked", "content_filter", "ResponsibleAIPolicyViolation"]);
  });

  test("refusals name the field and the fix", () => {
    expect(w.configSummary(conf({ neverTrigger: [3] })).error).toBe("neverTrigger[0]: must be a string, got 3");
    expect(w.configSummary(conf({ alwaysTrigger: [""] })).error).toMatch(/^alwaysTrigger\[0\]: must be an error code or type as the model service sends it/);
    expect(w.configSummary(conf({ neverTrigger: ["a,b"] })).error).toMatch(/^neverTrigger\[0\]: must be an error code/);
    expect(w.configSummary(conf({ neverTrigger: ["x"], alwaysTrigger: ["x"] })).error)
      .toBe('alwaysTrigger[0]: "x" is also in neverTrigger: an error cannot both fall back and not; list it in one of them only (set neverTrigger without it to let it fall back)');
    expect(w.configSummary(conf({ _rules_: [{ _match_route_: ["r"], alwaysTrigger: ["content_filter"] }] })).error)
      .toMatch(/^_rules_\[0\]\.alwaysTrigger\[0\]: "content_filter" is also in neverTrigger \(by default\)/);
  });
});
