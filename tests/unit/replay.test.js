// Request shaping for backups and the backup answer as the client gets it.
const { load } = require("./wasm");
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
  const CREDENTIALS = ["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];
  const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"];
  const base = [[":method", "POST"], [":path", "/v1/chat/completions"], [":authority", "gw"], ["x-kept", "1"]];

  test.each([...HOP_BY_HOP, "expect", "content-length"])("%s is not copied to a backup", (name) => {
    const config = JSON.stringify({ backups: [{ service: "b" }] });
    expect(lines(w.replayHeaders(config, 0, [...base, [name, "v"]]))).toEqual([":method=POST", ":path=/v1/chat/completions", ":authority=gw", "x-kept=1"]);
  });

  test.each(CREDENTIALS)("a backup that sets %s gets none of the client's five credential headers", (own) => {
    const config = JSON.stringify({ backups: [{ service: "b", headers: { [own]: "backup-secret" } }] });
    const out = lines(w.replayHeaders(config, 0, [...base, ...CREDENTIALS.map((c) => [c, "client-secret"])]));
    expect(out.filter((l) => l.includes("client-secret"))).toEqual([]);
    expect(out).toContain(`${own}=backup-secret`);
    expect(out).toContain("x-kept=1");
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
