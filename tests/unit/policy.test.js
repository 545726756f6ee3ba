// The fallback policy: which primary response triggers what.
const { load } = require("./wasm");
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

  test("gateway replies (rate limiter, authz, direct_response) trigger only with backendErrorsOnly off", () => {
    for (const d of ["local_rate_limited", "ext_authz_denied", "direct_response", "request_rate_limited", "rbac_access_denied_matched_policy[none]"]) {
      expect([d, w.verdict(conf(), 429, d)]).toEqual([d, "intercepted-pass"]);
      expect([d, w.verdict(conf({ backendErrorsOnly: false }), 429, d)]).toEqual([d, "fallback"]);
    }
  });

  test("the filter's own local reply always passes", () => {
    expect(w.verdict(conf({ backendErrorsOnly: false }), 502, "ai_fallback")).toBe("pass");
  });

  test("a response without code details counts as the backend's", () => {
    expect(w.verdict(conf(), 500, null)).toBe("fallback");
  });
});
