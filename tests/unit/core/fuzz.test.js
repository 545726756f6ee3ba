// Fuzzing in the unit host (fixed seeds, so a failure reproduces; FUZZ_SEED=n tries other inputs):
// 10,000 random and mutated configurations are accepted or refused naming a field, never a trap;
// 10,000 random and mutated request bodies go through the scanner and the model rewrite, whose
// results must agree with JSON.parse. A trap would surface here as a WebAssembly.RuntimeError.
const { load } = require("../support/wasm");

const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (list) => list[int(list.length)];
  return { next, int, pick, chance: (p) => next() < p };
}

const ODD_STRINGS = ["", " ", "a b", "/v1/chat/completions", "/v1?x=%2F", "api.example.com:443", "[::1]:80", "user@host",
  "outbound|443||qwen.dns", "pass-through", "qwen-plus", "\u00e9\u4e2d\ud83d\ude00", "\\", "\"", "\u0000", "\r\n", "\t",
  " Bearer k", "Bearer k ", "4xx", "5xx", "429", "3xx", "#frag", "%zz", "x".repeat(300)];
const ODD_NUMBERS = [0, -1, 1, 1.5, 399, 400, 429, 599, 600, 2147483647, 2147483648, 268435456, 268435457, 536870912,
  536870913, 1e300, -0, 4294967296];

function randomValue(r, depth = 0) {
  switch (r.int(depth > 2 ? 5 : 7)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick(ODD_NUMBERS);
    case 3: return r.pick(ODD_STRINGS);
    case 4: return r.int(100000);
    case 5: return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const o = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(ALL_KEYS.concat(["x", "", "model ", "Service"]))] = randomValue(r, depth + 1);
      return o;
    }
  }
}

const POLICY_KEYS = ["backups", "backendErrorsOnly", "triggerStatuses", "maxRequestBodyBytes", "maxHeldRequestBytes",
  "firstPacketTimeout", "keepAliveIsNotFirstPacket", "fallbackDeadline"];
const BACKUP_KEYS = ["service", "model", "timeout", "path", "authority", "headers"];
const ALL_KEYS = POLICY_KEYS.concat(BACKUP_KEYS, ["_rules_", "_match_route_", "_match_domain_", "_match_service_", "maxKeptBytesPerWorker"]);

function validConfig(r) {
  const backup = () => {
    const b = { service: r.pick(["a", "outbound|443||qwen.dns", "backup-model"]) };
    if (r.chance(0.5)) b.model = r.pick(["qwen-plus", "pass-through", "", "m\"x"]);
    if (r.chance(0.3)) b.timeout = 1 + r.int(100000);
    if (r.chance(0.3)) b.path = r.pick(["/v1/chat/completions", "/compatible-mode/v1/chat/completions?x=1"]);
    if (r.chance(0.3)) b.authority = r.pick(["dashscope.aliyuncs.com", "api.example.com:8443"]);
    if (r.chance(0.3)) b.headers = { authorization: "Bearer sk-x", "x-extra": "1" };
    return b;
  };
  const c = { backups: Array.from({ length: 1 + r.int(3) }, backup) };
  if (r.chance(0.3)) c.triggerStatuses = ["5xx", 429];
  if (r.chance(0.3)) c.firstPacketTimeout = r.int(5000);
  if (r.chance(0.3)) c.maxKeptBytesPerWorker = 1 + r.int(536870912);
  if (r.chance(0.3)) c._rules_ = [{ _match_route_: ["r"], backups: [backup()], fallbackDeadline: 1000 }];
  return c;
}

/** Changes one thing deep inside a parsed value: a value replaced, a key renamed or removed, an array item added. */
function mutateStructure(r, value) {
  if (value === null || typeof value !== "object") return randomValue(r);
  const keys = Object.keys(value);
  if (keys.length === 0 || r.chance(0.15)) return randomValue(r);
  const key = r.pick(keys);
  const copy = Array.isArray(value) ? [...value] : { ...value };
  switch (r.int(4)) {
    case 0: copy[key] = mutateStructure(r, value[key]); break;
    case 1: if (Array.isArray(copy)) copy.push(randomValue(r)); else { delete copy[key]; copy[r.pick(ALL_KEYS)] = value[key]; } break;
    case 2: if (Array.isArray(copy)) copy.splice(Number(key), 1); else delete copy[key]; break;
    default: copy[key] = randomValue(r);
  }
  return copy;
}

/** Byte-level damage: a byte changed, inserted or removed, or the text cut short. */
function mutateBytes(r, text) {
  const b = Buffer.from(text, "utf8");
  const at = r.int(b.length + 1);
  switch (r.int(4)) {
    case 0: if (b.length) b[Math.min(at, b.length - 1)] = r.int(256); return b;
    case 1: return Buffer.concat([b.subarray(0, at), Buffer.from([r.pick([0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x00, 0xff, 0x20, r.int(256)])]), b.subarray(at)]);
    case 2: return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    default: return b.subarray(0, at);
  }
}

describe("fuzzing the configuration (10,000 inputs)", () => {
  test("each is accepted, or refused with an error that names a field; none traps", () => {
    const w = load();
    const r = rng(SEED);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 10000; i++) {
      const base = validConfig(r);
      let input;
      const kind = i % 4;
      if (kind === 0) input = JSON.stringify(base);
      else if (kind === 1) input = JSON.stringify(mutateStructure(r, mutateStructure(r, base)));
      else if (kind === 2) input = mutateBytes(r, JSON.stringify(base));
      else input = JSON.stringify(randomValue(r));
      let result;
      if (process.env.FUZZ_DUMP) require("node:fs").appendFileSync(process.env.FUZZ_DUMP, Buffer.from(input).toString("base64") + "\n");
      try {
        result = w.configSummary(input);
      } catch (err) {
        throw new Error(`input #${i} (seed ${SEED}) trapped: ${err.message} ${w.logs.slice(-1)}\n${input.toString()}`);
      }
      if (result.error === undefined) {
        accepted++;
        continue;
      }
      refused++;
      // "field: why", where field is "configuration" or a path that starts with a key of the input.
      let keys = [];
      try { keys = Object.keys(JSON.parse(input.toString())); } catch { /* not JSON */ }
      // (A key with escapes may be named as written in the JSON text.)
      const names = ["configuration"].concat(ALL_KEYS, keys, keys.map((k) => JSON.stringify(k).slice(1, -1)));
      if (!result.error.includes(": ") || !names.some((k) => result.error.startsWith(k + (k === "configuration" ? ": " : "")))) {
        throw new Error(`input #${i}: error does not name a field of the input: ${result.error}\n${input}`);
      }
      if (kind === 0) throw new Error(`input #${i}: a valid configuration was refused: ${result.error}\n${input}`);
    }
    // Both outcomes were exercised.
    expect(accepted).toBeGreaterThan(2500);
    expect(refused).toBeGreaterThan(2500);
  });
});

function randomJson(r, depth = 0) {
  switch (r.int(depth > 3 ? 5 : 8)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick([0, -1, 1.5, 1e21, -2.5e-7, 123456789]);
    case 3: return r.pick(ODD_STRINGS.concat(["model", "stream", "{\"model\":1}"]));
    case 4: return "s".repeat(r.int(50));
    case 5: case 6: {
      const o = {};
      for (let i = r.int(5); i > 0; i--) o[r.pick(["model", "stream", "messages", "content", "mo\"del", "m\u00f6del", "x"])] = randomJson(r, depth + 1);
      return o;
    }
    default: return Array.from({ length: r.int(4) }, () => randomJson(r, depth + 1));
  }
}

/** JSON text with random whitespace between tokens and, sometimes, a repeated top-level key. */
function serialize(r, value) {
  const ws = () => r.pick(["", "", " ", "\n", "\t", " \r\n "]);
  const text = (v) => {
    if (v === null || typeof v !== "object") {
      const s = JSON.stringify(v);
      // Sometimes an escaped form of the same string.
      return typeof v === "string" && r.chance(0.2) ? s.replace(/[a-z]/, (c) => "\\u00" + c.charCodeAt(0).toString(16)) : s;
    }
    if (Array.isArray(v)) return "[" + ws() + v.map((x) => text(x)).join(ws() + "," + ws()) + ws() + "]";
    return "{" + ws() + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ws() + ":" + ws() + text(x)).join(ws() + "," + ws()) + ws() + "}";
  };
  let out = ws() + text(value) + ws();
  if (value && typeof value === "object" && !Array.isArray(value) && r.chance(0.1)) {
    out = out.replace(/}\s*$/, (Object.keys(value).length ? "," : "") + "\"model\":" + JSON.stringify(randomJson(r, 3)) + "}");
  }
  return out;
}

describe("fuzzing request bodies (10,000 inputs) against JSON.parse", () => {
  test("the validator, the scanner, the streaming check and the model rewrite agree with JSON.parse; none traps", () => {
    const w = load();
    const r = rng(SEED + 1);
    let valid = 0;
    let rewritten = 0;
    for (let i = 0; i < 10000; i++) {
      let body = Buffer.from(serialize(r, i % 3 === 0 ? randomJson(r) : { model: randomJson(r, 3), ...randomJson(r, 1) }));
      if (i % 2 === 1) body = mutateBytes(r, body.toString());
      const show = () => `body #${i} (seed ${SEED + 1}): ${JSON.stringify(body.toString("utf8"))}`;
      let parsed;
      let ok = true;
      try {
        parsed = JSON.parse(body.toString("utf8"));
        // JSON.parse replaces invalid UTF-8 silently; the filter works on bytes. Only exact round trips count.
        if (!Buffer.from(body.toString("utf8"), "utf8").equals(body)) ok = false;
      } catch {
        ok = false;
      }
      let err, scan, streaming, out;
      try {
        err = w.jsonError(body);
        scan = w.scan(body);
        streaming = w.streamingRequest(body);
        out = w.rewrite(body, "fuzz-model");
      } catch (e) {
        throw new Error(`${show()} trapped: ${e.message}`);
      }
      if (!ok) {
        // Not JSON (as opposed to JSON with malformed UTF-8 inside strings, which the byte scanner need not judge).
        if (parsed === undefined && err < 0) throw new Error(`${show()}: JSON.parse refuses it, the validator accepts it`);
        continue;
      }
      valid++;
      if (err >= 0) throw new Error(`${show()}: JSON.parse accepts it, the validator refuses it at ${err}`);
      const isObject = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
      if (scan.isObject !== isObject) throw new Error(`${show()}: scan says isObject=${scan.isObject}`);
      if (streaming !== (isObject && parsed.stream === true)) throw new Error(`${show()}: streaming check says ${streaming}`);
      if (!isObject) {
        if (out.outcome !== 1 || !out.body.equals(body)) throw new Error(`${show()}: a non-object was changed`);
      } else if (!Object.prototype.hasOwnProperty.call(parsed, "model")) {
        if (out.outcome !== 2 || !out.body.equals(body)) throw new Error(`${show()}: a body without model was changed`);
      } else {
        rewritten++;
        if (out.outcome !== 0) throw new Error(`${show()}: not rewritten (outcome ${out.outcome})`);
        expect(JSON.parse(out.body.toString("utf8"))).toEqual({ ...parsed, model: "fuzz-model" });
      }
    }
    expect(valid).toBeGreaterThan(4000);
    expect(rewritten).toBeGreaterThan(3000);
  });
});
