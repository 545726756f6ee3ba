// Wire formats: the ABI's header pairs (golden bytes), byte strings and SSE keep-alive detection.
const { load } = require("../support/wasm");
const w = load();

describe("a response's :status as the host returns it", () => {
  test("three digits are the code; anything else is 0 (no status)", () => {
    expect(w.statusCode("200")).toBe(200);
    expect(w.statusCode("503")).toBe(503);
    for (const bad of ["", "20", "2000", "2x0", " 20", "-20"]) expect(w.statusCode(bad)).toBe(0);
  });
});

describe("the served answer's header map", () => {
  test("is the same bytes as :status and the headers serialised as pairs", () => {
    for (const [status, pairs] of [[200, [["content-type", "application/json"], ["x-ai-fallback-trigger", "status=500"]]],
      [503, []], [100, [["a", ""]]], [599, [["b", "c"]]]]) {
      const expected = w.headerPairs([[":status", String(status)], ...pairs]);
      expect(w.responsePairs(status, pairs).equals(expected)).toBe(true);
    }
  });
});

describe("header pairs", () => {
  test("serialise to the ABI's layout", () => {
    const golden = Buffer.from([
      2, 0, 0, 0, // count
      5, 0, 0, 0, 1, 0, 0, 0, // ":path" / "/"
      1, 0, 0, 0, 0, 0, 0, 0, // "a" / ""
      0x3a, 0x70, 0x61, 0x74, 0x68, 0, 0x2f, 0,
      0x61, 0, 0,
    ]);
    expect(w.headerPairs([[":path", "/"], ["a", ""]]).equals(golden)).toBe(true);
    expect(w.headerPairsBack(golden)).toBe(":path=/\na=");
  });

  test("one value is read straight from the wire format", () => {
    const bytes = w.headerPairs([[":method", "CONNECT"], ["upgrade", "websocket"], ["x-request-id", "r-\u00e9"], ["x", ""]]);
    expect(w.serializedHeader(bytes, "x-request-id")).toBe("r-\u00e9");
    expect(w.serializedHeader(bytes, ":method")).toBe("CONNECT");
    expect(w.serializedHeader(bytes, "x")).toBe("");
    expect(w.serializedHeader(bytes, "upgrad")).toBe("<none>");
    expect(w.serializedHeader(Buffer.from([1, 0, 0, 0, 50, 0, 0, 0, 1, 0, 0, 0, 0x61]), "a")).toBe("<none>");
  });

  test("a response's :status is read straight from the wire format", () => {
    expect(w.statusFromPairs(w.headerPairs([["content-type", "application/json"], [":status", "503"], ["x", "200"]]))).toBe(503);
    expect(w.statusFromPairs(w.headerPairs([[":status", "200"]]))).toBe(200);
    expect(w.statusFromPairs(w.headerPairs([["status", "200"], [":statuss", "200"]]))).toBe(0);
    expect(w.statusFromPairs(w.headerPairs([[":status", "20"]]))).toBe(0);
    expect(w.statusFromPairs(w.headerPairs([[":status", "2x0"]]))).toBe(0);
    expect(w.statusFromPairs(Buffer.from([1, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 0x3a]))).toBe(0);
  });

  test("malformed buffers give no headers rather than garbage", () => {
    expect(w.headerPairsBack(Buffer.from([9, 0, 0, 0, 1, 0]))).toBe("");
    expect(w.headerPairsBack(Buffer.from([1, 0, 0, 0, 50, 0, 0, 0, 1, 0, 0, 0, 0x61]))).toBe("");
  });

  test("header names that share a slot of the shared-name table are never mistaken for each other", () => {
    // Pairs that hash to one slot (core/header_names.ts), differing only in the four-byte part or only in the tail.
    const names = ["x-name-0/", "x-name-0k", "x-name-0/", "x-nTme-0a", "x-nVme-0a", "x-nTme-0a", "x-name-0k"];
    const pairs = names.map((n, i) => [n, String(i)]);
    expect(w.headerPairsBack(w.headerPairs(pairs))).toBe(pairs.map(([n, v]) => n + "=" + v).join("\n"));
  });

  test("byte strings round-trip any byte", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(w.byteStringRoundTrip(all).equals(all)).toBe(true);
    // Every length around the four-at-a-time copy, high bytes included.
    for (let n = 1; n <= 11; n++) {
      const part = all.subarray(250 - 3 * n, 250 - 2 * n);
      expect(w.byteStringRoundTrip(part).equals(part)).toBe(true);
    }
  });
});

describe("SSE first packet", () => {
  test.each([
    [": ping\n\n", false],
    ["\n\n", false],
    [":\n:keep-alive\r\n\r\n", false],
    ["", false],
    ["data: {}\n\n", true],
    [": ping\n\ndata: x", true],
    ["event: message\n", true],
    ["d", true],
  ])("%j counts as first packet: %s", (text, expected) => {
    expect(w.firstPacket(text)).toBe(expected);
  });
});
