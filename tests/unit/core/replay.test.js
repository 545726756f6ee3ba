// Request shaping for backups and the backup answer as the client gets it.
const { load } = require("../support/wasm");
const w = load();

const CLIENT = [
  [":method", "POST"], [":path", "/v1/chat/completions?x=1"], [":authority", "gw.example.com"], [":scheme", "http"],
  ["content-type", "application/json"], ["content-length", "42"], ["connection", "keep-alive"], ["te", "trailers"],
  ["transfer-encoding", "chunked"], ["expect", "100-continue"], ["authorization", "Bearer client"], ["x-api-key", "k"],
  ["x-request-id", "r1"], ["x-custom", "c"],
];
const lines = (text) => text.split("\n");

describe("replayed request headers", () => {
  test("by default: everything but hop-by-hop headers and framing, in the client's order", () => {
    const config = JSON.stringify({ backups: [{ service: "b" }] });
    expect(lines(w.replayHeaders(config, 0, CLIENT))).toEqual([
      ":method=POST", ":path=/v1/chat/completions?x=1", ":authority=gw.example.com", ":scheme=http",
      "content-type=application/json", "authorization=Bearer client", "x-api-key=k", "x-request-id=r1", "x-custom=c",
    ]);
  });

  test("a backup's path, authority and headers replace the client's; its own credential drops all of the client's", () => {
    const config = JSON.stringify({ backups: [{ service: "b", path: "/p", authority: "backup.test", headers: { Authorization: "Bearer mine", "X-Custom": "mine" } }] });
    expect(lines(w.replayHeaders(config, 0, CLIENT))).toEqual([
      ":method=POST", ":scheme=http", "content-type=application/json", "x-request-id=r1",
      ":path=/p", ":authority=backup.test", "authorization=Bearer mine", "x-custom=mine",
    ]);
  });

  test("non-credential headers of a backup leave the client's credentials in place", () => {
    const config = JSON.stringify({ backups: [{ service: "b", headers: { "x-provider": "p" } }] });
    const out = lines(w.replayHeaders(config, 0, CLIENT));
    expect(out).toContain("authorization=Bearer client");
    expect(out).toContain("x-api-key=k");
    expect(out[out.length - 1]).toBe("x-provider=p");
  });
});

describe("replayed request headers: every name the README lists", () => {
  const CREDENTIALS = [
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "ocp-apim-subscription-key",
    "x-amz-security-token", "x-amz-date", "x-amz-content-sha256",
    "openai-organization", "openai-project", "x-goog-user-project", "x-dashscope-workspace",
  ];
  const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"];
  const base = [[":method", "POST"], [":path", "/v1/chat/completions"], [":authority", "gw"], ["x-kept", "1"]];

  test.each([...HOP_BY_HOP, "expect", "content-length"])("%s is not copied to a backup", (name) => {
    const config = JSON.stringify({ backups: [{ service: "b" }] });
    expect(lines(w.replayHeaders(config, 0, [...base, [name, "v"]]))).toEqual([":method=POST", ":path=/v1/chat/completions", ":authority=gw", "x-kept=1"]);
  });

  test("the list is the module's built-in one, and the generator's copy is the same", () => {
    expect(w.builtInCredentialHeaders()).toEqual(CREDENTIALS);
    expect(require("../../../scripts/streamed_config_lib.cjs").CREDENTIAL_HEADERS).toEqual(CREDENTIALS);
  });

  test.each(CREDENTIALS)("a backup that sets %s gets none of the client's credential headers", (own) => {
    const config = JSON.stringify({ backups: [{ service: "b", headers: { [own]: "backup-secret" } }] });
    const out = lines(w.replayHeaders(config, 0, [...base, ...CREDENTIALS.map((c) => [c, "client-secret"])]));
    expect(out.filter((l) => l.includes("client-secret"))).toEqual([]);
    expect(out).toContain(`${own}=backup-secret`);
    expect(out).toContain("x-kept=1");
  });
});

describe("credentialHeaders: the operator's own credential headers", () => {
  const client = [[":method", "POST"], [":path", "/v1/chat/completions"], ["x-tenant-key", "client-secret"], ["authorization", "Bearer client"], ["x-kept", "1"]];

  test("dropped for a backup with its own credential, built-in or listed", () => {
    const withKey = JSON.stringify({ credentialHeaders: ["X-Tenant-Key"], backups: [{ service: "b", headers: { authorization: "Bearer mine" } }] });
    expect(lines(w.replayHeaders(withKey, 0, client))).toEqual([":method=POST", ":path=/v1/chat/completions", "x-kept=1", "authorization=Bearer mine"]);
    const listedOwn = JSON.stringify({ credentialHeaders: ["x-tenant-key"], backups: [{ service: "b", headers: { "x-tenant-key": "mine" } }] });
    expect(lines(w.replayHeaders(listedOwn, 0, client))).toEqual([":method=POST", ":path=/v1/chat/completions", "x-kept=1", "x-tenant-key=mine"]);
  });

  test("kept without the field, and for a backup without a credential of its own", () => {
    const unlisted = JSON.stringify({ backups: [{ service: "b", headers: { authorization: "Bearer mine" } }] });
    expect(lines(w.replayHeaders(unlisted, 0, client))).toContain("x-tenant-key=client-secret");
    const passThrough = JSON.stringify({ credentialHeaders: ["x-tenant-key"], backups: [{ service: "b" }] });
    expect(lines(w.replayHeaders(passThrough, 0, client))).toEqual(client.map(([n, v]) => `${n}=${v}`));
  });
});

describe("what a backup with its own credential never gets", () => {
  const own = JSON.stringify({ backups: [{ service: "b", headers: { authorization: "Bearer mine" } }] });
  const client = (path, extra = []) => [[":method", "POST"], [":path", path], [":authority", "gw"], ...extra];

  test("the client's cookie and credential query parameters are dropped; everything else stays in order", () => {
    const out = lines(w.replayHeaders(own, 0, client("/v1beta/models/x:generateContent?alt=sse&key=client&api-key=c2&api_key=c3&access_token=c4&keep=1",
      [["cookie", "session=client"], ["x-custom", "c"]])));
    expect(out).toEqual([":method=POST", ":path=/v1beta/models/x:generateContent?alt=sse&keep=1", ":authority=gw", "x-custom=c", "authorization=Bearer mine"]);
  });

  test("Azure API Management's subscription key and an AWS presigned request's signature, key id and token are dropped too", () => {
    const path = "/v1/chat/completions?subscription-key=s1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1&" +
      "X-Amz-Signature=abc&X-Amz-Security-Token=tok&X-Amz-Date=20261207T000000Z&keep=1";
    const out = lines(w.replayHeaders(own, 0, client(path)));
    expect(out).toContain(":path=/v1/chat/completions?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261207T000000Z&keep=1");
  });

  test("every :path the map holds loses its credential parameters (the wire-format copy rewrites each in place)", () => {
    // Envoy never hands over two, but the copy must not depend on it: each is rewritten, none is sent as the client wrote it.
    const out = lines(w.replayHeaders(own, 0, [[":method", "POST"], [":path", "/a?key=k1&x=1"], [":path", "/b?api_key=k2"], ["x-big", "v".repeat(3000)]]));
    expect(out).toEqual([":method=POST", ":path=/a?x=1", ":path=/b", `x-big=${"v".repeat(3000)}`, "authorization=Bearer mine"]);
  });

  test("credential parameter names match case-insensitively and percent-decoded, as a server may read them", () => {
    for (const [path, expected] of [
      ["/p?KEY=a", "/p"], ["/p?%6Bey=a&x=1", "/p?x=1"], ["/p?x=1&Access_Token=t", "/p?x=1"], ["/p?key", "/p"],
      ["/p?keys=1&monkey=2&key2=3", "/p?keys=1&monkey=2&key2=3"], ["/p?x=%4", "/p?x=%4"], ["/p", "/p"], ["/p?", "/p?"],
    ]) {
      expect([path, w.stripCredentialParameters(path)]).toEqual([path, expected]);
    }
  });

  test("a backup without its own credential gets the cookie and the query as the client sent them", () => {
    const none = JSON.stringify({ backups: [{ service: "b" }] });
    const out = lines(w.replayHeaders(none, 0, client("/p?key=client", [["cookie", "s=1"]])));
    expect(out).toContain(":path=/p?key=client");
    expect(out).toContain("cookie=s=1");
  });

  test("dropHeaders removes the named client headers for that backup, with or without a credential", () => {
    const drop = JSON.stringify({ backups: [{ service: "b", dropHeaders: ["X-User-Token", "x-tenant"] }] });
    const out = lines(w.replayHeaders(drop, 0, client("/p", [["x-user-token", "u"], ["x-tenant", "t"], ["x-other", "o"]])));
    expect(out).toEqual([":method=POST", ":path=/p", ":authority=gw", "x-other=o"]);
  });
});

describe("the filter's own error body", () => {
  test("names the attempts, unless the topology is hidden", () => {
    expect(w.errorBody(504, false).error.attempts).toBe("primary;result=first_packet_timeout, backup-a;model=pass-through;result=timeout");
    const hidden = w.errorBody(504, true);
    expect(hidden).toEqual({ error: { type: "ai_fallback_exhausted", code: 504, message: "every model service failed" } });
  });
});

describe("backup answer headers", () => {
  test("pseudo-headers, hop-by-hop headers and content-length are left to Envoy; the rest passes in order", () => {
    expect(lines(w.answerHeaders([[":status", "200"], ["content-type", "text/event-stream"], ["content-length", "9"],
      ["transfer-encoding", "chunked"], ["x-a", "1"], ["connection", "close"], ["set-cookie", "a"], ["set-cookie", "b"]]))).toEqual([
      "content-type=text/event-stream", "x-a=1", "set-cookie=a", "set-cookie=b",
    ]);
  });
});

describe("backup answer header map (wire format, as the client gets it)", () => {
  const answer = [[":status", "200"], ["content-type", "text/event-stream"], ["content-length", "9"], ["transfer-encoding", "chunked"],
    ["x-a", "1"], ["x-ai-fallback-attempts", "theirs"], ["connection", "close"], ["set-cookie", "a"], ["set-cookie", "b"]];
  test("the same headers as the decoded form, then the report; :status first when asked for", () => {
    const kept = ["content-type=text/event-stream", "x-a=1", "set-cookie=a", "set-cookie=b"];
    expect(lines(w.answerHeaders(answer))).toEqual(kept);
    expect(lines(w.answerPairs(w.headerPairs(answer), 0))).toEqual([...kept, "x-ai-fallback-trigger=status=503"]);
    expect(lines(w.answerPairs(w.headerPairs(answer), 429))).toEqual([":status=429", ...kept, "x-ai-fallback-trigger=status=503"]);
  });
  test("decides every name as the decoded form does (hop-by-hop names, their near misses, the report prefix)", () => {
    const names = ["te", "tf", "expect", "expects", "upgrade", "trailer", "trailers", "connection", "keep-alive", "keep-alivE",
      "content-length", "content-type", "proxy-connection", "transfer-encoding", "x-ai-fallback-", "x-ai-fallback", ":path", "a"];
    const pairs = names.map((n, i) => [n, "v" + i]);
    const decoded = lines(w.answerHeaders(pairs));
    expect(decoded).toEqual(["tf=v1", "expects=v3", "trailers=v6", "keep-alivE=v9", "content-type=v11", "x-ai-fallback=v15", "a=v17"]);
    expect(lines(w.answerPairs(w.headerPairs(pairs), 0))).toEqual([...decoded, "x-ai-fallback-trigger=status=503"]);
  });
  test("a malformed map adds none of its headers", () => {
    const map = Buffer.from(w.headerPairs(answer));
    const cut = map.subarray(0, map.length - 3);
    expect(lines(w.answerPairs(cut, 200))).toEqual([":status=200", "x-ai-fallback-trigger=status=503"]);
    expect(lines(w.answerPairs(Buffer.alloc(2), 0))).toEqual(["x-ai-fallback-trigger=status=503"]);
  });
});

describe("the model a backup was asked for", () => {
  test("an override is reported as configured", () => {
    expect(w.modelAsked("qwen-plus", '{"model":"gpt-4o"}')).toBe("qwen-plus");
  });
  test("pass-through reports the request's own model (the last, as JSON parsers take it)", () => {
    expect(w.modelAsked("pass-through", '{"model":"a","model":"gpt-4o"}')).toBe("gpt-4o");
    expect(w.modelAsked("pass-through", '{"model":"a\\u00e9"}')).toBe("a\\u00e9");
    expect(w.modelAsked("pass-through", '{"messages":[]}')).toBe("pass-through");
    expect(w.modelAsked("pass-through", "not json")).toBe("pass-through");
    expect(w.modelAsked("pass-through", '{"model":"a",')).toBe("pass-through");
  });

  test("a model that is not a string is never copied into a header (it could hold CR LF)", () => {
    expect(w.modelAsked("pass-through", '{"model":7}')).toBe("pass-through");
    expect(w.modelAsked("pass-through", '{"model":["a",\r\n"b"]}')).toBe("pass-through");
  });
});
