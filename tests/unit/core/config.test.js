// Configuration parsing: defaults, every field, and refusals that name the field.
const { load } = require("../support/wasm");
const w = load();
const cfg = (obj) => w.configSummary(typeof obj === "string" || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj));

describe("configuration", () => {
  test("minimal configuration gets the documented defaults", () => {
    const c = cfg({ backups: [{ service: "backup-a" }] });
    expect(c.global.backups).toEqual([{ service: "backup-a", model: "", timeout: 120000, path: null, authority: null, headers: {}, replacesCredentials: false, dropHeaders: [] }]);
    expect(c.global.backendErrorsOnly).toBe(true);
    expect(c.global.gatewayTriggerStatuses).toEqual([429, 503]);
    expect(c.global.methods).toEqual(["POST"]);
    expect(c.global.hideTopology).toBe(false);
    expect(c.warnings).toEqual([]);
    expect(c.global.triggerStatuses.length).toBe(200);
    expect(c.global.maxRequestBodyBytes).toBe(10485760);
    expect(c.global.maxHeldRequestBytes).toBe(524288);
    expect(c.global.firstPacketTimeout).toBe(0);
    expect(c.global.keepAliveIsNotFirstPacket).toBe(false);
    expect(c.global.firstPacket).toBe("byte");
    expect(c.global.streamIdleTimeout).toBe(0);
    expect(c.global.fallbackDeadline).toBe(240000);
    expect(c.rules).toEqual([]);
    expect(c.maxKeptBytesPerWorker).toBe(268435456);
  });

  test("model: absent, empty and pass-through all keep the request's model; a name overrides", () => {
    const c = cfg({ backups: [{ service: "a" }, { service: "a", model: "" }, { service: "a", model: "pass-through" }, { service: "outbound|443||qwen.dns", model: "qwen-plus" }] });
    expect(c.global.backups.map((b) => b.model)).toEqual(["", "", "", "qwen-plus"]);
    expect(c.global.backups[3].service).toBe("outbound|443||qwen.dns");
  });

  test("the same service may appear more than once", () => {
    const c = cfg({ backups: [{ service: "a", model: "m1" }, { service: "a", model: "m2" }] });
    expect(c.global.backups.map((b) => b.service + "/" + b.model)).toEqual(["a/m1", "a/m2"]);
  });

  test("every policy and backup field is read", () => {
    const c = cfg({
      backups: [{ service: "a", model: "m", timeout: 5000, path: "/compatible-mode/v1/chat/completions", authority: "dashscope.example.com", headers: { Authorization: "Bearer k", "X-Extra": "1" }, dropHeaders: ["X-User-Token"] }],
      backendErrorsOnly: false, triggerStatuses: ["5xx", 429, "401"], gatewayTriggerStatuses: [429, "502"], methods: ["POST", "PUT"], hideTopology: true, maxRequestBodyBytes: 1024,
      firstPacketTimeout: 1500, keepAliveIsNotFirstPacket: true, fallbackDeadline: 20000,
    });
    const b = c.global.backups[0];
    expect(b).toEqual({ service: "a", model: "m", timeout: 5000, path: "/compatible-mode/v1/chat/completions", authority: "dashscope.example.com", headers: { authorization: "Bearer k", "x-extra": "1" }, replacesCredentials: true, dropHeaders: ["x-user-token"] });
    expect(c.global).toMatchObject({ gatewayTriggerStatuses: [429, 502], methods: ["POST", "PUT"], hideTopology: true });
    expect(c.global.triggerStatuses).toEqual([401, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)]);
    expect(c.global).toMatchObject({ backendErrorsOnly: false, maxRequestBodyBytes: 1024, firstPacketTimeout: 1500, keepAliveIsNotFirstPacket: true, fallbackDeadline: 20000 });
  });

  test("streamIdleTimeout: milliseconds, 0 = off; a rule may set its own", () => {
    expect(cfg({ backups: [{ service: "a" }], streamIdleTimeout: 30000 }).global.streamIdleTimeout).toBe(30000);
    const rules = cfg({ backups: [{ service: "a" }], streamIdleTimeout: 30000, _rules_: [{ _match_route_: ["r"], streamIdleTimeout: 0 }] });
    expect(rules.rules[0].policy.streamIdleTimeout).toBe(0);
    expect(cfg({ backups: [{ service: "a" }], streamIdleTimeout: "30s" }).error).toMatch(/^streamIdleTimeout: must be an integer number of milliseconds from 0 to 2147483647, got "30s"/);
    expect(cfg({ backups: [{ service: "a" }], streamIdleTimeout: -1 }).error).toMatch(/^streamIdleTimeout: must be an integer number of milliseconds/);
  });

  test("firstPacket: byte, event or content; keepAliveIsNotFirstPacket is one case of it, and not set beside it", () => {
    for (const name of ["byte", "event", "content"]) expect(cfg({ backups: [{ service: "a" }], firstPacket: name }).global.firstPacket).toBe(name);
    expect(cfg({ backups: [{ service: "a" }], keepAliveIsNotFirstPacket: true }).global.firstPacket).toBe("event");
    expect(cfg({ backups: [{ service: "a" }], keepAliveIsNotFirstPacket: false }).global.firstPacket).toBe("byte");
    // A rule inherits the global value and may set its own.
    const rules = cfg({ backups: [{ service: "a" }], firstPacket: "content", _rules_: [{ _match_route_: ["r"], firstPacket: "byte" }, { _match_route_: ["s"] }] });
    expect(rules.rules.map((r) => r.policy.firstPacket)).toEqual(["byte", "content"]);
    expect(cfg({ backups: [{ service: "a" }], firstPacket: "token" }).error).toBe('firstPacket: must be "byte" (any body byte), "event" ' +
      '(the first SSE line that is not a keep-alive comment or blank) or "content" (the first SSE event that carries content: ' +
      'metadata events wait, an error event before it falls back), got "token"');
    expect(cfg({ backups: [{ service: "a" }], firstPacket: true }).error).toMatch(/^firstPacket: must be "byte"/);
    expect(cfg({ backups: [{ service: "a" }], firstPacket: "content", keepAliveIsNotFirstPacket: true }).error).toBe(
      'keepAliveIsNotFirstPacket: set firstPacket alone (keepAliveIsNotFirstPacket: true is firstPacket "event", false is "byte")');
  });

  test("paths with a query and percent escapes, authorities with a port or an IP literal, and the largest budget are accepted", () => {
    const c = cfg({
      backups: [
        { service: "a", path: "/v1/chat/completions?api-version=2024-06-01&x=%2F", authority: "api.example.com:8443" },
        { service: "b", path: "/deployments/gpt-4o;v=1/chat@x", authority: "[::1]:443", headers: { "x-a": "inner  space kept" } },
      ],
      maxKeptBytesPerWorker: 536870912,
    });
    expect(c.error).toBeUndefined();
    expect(c.global.backups.map((b) => b.path)).toEqual(["/v1/chat/completions?api-version=2024-06-01&x=%2F", "/deployments/gpt-4o;v=1/chat@x"]);
    expect(c.global.backups[1].authority).toBe("[::1]:443");
    expect(c.maxKeptBytesPerWorker).toBe(536870912);
  });

  test("escapes mean what JSON says, in keys too: \\u escapes (a surrogate pair is one character), \\\"", () => {
    const c = cfg('{"back\\u0075ps":[{"service":"a","model":"m\\ud83d\\ude00\\u00e9\\"q\\"","headers":{"x-\\u0061":"v"}}]}');
    expect(c.error).toBeUndefined();
    expect(c.global.backups[0].model).toBe(JSON.parse('"m\\ud83d\\ude00\\u00e9\\"q\\""'));
    expect(c.global.backups[0].headers).toEqual({ "x-a": "v" });
  });

  test("a repeated key: the last value counts (as in JSON.parse)", () => {
    const c = cfg('{"backups":[{"service":"a"}],"backups":[{"service":"b"}],"firstPacketTimeout":1,"firstPacketTimeout":2}');
    expect(c.global.backups.map((b) => b.service)).toEqual(["b"]);
    expect(c.global.firstPacketTimeout).toBe(2);
  });

  test("an unknown key is named as the configuration writes it; a refused number is quoted as written", () => {
    expect(cfg('{"backups":[{"service":"a"}],"x\\ty\\u0001":1}').error).toMatch(/^x\\ty\\u0001: unknown field/);
    expect(cfg('{"backups":[{"service":"a"}],"firstPacketTimeout":1.50}').error).toMatch(/^firstPacketTimeout: must be an integer .*, got 1\.50$/);
    expect(cfg('{"backups":[{"service":"a"}],"firstPacketTimeout":1e3}').global.firstPacketTimeout).toBe(1000);
    expect(cfg('{"backups":[{"service":"a"}],"hideTopology":{"a":[1,"b\\\\",null,false]}}').error)
      .toBe('hideTopology: must be true or false, got {"a":[1,"b\\\\",null,false]}');
  });

  test("JSON's \\/ escape is read as a slash", () => {
    const c = cfg('{"backups":[{"service":"a","path":"\\/v1\\/chat","headers":{"x-a":"b\\\\/c"}}]}');
    expect(c.global.backups[0].path).toBe("/v1/chat");
    expect(c.global.backups[0].headers["x-a"]).toBe("b\\/c");
  });

  test("rules inherit the global policy and override what they set", () => {
    const c = cfg({
      backups: [{ service: "g" }], firstPacketTimeout: 100,
      _rules_: [{ _match_route_: ["chat"], backups: [{ service: "r" }] }, { _match_domain_: ["*.Example.com"], backendErrorsOnly: false }],
    });
    expect(c.rules[0].routes).toEqual(["chat"]);
    expect(c.rules[0].policy.backups[0].service).toBe("r");
    expect(c.rules[0].policy.firstPacketTimeout).toBe(100);
    expect(c.rules[1].domains).toEqual(["suffix:.example.com"]);
    expect(c.rules[1].policy.backups[0].service).toBe("g");
    expect(c.rules[1].policy.backendErrorsOnly).toBe(false);
  });

  test("global backups may be left out when every rule has its own", () => {
    const c = cfg({ _rules_: [{ _match_route_: ["a"], backups: [{ service: "x" }] }] });
    expect(c.global.backups).toEqual([]);
  });

  test("a request gets the first matching rule, else the global policy", () => {
    const json = JSON.stringify({
      backups: [{ service: "g" }],
      _rules_: [{ _match_route_: ["chat"], backups: [{ service: "r" }] }, { _match_domain_: ["*.example.com", "api.test"], backups: [{ service: "d" }] }],
    });
    expect(w.policyFor(json, "chat", "other")).toBe("rule:0");
    expect(w.policyFor(json, "x", "foo.example.com:8080")).toBe("rule:1");
    expect(w.policyFor(json, "x", "API.TEST")).toBe("rule:1");
    expect(w.policyFor(json, "x", "example.org")).toBe("global");
  });

  test("a rule may match the upstream service; with a route too, both must hold", () => {
    const json = JSON.stringify({
      backups: [{ service: "g" }],
      _rules_: [
        { _match_route_: ["chat"], _match_service_: ["outbound|443||qwen.dns"], backups: [{ service: "both" }] },
        { _match_service_: ["outbound|443||qwen.dns"], backups: [{ service: "svc" }] },
      ],
    });
    expect(w.policyFor(json, "chat", "h", "outbound|443||qwen.dns")).toBe("rule:0");
    expect(w.policyFor(json, "other", "h", "outbound|443||qwen.dns")).toBe("rule:1");
    expect(w.policyFor(json, "chat", "h", "outbound|443||openai.dns")).toBe("global");
    expect(cfg(JSON.parse(json)).rules[1].services).toEqual(["outbound|443||qwen.dns"]);
  });

  test("listing 401 or 403 as gateway triggers is accepted with a warning for each", () => {
    const c = cfg({ backups: [{ service: "a" }], backendErrorsOnly: false, gatewayTriggerStatuses: [429, 403],
      _rules_: [{ _match_route_: ["r"], gatewayTriggerStatuses: [401] }] });
    expect(c.error).toBeUndefined();
    expect(c.warnings).toEqual([
      "gatewayTriggerStatuses lists 403: requests the gateway refused (authentication or authorisation) will be replayed to the backups with their credentials",
      "_rules_[0].gatewayTriggerStatuses lists 401: requests the gateway refused (authentication or authorisation) will be replayed to the backups with their credentials",
    ]);
  });

  const refusals = [
    ["not JSON", "backups: [", /^configuration: not valid JSON/],
    ["empty", "", /^configuration: empty/],
    ["an array", "[]", /^configuration: must be a JSON object/],
    ["no backups", {}, /^backups: required/],
    ["empty backups", { backups: [] }, /^backups: must list at least one backup/],
    ["backups not an array", { backups: "a" }, /^backups: must be an array/],
    ["backup not an object", { backups: ["a"] }, /^backups\[0\]: must be an object/],
    ["missing service", { backups: [{ model: "m" }] }, /^backups\[0\]\.service: required/],
    ["empty service", { backups: [{ service: "" }] }, /^backups\[0\]\.service: must not be empty/],
    ["service not a string", { backups: [{ service: 7 }] }, /^backups\[0\]\.service: must be a string, got 7/],
    ["model not a string", { backups: [{ service: "a", model: 1 }] }, /^backups\[0\]\.model: must be a string/],
    ["timeout not an integer", { backups: [{ service: "a" }, { service: "b", timeout: 1.5 }] }, /^backups\[1\]\.timeout: must be an integer number of milliseconds from 1/],
    ["timeout as text", { backups: [{ service: "a", timeout: "5s" }] }, /^backups\[0\]\.timeout: must be an integer/],
    ["zero timeout", { backups: [{ service: "a", timeout: 0 }] }, /^backups\[0\]\.timeout: must be an integer number of milliseconds from 1/],
    ["unknown backup key", { backups: [{ service: "a", modle: "m" }] }, /^backups\[0\]\.modle: unknown field/],
    ["unknown top-level key", { backups: [{ service: "a" }], fallback: true }, /^fallback: unknown field/],
    ["path without slash", { backups: [{ service: "a", path: "v1" }] }, /^backups\[0\]\.path: must start with "\/"/],
    ["header value not a string", { backups: [{ service: "a", headers: { "x-a": 1 } }] }, /^backups\[0\]\.headers\.x-a: must be a string/],
    ["pseudo-header", { backups: [{ service: "a", headers: { ":path": "/x" } }] }, /^backups\[0\]\.headers\.:path: this header cannot be set/],
    ["control character in a service", { backups: [{ service: "a\u0000b" }] }, /^backups\[0\]\.service: must not contain control characters/],
    ["newline in a header value", { backups: [{ service: "a", headers: { "x-a": "v\r\nx-b: 1" } }] }, /^backups\[0\]\.headers\.x-a: must not contain control characters/],
    ["bad header name", { backups: [{ service: "a", headers: { "x a": "v" } }] }, /^backups\[0\]\.headers\.x a: not a valid header name/],
    ["nested too deep", '{"backups":[{"service":"a"}],"x":' + "[".repeat(2000) + "]".repeat(2000) + "}", /^configuration: not valid JSON, or nested over 1024 levels/],
    ["switch not a bool", { backups: [{ service: "a" }], backendErrorsOnly: "yes" }, /^backendErrorsOnly: must be true or false/],
    ["bad status", { backups: [{ service: "a" }], triggerStatuses: [200] }, /^triggerStatuses\[0\]: must be a non-empty array/],
    ["bad status class", { backups: [{ service: "a" }], triggerStatuses: ["3xx"] }, /^triggerStatuses\[0\]:/],
    ["empty statuses", { backups: [{ service: "a" }], triggerStatuses: [] }, /^triggerStatuses: must be a non-empty array/],
    ["negative first packet timeout", { backups: [{ service: "a" }], firstPacketTimeout: -1 }, /^firstPacketTimeout: must be an integer number of milliseconds from 0/],
    ["zero body limit", { backups: [{ service: "a" }], maxRequestBodyBytes: 0 }, /^maxRequestBodyBytes: must be an integer number of bytes from 1/],
    ["body limit over 256 MiB", { backups: [{ service: "a" }], maxRequestBodyBytes: 268435457 }, /^maxRequestBodyBytes: must be an integer number of bytes from 1 to 268435456/],
    ["zero held limit", { backups: [{ service: "a" }], maxHeldRequestBytes: 0 }, /^maxHeldRequestBytes: must be an integer number of bytes from 1/],
    ["a status class as a gateway trigger", { backups: [{ service: "a" }], gatewayTriggerStatuses: ["4xx"] }, /^gatewayTriggerStatuses\[0\]: must be an array of status codes 400..599 \(no classes/],
    ["gateway triggers not an array", { backups: [{ service: "a" }], gatewayTriggerStatuses: 429 }, /^gatewayTriggerStatuses: must be an array/],
    ["a 2xx gateway trigger", { backups: [{ service: "a" }], gatewayTriggerStatuses: [200] }, /^gatewayTriggerStatuses\[0\]:/],
    ["no methods", { backups: [{ service: "a" }], methods: [] }, /^methods: must list at least one method/],
    ["a lower-case method", { backups: [{ service: "a" }], methods: ["post"] }, /^methods\[0\]: must be an upper-case HTTP method such as "POST", got "post"/],
    ["topology switch not a bool", { backups: [{ service: "a" }], hideTopology: 1 }, /^hideTopology: must be true or false/],
    ["dropHeaders not a list", { backups: [{ service: "a", dropHeaders: "cookie" }] }, /^backups\[0\]\.dropHeaders: must be an array of header names/],
    ["dropping a pseudo-header", { backups: [{ service: "a", dropHeaders: [":path"] }] }, /^backups\[0\]\.dropHeaders\[0\]: must name an ordinary header/],
    ["rule without match", { backups: [{ service: "a" }], _rules_: [{ backups: [{ service: "b" }] }] }, /^_rules_\[0\]: needs a non-empty _match_route_, _match_domain_, _match_service_ or _match_route_prefix_/],
    ["rule with unknown key", { backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], x: 1 }] }, /^_rules_\[0\]\.x: unknown field/],
    ["worker budget inside a rule", { backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], maxKeptBytesPerWorker: 5 }] }, /^_rules_\[0\]\.maxKeptBytesPerWorker: unknown field/],
    ["zero worker budget", { backups: [{ service: "a" }], maxKeptBytesPerWorker: 0 }, /^maxKeptBytesPerWorker: must be an integer number of bytes from 1/],
    ["a JSON value that is not an object", "true", /^configuration: must be a JSON object/],
    ["a JSON string", '"backups"', /^configuration: must be a JSON object/],
    ["malformed UTF-8", Buffer.from('{"backups":[{"service":"a\xae"}]}', "latin1"), /^configuration: not valid UTF-8 \(at byte 25\)/],
    ["a control character quoted in an error stays escaped (one log line)", '{"backups":[{"service":"a"}],"_rules_":"\\r\\n"}', /^_rules_: must be an array, got .*\\u000d\\u000a/],
    ["worker budget over what the VM can hold", { backups: [{ service: "a" }], maxKeptBytesPerWorker: 536870913 }, /^maxKeptBytesPerWorker: must be an integer number of bytes from 1 to 536870912, got 536870913/],
    ["space in a path", { backups: [{ service: "a", path: "/v1/chat completions" }] }, /^backups\[0\]\.path: must be a URL path \(and query\), percent-encoded: a space at character 8 is not allowed/],
    ["fragment in a path", { backups: [{ service: "a", path: "/v1#x" }] }, /^backups\[0\]\.path: .*"#" at character 3/],
    ["non-ASCII in a path", { backups: [{ service: "a", path: "/v1/modèle" }] }, /^backups\[0\]\.path: .*"è" at character 7/],
    ["broken percent escape in a path", { backups: [{ service: "a", path: "/v1/%zz" }] }, /^backups\[0\]\.path: .*"%" at character 4/],
    ["space in an authority", { backups: [{ service: "a", authority: "api.example.com extra" }] }, /^backups\[0\]\.authority: must be a host or host:port: a space at character 15/],
    ["path in an authority", { backups: [{ service: "a", authority: "api.example.com/v1" }] }, /^backups\[0\]\.authority: .*"\/" at character 15/],
    ["userinfo in an authority", { backups: [{ service: "a", authority: "user@api.example.com" }] }, /^backups\[0\]\.authority: .*"@" at character 4/],
    ["leading space in a header value", { backups: [{ service: "a", headers: { authorization: " Bearer x" } }] }, /^backups\[0\]\.headers\.authorization: must not begin or end with whitespace/],
    ["trailing tab in a header value", { backups: [{ service: "a", headers: { "x-a": "v\t" } }] }, /^backups\[0\]\.headers\.x-a: must not contain control characters|must not begin or end with whitespace/],
    ["rule without any backups", { _rules_: [{ _match_route_: ["r"] }] }, /^_rules_\[0\]\.backups: required/],
    ["rule with a bad backup", { backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], backups: [{}] }] }, /^_rules_\[0\]\.backups\[0\]\.service: required/],
  ];
  test.each(refusals)("refuses %s, naming the field", (_, input, message) => {
    const c = cfg(input);
    expect(c.error).toMatch(message);
  });
});

describe("backups[].headers: names the README promises", () => {
  test.each([":path", ":authority", ":method", ":scheme", ":status", "host", "Host", "content-length", "Content-Length", "transfer-encoding"])(
    "%s cannot be set, and the error names it", (name) => {
      expect(cfg({ backups: [{ service: "a", headers: { [name]: "x" } }] }).error)
        .toMatch(new RegExp(`^backups\\[0\\]\\.headers\\.${name}: this header cannot be set`));
    });

  test.each(["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "X-Goog-Api-Key"])(
    "%s is a credential: a backup that sets it replaces the client's credentials", (name) => {
      const c = cfg({ backups: [{ service: "a", headers: { [name]: "mine" } }] });
      expect(c.error).toBeUndefined();
      expect(c.global.backups[0].replacesCredentials).toBe(true);
    });

  test.each(["ocp-apim-subscription-key", "x-amz-security-token", "x-amz-date", "x-amz-content-sha256", "openai-organization", "openai-project", "x-goog-user-project", "x-dashscope-workspace", "OCP-Apim-Subscription-Key"])(
    "%s is a credential too (Azure API Management, AWS, the client's provider account)", (name) => {
      expect(cfg({ backups: [{ service: "a", headers: { [name]: "mine" } }] }).global.backups[0].replacesCredentials).toBe(true);
    });

  test("other headers are no credential", () => {
    for (const name of ["x-provider", "cookie-like", "x-authorization-hint", "apikey"]) {
      expect([name, cfg({ backups: [{ service: "a", headers: { [name]: "v" } }] }).global.backups[0].replacesCredentials]).toEqual([name, false]);
    }
  });
});

describe("credentialHeaders: credential headers of the operator's own", () => {
  test("a backup whose headers name one of them brings its own credential (case-insensitive); without the field it does not", () => {
    const backups = [{ service: "a", headers: { "X-Tenant-Key": "mine" } }];
    expect(cfg({ backups }).global.backups[0].replacesCredentials).toBe(false);
    expect(cfg({ credentialHeaders: ["x-tenant-key"], backups }).global.backups[0].replacesCredentials).toBe(true);
    expect(cfg({ credentialHeaders: ["X-TENANT-KEY"], backups }).global.backups[0].replacesCredentials).toBe(true);
    // In rules too: the list is one for the whole configuration.
    const ruled = cfg({ credentialHeaders: ["x-tenant-key"], backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], backups }] });
    expect(ruled.rules[0].policy.backups[0].replacesCredentials).toBe(true);
    // The built-in list stays.
    expect(cfg({ credentialHeaders: ["x-tenant-key"], backups: [{ service: "a", headers: { authorization: "x" } }] }).global.backups[0].replacesCredentials).toBe(true);
    expect(cfg({ credentialHeaders: [], backups }).error).toBeUndefined();
  });

  test.each([
    ["not a list", "x-tenant-key", /^credentialHeaders: must be an array of header names, e\.g\. \["x-tenant-key"\], got "x-tenant-key"$/],
    ["a number in the list", [1], /^credentialHeaders\[0\]: must be a string, got 1$/],
    ["a pseudo-header", ["x-ok", ":authority"], /^credentialHeaders\[1\]: must name an ordinary header \(not a pseudo-header, host or framing\), got ":authority"$/],
    ["host", ["Host"], /^credentialHeaders\[0\]: must name an ordinary header .*got "host"$/],
    ["content-length", ["content-length"], /^credentialHeaders\[0\]: must name an ordinary header/],
    ["transfer-encoding", ["transfer-encoding"], /^credentialHeaders\[0\]: must name an ordinary header/],
    ["a name with a space", ["x tenant"], /^credentialHeaders\[0\]: must name an ordinary header/],
    ["an empty name", [""], /^credentialHeaders\[0\]: must name an ordinary header/],
  ])("refuses %s, naming the field", (_, value, message) => {
    expect(cfg({ credentialHeaders: value, backups: [{ service: "a" }] }).error).toMatch(message);
  });

  test("top level only: a rule cannot set it", () => {
    expect(cfg({ backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], credentialHeaders: ["x"] }] }).error)
      .toMatch(/^_rules_\[0\]\.credentialHeaders: unknown field/);
  });
});

describe("refusals that teach: the unit, the number meant, the field meant", () => {
  const { CONFIG_MISTAKES, STRUCT_MESSAGE } = require("../../shared/config_mistakes");
  test.each(CONFIG_MISTAKES.map((m) => [m.name, m]))("%s", (_, { plugin, message }) => {
    expect(cfg(plugin).error).toBe(message);
  });

  test.each([
    ["1.5s", "(write 1500 for 1.5 s)"], ["250ms", "(write 250 for 250 ms)"], ["2m", "(write 120000 for 2 m)"], ["1h", "(write 3600000 for 1 h)"],
  ])("a duration %s is translated to milliseconds", (text, hint) => {
    expect(cfg({ backups: [{ service: "a" }], fallbackDeadline: text }).error).toContain(hint);
  });

  test("no hint where none is sure: an unknown unit, a fraction of a millisecond, a number", () => {
    for (const v of ["10 parsecs", "0.5ms", 1.5, "abc"]) {
      expect(cfg({ backups: [{ service: "a", timeout: v }] }).error).toBe(
        `backups[0].timeout: must be an integer number of milliseconds from 1 to 2147483647, got ${JSON.stringify(v)}`);
    }
  });

  test("a field name is suggested when one edit or two away, or written in another case, and only then", () => {
    expect(cfg({ backups: [{ service: "a" }], BackendErrorsOnly: true }).error).toBe("BackendErrorsOnly: unknown field; did you mean backendErrorsOnly?");
    expect(cfg({ backups: [{ service: "a" }], hidetopolgy: true }).error).toBe("hidetopolgy: unknown field; did you mean hideTopology?");
    expect(cfg({ backups: [{ service: "a", servcie: "b" }] }).error).toBe("backups[0].servcie: unknown field; did you mean service?");
    expect(cfg({ backups: [{ service: "a", x: 1 }] }).error).toMatch(/^backups\[0\]\.x: unknown field \(known: service, model, timeout/);
    expect(cfg({ backups: [{ service: "a" }], _rules_: [{ _match_route_: ["r"], firstPacketTimeot: 1 }] }).error)
      .toBe("_rules_[0].firstPacketTimeot: unknown field; did you mean firstPacketTimeout?");
  });

  test("a google.protobuf.Struct's bytes are recognised and the StringValue form is shown", () => {
    // Struct { fields: { "a": Value { string_value: "b" } } } as protobuf: 0a 08 | 0a 01 'a' 12 03 | 1a 01 'b'.
    const struct = Buffer.from([0x0a, 0x08, 0x0a, 0x01, 0x61, 0x12, 0x03, 0x1a, 0x01, 0x62]);
    expect(cfg(struct).error).toBe(STRUCT_MESSAGE);
    expect(w.upstreamConfigSummary(struct)).toBe("error: " + STRUCT_MESSAGE);
    // Other bytes that are not JSON keep the plain answer.
    expect(cfg(Buffer.from([0x0a, 0x08, 0x0a])).error).toMatch(/^configuration: not valid JSON, or nested over 1024 levels \(error at byte 1\)/);
    expect(cfg("").error).toMatch(/^configuration: empty; a JSON object with "backups" is required: give it as "configuration": \{"@type": "type.googleapis.com\/google.protobuf.StringValue"/);
  });
});

describe("hedge (race a slow primary)", () => {
  const base = { backups: [{ service: "backup-a" }], firstPacketTimeout: 2000 };
  test("accepted with firstPacketTimeout and a bound", () => {
    const c = cfg({ ...base, hedge: { maxInFlight: 10 } });
    expect(c.error).toBeUndefined();
    expect(c.global.firstPacketTimeout).toBe(2000);
  });
  test.each([
    [{ hedge: { maxInFlight: 10 }, firstPacketTimeout: 0 }, /^hedge: needs firstPacketTimeout/],
    [{ hedge: true }, /^hedge: must be an object such as \{"maxInFlight": 10\}/],
    [{ hedge: {} }, /^hedge\.maxInFlight: required/],
    [{ hedge: { maxInFlight: 0 } }, /^hedge\.maxInFlight: must be an integer from 1 to 100000/],
    [{ hedge: { maxInFlight: 5, delay: 1 } }, /^hedge\.delay: unknown field/],
  ])("refused, naming the field: %j", (extra, message) => {
    expect(cfg({ ...base, ...extra }).error).toMatch(message);
  });
});
