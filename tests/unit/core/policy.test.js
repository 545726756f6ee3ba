// The fallback policy: which primary response triggers what.
const { load } = require("../support/wasm");
const w = load();
const conf = (extra = {}) => JSON.stringify({ backups: [{ service: "b" }], ...extra });

describe("trigger policy", () => {
  test("every 4xx and 5xx from the backend triggers by default; 2xx and 3xx pass", () => {
    for (const s of [400, 401, 404, 429, 499, 500, 502, 503, 599]) expect([s, w.verdict(conf(), s, "via_upstream")]).toEqual([s, "fallback"]);
    for (const s of [200, 201, 204, 301, 304, 399]) expect([s, w.verdict(conf(), s, "via_upstream")]).toEqual([s, "pass"]);
  });

  test("a configured status list narrows the triggers", () => {
    const c = conf({ triggerStatuses: [429, "5xx"] });
    expect(w.verdict(c, 429, "via_upstream")).toBe("fallback");
    expect(w.verdict(c, 503, "via_upstream")).toBe("fallback");
    expect(w.verdict(c, 400, "via_upstream")).toBe("pass");
    expect(w.verdict(c, 401, "via_upstream")).toBe("pass");
  });

  test("router replies for an unreachable backend trigger whatever the switch and the list say", () => {
    const on = conf({ triggerStatuses: [429] });
    for (const d of ["upstream_reset_before_response_started{connection_failure}", "response_timeout", "no_healthy_upstream", "upstream_per_try_timeout", "cluster_not_found"]) {
      expect([d, w.verdict(on, 503, d)]).toEqual([d, "fallback"]);
    }
  });

  test("gateway replies (rate limiter, authz) never trigger with backendErrorsOnly on (the default)", () => {
    for (const d of ["local_rate_limited", "ext_authz_denied", "request_rate_limited", "rbac_access_denied_matched_policy[none]"]) {
      for (const s of [401, 403, 429, 503]) expect([d, s, w.verdict(conf(), s, d)]).toEqual([d, s, "intercepted-pass"]);
    }
  });

  test("with backendErrorsOnly off, only the busy statuses 429 and 503 of a gateway reply trigger by default", () => {
    const off = conf({ backendErrorsOnly: false });
    expect(w.verdict(off, 429, "local_rate_limited")).toBe("fallback");
    expect(w.verdict(off, 503, "overload_manager")).toBe("fallback");
    for (const s of [400, 401, 403, 404, 408, 413, 500, 502, 504]) expect([s, w.verdict(off, s, "local_rate_limited")]).toEqual([s, "intercepted-pass"]);
    // triggerStatuses is about the model service's answers; it does not widen gateway triggers.
    expect(w.verdict(conf({ backendErrorsOnly: false, triggerStatuses: ["4xx"] }), 404, "some_filter")).toBe("intercepted-pass");
  });

  test("gatewayTriggerStatuses replaces the busy list; 401/403 trigger only when listed", () => {
    const c = conf({ backendErrorsOnly: false, gatewayTriggerStatuses: [429, 403] });
    expect(w.verdict(c, 403, "ext_authz_denied")).toBe("fallback");
    expect(w.verdict(c, 429, "local_rate_limited")).toBe("fallback");
    expect(w.verdict(c, 503, "local_rate_limited")).toBe("intercepted-pass");
    expect(w.verdict(c, 401, "jwt_authn_access_denied{Jwt_is_missing}")).toBe("intercepted-pass");
  });

  test("an authorisation refusal with another status (ext_authz failing closed with 503) is never replayed", () => {
    const c = conf({ backendErrorsOnly: false, gatewayTriggerStatuses: [503, 429] });
    for (const d of ["ext_authz_error", "ext_authz_denied", "rbac_access_denied_matched_policy[none]", "jwt_authn_access_denied{x}"]) {
      expect([d, w.verdict(c, 503, d)]).toEqual([d, "intercepted-pass"]);
    }
  });

  test("no route and direct_response never trigger, whatever the configuration", () => {
    const open = conf({ backendErrorsOnly: false, gatewayTriggerStatuses: [401, 403, 404, 429, 503] });
    for (const d of ["route_not_found", "direct_response"]) {
      for (const s of [403, 404, 429, 503]) expect([d, s, w.verdict(open, s, d)]).toEqual([d, s, "intercepted-pass"]);
    }
  });

  test("the filter's own local reply always passes", () => {
    expect(w.verdict(conf({ backendErrorsOnly: false }), 502, "ai_fallback")).toBe("pass");
  });

  test("a reply with no details, or details no one named, is the gateway's: a neighbour's refusal is never replayed", () => {
    for (const d of [null, "", "guardrail_denied", "lua_response", "upstream_", "via_upstream_x", "upstream_reset_before_response_startedx", "something_overflow"]) {
      for (const s of [400, 403, 429, 500, 503]) expect([d, s, w.verdict(conf(), s, d)]).toEqual([d, s, "intercepted-pass"]);
    }
    // With backendErrorsOnly off, such a reply is a gateway reply like any other: its busy statuses trigger.
    expect(w.verdict(conf({ backendErrorsOnly: false }), 503, null)).toBe("fallback");
    expect(w.verdict(conf({ backendErrorsOnly: false }), 403, "")).toBe("intercepted-pass");
  });

  test("the model service's own answers: via_upstream, the primary guard's marker, and each named router failure", () => {
    const only429 = conf({ triggerStatuses: [429] });
    expect(w.verdict(only429, 429, "via_upstream")).toBe("fallback");
    expect(w.verdict(only429, 503, "via_upstream")).toBe("pass");
    expect(w.verdict(only429, 429, "ai_fallback_guard{headers_only_error}")).toBe("fallback");
    for (const d of ["upstream_reset_before_response_started", "upstream_reset_before_response_started{overflow}",
      "upstream_reset_before_response_started{remote_reset}", "upstream_reset_before_response_started{connection_termination}",
      "upstream_per_try_idle_timeout", "upstream_max_stream_duration_reached", "maintenance_mode", "drop_overload", "unconditional_drop_overload"]) {
      expect([d, w.verdict(only429, 503, d)]).toEqual([d, "fallback"]);
    }
  });
});
