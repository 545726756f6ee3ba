// Loads build/unit_debug.wasm (tests/unit/entry.ts) and wraps its exports with JS strings and Buffers.
const fs = require("node:fs");
const path = require("node:path");

const UNIT_WASM = path.join(__dirname, "..", "..", "..", "build", "unit_debug.wasm");

function load() {
  const logs = [];
  let memory;
  const text = (ptr, len) => Buffer.from(memory.buffer, ptr, len).toString("utf8");
  const imports = {
    env: {
      proxy_log: (level, ptr, len) => { logs.push(text(ptr, len)); return 0; },
    },
  };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(UNIT_WASM)), imports);
  const x = instance.exports;
  memory = x.memory;
  x._initialize();
  const STRING_ID = x.STRING_ID.value;
  const BUFFER_ID = x.BUFFER_ID.value;

  const pinned = [];
  const pin = (ptr) => { x.__pin(ptr); pinned.push(ptr); return ptr; };
  const release = () => { while (pinned.length) x.__unpin(pinned.pop()); };

  function str(s) {
    const ptr = x.__new(s.length * 2, STRING_ID);
    const view = new Uint16Array(memory.buffer, ptr, s.length);
    for (let i = 0; i < s.length; i++) view[i] = s.charCodeAt(i);
    return pin(ptr);
  }
  function buf(b) {
    const bytes = Buffer.isBuffer(b) ? b : Buffer.from(b, "utf8");
    const ptr = x.__new(bytes.length, BUFFER_ID);
    new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
    return pin(ptr);
  }
  function readStr(ptr) {
    const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0] >>> 1;
    return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len));
  }
  function readBuf(ptr) {
    const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0];
    return Buffer.from(new Uint8Array(memory.buffer, ptr, len));
  }
  const call = (fn) => { try { return fn(); } finally { release(); } };

  return {
    logs,
    handoffChainRoundTrip: (hop, trigger, attempts) => call(() => readStr(x.handoffChainRoundTrip(hop, str(trigger), str(attempts)))),
    handoffChainRead: (text) => call(() => readStr(x.handoffChainRead(str(text)))),
    configSummary: (json) => JSON.parse(call(() => readStr(x.configSummary(buf(json))))),
    policyFor: (json, route, authority, service = "") => call(() => readStr(x.policyFor(buf(json), str(route), str(authority), str(service)))),
    refusedCall: (service, status) => call(() => readStr(x.refusedCall(str(service), status))),
    matchesService: (entry, cluster) => call(() => x.matchesService(str(entry), str(cluster)) !== 0),
    hostOfAuthority: (authority) => call(() => readStr(x.hostOfAuthority(str(authority)))),
    jsonError: (body) => call(() => x.jsonError(buf(body))),
    streamingRequest: (body) => call(() => x.streamingRequest(buf(body)) !== 0),
    scan: (body) => JSON.parse(call(() => readStr(x.scanSummary(buf(body))))),
    rewrite: (body, model) => call(() => ({ body: readBuf(x.rewrite(buf(body), str(model))), outcome: x.lastRewriteOutcome.value })),
    modelLiteral: (model) => call(() => readBuf(x.modelLiteral(str(model)))),
    firstPacket: (body) => call(() => x.firstPacket(buf(body)) !== 0),
    idleCutAt: (idleMs, chunkTimes, untilMs) => call(() => Number(x.idleCutAt(idleMs, str(chunkTimes.join(",")), BigInt(untilMs)))),
    firstContent: (body, alreadyConsumed = 0) => call(() => readStr(x.firstContent(buf(body), alreadyConsumed))),
    meanings: (body) => call(() => readStr(x.meaningsOf(buf(body)))).split("\n").filter((s) => s.length > 0),
    meaningVerdict: (json, status, meanings) => call(() => readStr(x.meaningVerdict(buf(json), status, str(meanings.join("\n"))))),
    verdict: (json, status, details) =>
      call(() => readStr(x.verdict(buf(json), status, str(details == null ? "" : details), details == null ? 0 : 1))),
    headerPairs: (pairs) => call(() => readBuf(x.headerPairs(str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    responsePairs: (status, pairs) => call(() => readBuf(x.responsePairs(status, str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    headerPairsBack: (bytes) => call(() => readStr(x.headerPairsBack(buf(bytes)))),
    serializedHeader: (bytes, name) => call(() => readStr(x.serializedHeader(buf(bytes), str(name)))),
    statusFromPairs: (bytes) => call(() => x.statusFromPairs(buf(bytes))),
    byteStringRoundTrip: (bytes) => call(() => readBuf(x.byteStringRoundTrip(buf(bytes)))),
    replayHeaders: (json, index, pairs) =>
      call(() => readStr(x.replayHeaders(buf(json), index, str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    statusCode: (text) => call(() => x.statusCode(buf(text))),
    answerPairs: (map, status) => call(() => readStr(x.answerPairs(buf(map), status))),
    answerHeaders: (pairs) => call(() => readStr(x.answerHeaders(str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    upstreamEdits: (entry, pairs) =>
      call(() => readStr(x.upstreamEdits(buf(entry), str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    attemptEdits: (json, pairs) =>
      call(() => readStr(x.attemptEdits(buf(json), str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    guardSummary: (json) => JSON.parse(call(() => readStr(x.guardSummary(buf(json))))),
    guardReadsStatus: (json, timed, endOfStream) => call(() => x.guardReadsStatus(buf(json), timed ? 1 : 0, endOfStream ? 1 : 0) === 1),
    guardWarnings: (json) => call(() => readStr(x.guardWarnings(buf(json)))),
    budgetLimitsScript: (defaultLimit, script) => call(() => readStr(x.budgetLimitsScript(defaultLimit, str(script)))),
    guardStep: (json, streaming, status, endOfStream) =>
      call(() => ["continue", "hold", "reply"][x.guardStep(buf(json), streaming ? 1 : 0, status, endOfStream ? 1 : 0)]),
    guardReply: (status, pairs) =>
      call(() => readStr(x.guardReply(status, str(pairs.map((p) => p[0]).join("\n")), str(pairs.map((p) => p[1]).join("\n"))))),
    perTryTimeout: (json, method, streaming) => call(() => x.perTryTimeout(buf(json), str(method), streaming ? 1 : 0)),
    upstreamConfigSummary: (json) => call(() => readStr(x.upstreamConfigSummary(buf(json)))),
    builtInCredentialHeaders: () => call(() => readStr(x.builtInCredentialHeaders()).split("\n")),
    upstreamReadsClientHeaders: (entry) => call(() => x.upstreamReadsClientHeaders(buf(entry)) !== 0),
    attemptLogScript: (lines, budgetBytes = 1 << 30) => call(() => readStr(x.attemptLogScript(str(lines.join("\n")), budgetBytes)).split("\n")),
    attemptTrigger: (result) => call(() => readStr(x.attemptTrigger(str(result)))),
    stripCredentialParameters: (path) => call(() => readStr(x.stripCredentialParameters(str(path)))),
    errorBody: (status, hide) => JSON.parse(call(() => readStr(x.errorBody(status, hide ? 1 : 0)))),
    modelAsked: (label, body) => call(() => readStr(x.modelAsked(str(label), buf(body)))),
    budgetScript: (limit, script) => call(() => readStr(x.budgetScript(limit, str(script)))),
    sinkGrowth: (exact, limit, sizes) => call(() => readStr(x.sinkGrowth(exact, limit, str(sizes.join(","))))),
    limiterScript: (interval, times) => call(() => readStr(x.limiterScript(interval, str(times.join(","))))),
    runMachine: (json, script) => call(() => readStr(x.runMachine(buf(json), str(script)))),
    cooldownScript: (json, script) => call(() => readStr(x.cooldownScript(buf(json), str(script)))),
    cooldownTableRoundTrip: (text) => call(() => readStr(x.cooldownTableRoundTrip(str(text)))),
    retryAfter: (value, wallNowMs) => call(() => x.retryAfter(str(value), wallNowMs)),
    cooldownSummary: (json) => call(() => readStr(x.cooldownSummary(buf(json)))),
    retrySummary: (json) => call(() => readStr(x.retrySummary(buf(json)))),
    retryWait: (json, status, timedOut, retriesDone, retryAfter, entropy) =>
      call(() => x.retryWait(buf(json), status, timedOut ? 1 : 0, retriesDone, retryAfter, entropy)),
    retryBackoff: (baseMs, retriesDone, entropy) => call(() => x.retryBackoff(baseMs, retriesDone, entropy)),
  };
}

module.exports = { load };
