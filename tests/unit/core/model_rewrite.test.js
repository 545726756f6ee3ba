// Byte-exact model override on tricky JSON bodies.
const { load } = require("../support/wasm");
const w = load();
const REWRITTEN = 0, NOT_JSON_OBJECT = 1, NO_MODEL = 2;

describe("model rewrite", () => {
  test("only the top-level model value changes; every other byte stays", () => {
    const body = '{ "model" : "gpt-4o",\n\t"messages":[{"role":"user","content":"hi"}] , "stream":true }';
    const r = w.rewrite(body, "qwen-plus");
    expect(r.outcome).toBe(REWRITTEN);
    expect(r.body.toString()).toBe(body.replace('"gpt-4o"', '"qwen-plus"'));
  });

  test("a body that starts with a UTF-8 byte order mark is rewritten after it; the mark stays", () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const body = Buffer.concat([bom, Buffer.from('{"model":"gpt-4o","stream":true}')]);
    const r = w.rewrite(body, "qwen-plus");
    expect(r.outcome).toBe(REWRITTEN);
    expect(r.body.equals(Buffer.concat([bom, Buffer.from('{"model":"qwen-plus","stream":true}')]))).toBe(true);
    expect(w.scan(body)).toMatchObject({ valid: true, isObject: true, streamTrue: true });
    expect(w.streamingRequest(body)).toBe(true);
    expect(w.modelAsked("pass-through", body)).toBe("gpt-4o");
    // A mark anywhere else is not whitespace: the body is not JSON.
    expect(w.rewrite(Buffer.concat([Buffer.from(" "), bom, Buffer.from('{"model":"a"}')]), "b").outcome).toBe(NOT_JSON_OBJECT);
  });

  test("nested model keys are left alone", () => {
    const body = '{"tools":[{"model":"inner"}],"meta":{"model":"x"},"model":"outer"}';
    expect(w.rewrite(body, "m").body.toString()).toBe('{"tools":[{"model":"inner"}],"meta":{"model":"x"},"model":"m"}');
  });

  test("a key written with escapes is still the model key", () => {
    const body = '{"mod\\u0065l":"a","b":1}';
    expect(w.rewrite(body, "z").body.toString()).toBe('{"mod\\u0065l":"z","b":1}');
  });

  test("escaped quotes and backslashes inside strings do not confuse the scan", () => {
    const body = '{"content":"say \\"model\\": \\\\","model":"a\\"b","x":"\\\\"}';
    expect(w.rewrite(body, "new").body.toString()).toBe('{"content":"say \\"model\\": \\\\","model":"new","x":"\\\\"}');
  });

  test("unicode around and in the model stays byte for byte", () => {
    const body = '{"messages":[{"content":"你好 🌍"}],"model":"模型-1"}';
    const r = w.rewrite(body, "通义千问");
    expect(r.body.equals(Buffer.from('{"messages":[{"content":"你好 🌍"}],"model":"通义千问"}'))).toBe(true);
  });

  test("every duplicate top-level model is replaced (parsers differ on which one wins)", () => {
    expect(w.rewrite('{"model":"a","model":"b"}', "c").body.toString()).toBe('{"model":"c","model":"c"}');
  });

  test("a non-string model value is replaced too", () => {
    expect(w.rewrite('{"model":null,"n":[1,2]}', "c").body.toString()).toBe('{"model":"c","n":[1,2]}');
  });

  test("the override is JSON-escaped", () => {
    expect(w.modelLiteral('we"ird\\name\n').toString()).toBe('"we\\"ird\\\\name\\u000a"');
    expect(w.rewrite('{"model":"a"}', 'x"y').body.toString()).toBe('{"model":"x\\"y"}');
  });

  test.each([
    ["plain text", "hello model"],
    ["truncated JSON", '{"model":"a",'],
    ["trailing garbage", '{"model":"a"} x'],
    ["a JSON array", '[{"model":"a"}]'],
    ["empty body", ""],
    ["bad escape", '{"model":"a\\q"}'],
    ["raw control character in a string", '{"model":"a\u0001"}'],
  ])("%s is sent unchanged", (_, body) => {
    const r = w.rewrite(body, "m");
    expect(r.outcome).toBe(NOT_JSON_OBJECT);
    expect(r.body.toString()).toBe(body);
  });

  test("a JSON object without a top-level model is sent unchanged", () => {
    const body = '{"messages":[{"model":"nested"}]}';
    const r = w.rewrite(body, "m");
    expect(r.outcome).toBe(NO_MODEL);
    expect(r.body.toString()).toBe(body);
  });

  test("deep nesting is handled without recursion, and over 1024 levels counts as not JSON", () => {
    const deep = (n) => '{"model":"a","x":' + "[".repeat(n) + "]".repeat(n) + "}";
    expect(w.rewrite(deep(1000), "b").outcome).toBe(REWRITTEN);
    expect(w.rewrite(deep(100000), "b").outcome).toBe(NOT_JSON_OBJECT);
  });
});

describe("JSON scan", () => {
  test("finds stream:true at the top level only", () => {
    expect(w.scan('{"stream":true}').streamTrue).toBe(true);
    expect(w.scan('{"stream":false}').streamTrue).toBe(false);
    expect(w.scan('{"x":{"stream":true}}').streamTrue).toBe(false);
    expect(w.scan('{"stream":"true"}').streamTrue).toBe(false);
    expect(w.scan('{"stream":true,"stream":false}').streamTrue).toBe(false);
  });

  test("the fast stream check agrees with the full scan on valid bodies", () => {
    const bodies = [
      '{"stream":true}', '{"stream":false}', '{"x":{"stream":true}}', '{"stream":"true"}', '{"stream":true,"stream":false}',
      '{"stream":false,"stream":true}', ' { "model" : "a" , "stream" :\n true } ', '{"messages":[{"content":"\\"stream\\":true"}],"stream":false}',
      '{"str\\u0065am":true}', '{"a":["stream",{"stream":true}],"streams":true}', '{"upstream":true}', '{"stream":truex}', "[]", '"stream"',
      '{"a":"\\\\","stream":true}', '{"a":[[[{"b":"}"}]]],"stream":true}', "{}",
    ];
    for (const body of bodies) {
      expect([body, w.streamingRequest(body)]).toEqual([body, w.scan(body).streamTrue]);
    }
    // Random nesting, strings with braces and escapes, and the key at different places.
    let seed = 7;
    const rnd = (n) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const value = (d) => {
      const k = rnd(d > 3 ? 3 : 6);
      if (k === 0) return JSON.stringify("s{[" + "\\\"".repeat(rnd(3)) + "]}");
      if (k === 1) return String(rnd(100));
      if (k === 2) return rnd(2) ? "true" : "null";
      if (k === 3) return "[" + Array.from({ length: rnd(3) }, () => value(d + 1)).join(",") + "]";
      return "{" + Array.from({ length: rnd(3) }, (_, i) => JSON.stringify(rnd(4) ? "k" + i : "stream") + ":" + value(d + 1)).join(",") + "}";
    };
    for (let n = 0; n < 300; n++) {
      const members = Array.from({ length: 1 + rnd(4) }, (_, i) => JSON.stringify(rnd(3) ? "m" + i : "stream") + " : " + (rnd(2) ? "true" : value(1)));
      const body = "{" + members.join(" , ") + "}";
      expect([body, w.streamingRequest(body)]).toEqual([body, w.scan(body).streamTrue]);
    }
  });

  test("the fast stream check finds quotes and backslashes at every offset of its 8-byte steps", () => {
    // A quote or backslash at each position of a word, runs of both, and bodies cut short.
    for (let k = 0; k < 24; k++) {
      for (const mark of ['\\"', "\\\\", '\\"\\\\\\"', "\\u0022"]) {
        const text = "x".repeat(k) + mark + "y".repeat(17 - (k % 9));
        for (const tail of [',"stream":true}', ',"stream":false}', '}']) {
          const body = `{"messages":[{"content":"${text}"}],"m":"${text}"${tail}`;
          expect([body, w.streamingRequest(body)]).toEqual([body, w.scan(body).streamTrue]);
          // Cut inside the message text: the key is never reached, and nothing is read past the end.
          for (const cut of [k + 20, k + 21, body.indexOf(text) + text.length - 1]) {
            expect([cut, w.streamingRequest(body.slice(0, cut))]).toEqual([cut, false]);
          }
        }
      }
    }
    const long = JSON.stringify({ messages: [{ role: "user", content: 'He said "stream": true, \\ ok. '.repeat(5000) }], stream: true });
    expect(w.streamingRequest(long)).toBe(true);
    expect(w.streamingRequest(long.replace('"stream":true}', '"stream":false}'))).toBe(false);
  });

  test("the stream check, reading from the body's end, agrees with the full scan: backslash runs before quotes, the key first, last, nested or absent", () => {
    // Strings whose text ends in backslashes (an even run ends the string, an odd one escapes the quote), at every offset of an 8-byte word.
    const texts = [];
    for (let k = 0; k < 17; k++) {
      for (const end of ["\\\\", "\\\"", "\\\\\\\"x", '\\\"\\\\', "\\u0022", ":,}]{[", "\u00e9"]) texts.push("x".repeat(k) + end);
    }
    const bodies = [];
    for (const t of texts) {
      const str = `"${t}"`;
      JSON.parse(str); // every text is a valid JSON string
      bodies.push(`{"messages":[{"content":${str}}],"stream":true}`);
      bodies.push(`{"stream":true,"messages":[{"content":${str},"stream":false}],"m":${str}}`);
      bodies.push(`{"stream":false,"a":{"stream":true,"b":[${str},":"]},"k":${str} }\n`);
      bodies.push(`{"a":${str},"stream" : true , "z":${str}}`);
      bodies.push(`{"a":${str},"b":{"stream":true}}`);
      bodies.push(`\ufeff {"a":${str},"stream":true}`);
      bodies.push(`{"${t}":1,"stream":true}`);
      bodies.push(`{"stream":true,"${t}":{"x":"stream"}}`);
    }
    for (const body of bodies) {
      expect([body, w.streamingRequest(body)]).toEqual([body, w.scan(body).streamTrue]);
      expect([body, w.streamingRequest(body)]).toEqual([body, JSON.parse(body.replace(/^\ufeff/, "")).stream === true]);
    }
    // Not an object's end, or no opening quote for a string: read from the start, as before. (Of other
    // bodies that are not JSON, neither reading says anything a client could rely on.)
    expect(w.streamingRequest('{"stream":true')).toBe(true);
    expect(w.streamingRequest('{"stream":true,"a":"x')).toBe(true);
    expect(w.streamingRequest('[{"stream":true}]')).toBe(false);
  });

  test("the validating scan stops at a control byte, a bad escape or a quote at every offset of its 8-byte steps", () => {
    for (let k = 0; k < 20; k++) {
      const head = '{"model":"m","content":"' + "x".repeat(k);
      for (const [bad, okay] of [["\n", false], ["\u001f", false], ["\\q", false], ['\\"', true], ["\\u00e9", true], ["\u00e9\u4e2d", true]]) {
        const body = head + bad + "y".repeat(19 - k) + '"}';
        expect([body, w.jsonError(body) === -1]).toEqual([body, okay]);
        if (!okay) expect([body, w.jsonError(body)]).toEqual([body, head.length]);
      }
    }
  });

  test("validates numbers, literals and structure", () => {
    for (const good of ['{"a":-0.5e+10}', '[1,2,{"b":[true,false,null]}]', ' "s" ', "0", '{"a":{}}', "[[]]"]) {
      expect([good, w.jsonError(good)]).toEqual([good, -1]);
    }
    for (const bad of ["{", "01", "1.", "-", "[1,]", '{"a":1,}', '{"a" 1}', "tru", '{"a":1}}', "[}", '{"a":[1}']) {
      expect([bad, w.jsonError(bad) >= 0]).toEqual([bad, true]);
    }
  });
});
