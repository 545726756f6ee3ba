// The mutations `npm run mutate` applies, one at a time: small source edits that each break one
// promise of README.md. Every one must be killed (some test fails). Each is tied to a behaviour, not
// to a line: when the source changes so that `find` no longer occurs exactly once, mutate reports an
// error and the entry must be rewritten for the new code (never dropped because it stopped applying).
//
//   name     the broken promise, as a reviewer would put it
//   file     the source file to edit
//   find     text that must occur exactly once in it
//   replace  what it becomes
//   tests    the test files expected to kill it (run first; the whole suite runs if they do not)

const E2E_FALLBACK = "tests/e2e/fallback.test.js";
const E2E_TRIGGERS = "tests/e2e/triggers.test.js";
const E2E_STREAMING = "tests/e2e/streaming.test.js";
const E2E_SECURITY = "tests/e2e/security.test.js";
const UNIT_CONFIG = "tests/unit/config.test.js";
const UNIT_REPLAY = "tests/unit/replay.test.js";
const UNIT_MACHINE = "tests/unit/machine.test.js";
const UNIT_POLICY = "tests/unit/policy.test.js";
const UNIT_REWRITE = "tests/unit/model_rewrite.test.js";
const E2E_FILTER_CHAIN = "tests/e2e/filter_chain.test.js";
const E2E_STREAMED = "tests/e2e/streamed.test.js";
const E2E_STREAMED_FIRST_PACKET = "tests/e2e/streamed_first_packet.test.js";
const E2E_STREAMED_LEAN = "tests/e2e/streamed_lean.test.js";
const UNIT_STREAMED = "tests/unit/streamed.test.js";
const E2E_PRIMARY_GUARD = "tests/e2e/primary_guard.test.js";
const UNIT_GUARD = "tests/unit/guard.test.js";

export const MUTATIONS = [
  {
    name: "the request hold's deadline is never disarmed (a slow healthy primary is replaced when backendErrorsOnly is off)",
    file: "assembly/stream_context.ts",
    find: "  private stopHolding(): void {\n    this.holdingRequest = false;\n    this.disarm();\n  }",
    replace: "  private stopHolding(): void {\n    this.holdingRequest = false;\n  }",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "the credential list is cut to authorization and x-api-key",
    file: "assembly/config.ts",
    find: 'const CREDENTIAL_HEADERS = ["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];',
    replace: 'const CREDENTIAL_HEADERS = ["authorization", "x-api-key"];',
    tests: [UNIT_CONFIG, UNIT_REPLAY, E2E_FALLBACK],
  },
  {
    name: "a backup's own credential no longer replaces the client's",
    file: "assembly/replay.ts",
    find: "    if (backup.replacesCredentials && (isCredentialHeader(h.name) || h.name == \"cookie\")) continue;\n",
    replace: "",
    tests: [UNIT_REPLAY, E2E_FALLBACK, E2E_TRIGGERS],
  },
  {
    name: "hop-by-hop headers keep-alive, proxy-connection, upgrade and trailer are copied to backups",
    file: "assembly/replay.ts",
    find: 'return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||\n    name == "transfer-encoding" || name == "upgrade" || name == "te" || name == "trailer" ||',
    replace: 'return name == "connection" ||\n    name == "transfer-encoding" || name == "te" ||',
    tests: [UNIT_REPLAY, E2E_FALLBACK],
  },
  {
    name: "host may be set in backups[].headers",
    file: "assembly/config.ts",
    find: 'lowerName == "transfer-encoding" ||\n    lowerName == "host";',
    replace: 'lowerName == "transfer-encoding";',
    tests: [UNIT_CONFIG],
  },
  {
    name: "the tick runs every 100 ms instead of 10 ms",
    file: "assembly/root_context.ts",
    find: "export const TICK_PERIOD_MS: u32 = 10;",
    replace: "export const TICK_PERIOD_MS: u32 = 100;",
    tests: [E2E_STREAMING],
  },
  {
    name: "the tunnel check is removed (WebSocket and CONNECT streams are held and watched)",
    file: "assembly/stream_context.ts",
    find: "    if (isTunnel(requestHeaders)) return HeadersAction.Continue;\n",
    replace: "",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "a CONNECT request is not recognised as a tunnel",
    file: "assembly/stream_context.ts",
    find: '  return method !== null && method == "CONNECT";',
    replace: "  return false;",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "a WebSocket upgrade is not recognised as a tunnel",
    file: "assembly/stream_context.ts",
    find: '  if (findSerializedHeader(ptr, headers.byteLength, "upgrade") !== null) return true;\n',
    replace: "",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "maxRequestBodyBytes is off by one as the body streams in (a body of exactly the limit is dropped)",
    file: "assembly/fallback_machine.ts",
    find: "if (this.bodyBytes > <u64>this.policy.maxRequestBodyBytes) {",
    replace: "if (this.bodyBytes >= <u64>this.policy.maxRequestBodyBytes) {",
    tests: [E2E_FALLBACK, UNIT_MACHINE],
  },
  {
    name: "maxRequestBodyBytes is off by one for a content-length known up front",
    file: "assembly/stream_context.ts",
    find: "if (length > <i64>machine.policy.maxRequestBodyBytes) {",
    replace: "if (length >= <i64>machine.policy.maxRequestBodyBytes) {",
    tests: [E2E_FALLBACK],
  },
  {
    name: "the body-drop line is logged at info (the happy path logs above debug)",
    file: "assembly/stream_context.ts",
    find: 'host.logBytes(LogLevel.Debug, "not keeping the request for replay: "',
    replace: 'host.logBytes(LogLevel.Info, "not keeping the request for replay: "',
    tests: [E2E_FALLBACK],
  },
  {
    name: "a stream that ends (a client that leaves mid-fallback) keeps its share of the memory budget",
    file: "assembly/stream_context.ts",
    find: "    this.share.releaseAll();\n",
    replace: "",
    tests: [E2E_STREAMING, E2E_FALLBACK],
  },
  {
    name: "pending_backup_calls is not decremented when the client leaves during a call",
    file: "assembly/stream_context.ts",
    find: "      forgetCall(this.pendingToken);\n      this.pendingToken = 0;\n      this.metrics().pendingBackupCalls.down();\n",
    replace: "      forgetCall(this.pendingToken);\n      this.pendingToken = 0;\n",
    tests: [E2E_STREAMING],
  },
  {
    name: "the allow_on_headers_stop_iteration hint is logged for every held request, not once per worker",
    file: "assembly/stream_context.ts",
    find: "      this.fallbackRoot.holdHintLogged = true;\n",
    replace: "",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "a primary that answers before the request is complete triggers a fallback with a partial body",
    file: "assembly/fallback_machine.ts",
    find: '      if (this.phase == Phase.Request) return this.passThrough("the primary answered before the request was complete");\n',
    replace: "",
    tests: [E2E_FALLBACK, E2E_TRIGGERS, UNIT_MACHINE],
  },
  {
    name: "a route timeout (response_timeout) counts as a gateway reply",
    file: "assembly/policy.ts",
    find: 'd == "response_timeout" || ',
    replace: "",
    tests: [UNIT_POLICY, E2E_TRIGGERS],
  },
  {
    name: "no healthy upstream counts as a gateway reply",
    file: "assembly/policy.ts",
    find: 'd == "no_healthy_upstream" || ',
    replace: "",
    tests: [UNIT_POLICY, E2E_TRIGGERS],
  },
  {
    name: "gateway replies trigger a fallback although backendErrorsOnly is on",
    file: "assembly/policy.ts",
    find: "  if (policy.backendErrorsOnly || origin == Origin.NotRouted) return false;\n",
    replace: "  if (origin == Origin.NotRouted) return false;\n",
    tests: [UNIT_POLICY, E2E_TRIGGERS],
  },
  {
    name: "maxHeldRequestBytes is ignored: a request is held until its body is complete",
    file: "assembly/stream_context.ts",
    find: "if (!endOfStream && machine.replayable && this.requestBody.length < <i32>machine.policy.maxHeldRequestBytes) {",
    replace: "if (!endOfStream && machine.replayable) {",
    tests: [E2E_TRIGGERS],
  },
  {
    name: "keep-alives count as the first packet although keepAliveIsNotFirstPacket is on",
    file: "assembly/stream_context.ts",
    find: "if (first && machine.policy.keepAliveIsNotFirstPacket && !endOfStream) {",
    replace: "if (false) {",
    tests: [E2E_STREAMING],
  },
  {
    name: "firstPacketTimeout applies to non-streaming requests too",
    file: "assembly/fallback_machine.ts",
    find: "this.awaitingUpstream = streaming && this.policy.firstPacketTimeoutMs > 0 && this.replayable;",
    replace: "this.awaitingUpstream = this.policy.firstPacketTimeoutMs > 0 && this.replayable;",
    tests: [E2E_STREAMING, UNIT_MACHINE],
  },
  {
    name: "a backup call's timeout is not cut to what is left of fallbackDeadline",
    file: "assembly/fallback_machine.ts",
    find: "this.callTimeoutMs = <u64>backup.timeoutMs < remaining ? backup.timeoutMs : <u32>remaining;",
    replace: "this.callTimeoutMs = backup.timeoutMs;",
    tests: [E2E_STREAMING, UNIT_MACHINE],
  },
  {
    name: "a held 2xx primary no longer beats backup errors",
    file: "assembly/fallback_machine.ts",
    find: "    if (this.primaryHeld && this.primaryStatus >= 200 && this.primaryStatus < 300) return this.resume();\n",
    replace: "",
    tests: [E2E_STREAMING, UNIT_MACHINE],
  },
  {
    name: "with no backup HTTP answer the client gets a 502 of the filter's instead of the primary's own error",
    file: "assembly/fallback_machine.ts",
    find: "    if (this.primaryHeld) return this.resume();\n",
    replace: "",
    tests: [E2E_FALLBACK, UNIT_MACHINE],
  },
  {
    name: "a held primary's trailers release it (the fallback is lost)",
    file: "assembly/stream_context.ts",
    find: "    if (machine !== null && machine.primaryHeld &&\n        (machine.phase == Phase.HoldingFirstPacket || machine.phase == Phase.FallingBack)) {",
    replace: "    if (false) {",
    tests: [E2E_FALLBACK],
  },
  {
    name: "a backup's model override is not written into the body",
    file: "assembly/stream_context.ts",
    find: "    const literal = backup.modelLiteral;\n",
    replace: "    const literal: ArrayBuffer | null = null;\n",
    tests: [E2E_FALLBACK, E2E_TRIGGERS],
  },
  {
    name: "the primary's own error response, resumed after every backup failed, does not say what was tried",
    file: "assembly/stream_context.ts",
    find: "      if (!hide) host.replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(machine.attempts));\n",
    replace: "",
    tests: [E2E_FALLBACK],
  },
  {
    name: "a streaming primary's 2xx headers are not held until its first packet (the client sees headers that are then replaced)",
    file: "assembly/fallback_machine.ts",
    find: "if (this.firstPacketDeadlineMs != 0 && status >= 200 && status < 300 && !endOfStream) {",
    replace: "if (false) {",
    tests: [E2E_STREAMING, UNIT_MACHINE],
  },
  {
    name: "a backup answer's hop-by-hop headers are passed to the client",
    file: "assembly/replay.ts",
    find: 'if (h.name.startsWith(":") || isHopByHop(h.name)) continue;',
    replace: 'if (h.name.startsWith(":")) continue;',
    tests: [UNIT_REPLAY, E2E_FALLBACK],
  },
  {
    name: "the first-packet clock starts when the request passed this filter, not when Envoy sent it to the primary",
    file: "assembly/stream_context.ts",
    find: "    if (machine.awaitingUpstream) this.watchUpstream(machine, host.monotonicMs());\n",
    replace: "    machine.upstreamStarted(host.monotonicMs());\n    if (machine.firstPacketDeadlineMs != 0) this.arm(machine.firstPacketDeadlineMs);\n",
    tests: [E2E_SECURITY, E2E_STREAMING],
  },
  {
    name: "credential query parameters (?key=, ?access_token=...) reach a backup with its own credential",
    file: "assembly/replay.ts",
    find: "    if (!CREDENTIAL_QUERY_PARAMETERS.includes(name)) kept.push(param);\n",
    replace: "    kept.push(param);\n",
    tests: [UNIT_REPLAY, E2E_SECURITY],
  },
  {
    name: "the client's cookie reaches a backup with its own credential",
    file: "assembly/replay.ts",
    find: "(isCredentialHeader(h.name) || h.name == \"cookie\")",
    replace: "isCredentialHeader(h.name)",
    tests: [UNIT_REPLAY, E2E_SECURITY],
  },
  {
    name: "methods defaults to POST and GET (a GET of /v1/models is replayed with the backup's key)",
    file: "assembly/config.ts",
    find: 'export const DEFAULT_METHODS = ["POST"];',
    replace: 'export const DEFAULT_METHODS = ["POST", "GET"];',
    tests: [UNIT_CONFIG, E2E_SECURITY],
  },
  {
    name: "gatewayTriggerStatuses defaults to 403 as well as 429 and 503 (an authorizer's refusal is replayed)",
    file: "assembly/config.ts",
    find: "export const DEFAULT_GATEWAY_TRIGGER_STATUSES: i32[] = [429, 503];",
    replace: "export const DEFAULT_GATEWAY_TRIGGER_STATUSES: i32[] = [403, 429, 503];",
    tests: [UNIT_CONFIG, UNIT_POLICY, E2E_SECURITY],
  },
  {
    name: "a reply for no route or a direct_response triggers like any gateway reply",
    file: "assembly/policy.ts",
    find: "  if (policy.backendErrorsOnly || origin == Origin.NotRouted) return false;\n",
    replace: "  if (policy.backendErrorsOnly) return false;\n",
    tests: [UNIT_POLICY, E2E_SECURITY],
  },
  {
    name: "an authorizer failing closed with a listed status (503) is replayed",
    file: "assembly/policy.ts",
    find: "  return origin != Origin.Refused || status == 401 || status == 403;\n",
    replace: "  return true;\n",
    tests: [UNIT_POLICY, E2E_SECURITY],
  },
  {
    name: "hideTopology still names the answering service in x-ai-fallback-service",
    file: "assembly/stream_context.ts",
    find: "      if (!hide) headers.push(new Header(HEADER_SERVICE, answered.service));\n",
    replace: "      headers.push(new Header(HEADER_SERVICE, answered.service));\n",
    tests: [E2E_SECURITY],
  },
  {
    name: "a body that starts with a UTF-8 byte order mark is not rewritten (reported not-rewritten)",
    file: "assembly/json_scan.ts",
    find: "new Scanner(base, startsWithBom(base, length) ? 3 : 0, length);",
    replace: "new Scanner(base, 0, length);",
    tests: [UNIT_REWRITE, E2E_FALLBACK],
  },
  {
    name: "an override that could not be written is still reported as the model asked for",
    file: "assembly/stream_context.ts",
    find: "        machine.bodyNotRewritten();\n",
    replace: "",
    tests: [E2E_FALLBACK],
  },
  {
    name: "a call Envoy refused at once is reported as an unknown cluster",
    file: "assembly/stream_context.ts",
    find: "      return call.status == WasmResult.BadArgument ? Dispatch.UnknownCluster : Dispatch.Refused;\n",
    replace: "      return Dispatch.UnknownCluster;\n",
    tests: [E2E_SECURITY],
  },
  {
    name: "a held primary error is answered by a local reply straight to the client (CORS and compression before the filter miss the answer)",
    file: "assembly/fallback_machine.ts",
    find: "    if (this.primaryHeldWhole && !this.primaryHeadersOnly && this.primaryStatus >= 400) return Delivery.SwapInPlace;\n",
    replace: "",
    tests: [E2E_FILTER_CHAIN],
  },
  {
    name: "this filter's own local reply is not rewritten to the answer (local_reply_config wraps a backup's SSE answer)",
    file: "assembly/fallback_machine.ts",
    find: "        this.answerHeadersWritten = true;\n        return Step.WriteHeaders;\n",
    replace: "        return Step.Continue;\n",
    tests: [E2E_FILTER_CHAIN],
  },
  {
    name: "a swapped answer's body is not written (the client gets the primary's error body under the answer's headers)",
    file: "assembly/stream_context.ts",
    find: "        write ? served!.body.ptr : 0, write ? served!.body.length : 0);\n",
    replace: "        0, 0);\n",
    tests: [E2E_FILTER_CHAIN],
  },
  {
    name: "an in-flight gauge shows a new high only when it falls (the streams gauge reads 0 while requests wait)",
    file: "assembly/metrics.ts",
    find: "    if (this.count > this.shown) this.show();\n",
    replace: "",
    tests: [E2E_FALLBACK],
  },
  {
    name: "a JSON string's escapes are not decoded in the configuration (a \\u escape in a key or value stays as written)",
    file: "assembly/json_value.ts",
    find: "    if (text.charCodeAt(this.at) == 0x22) return text.substring(start, this.at++);\n",
    replace: "    while (text.charCodeAt(this.at) != 0x22) this.at += text.charCodeAt(this.at) == 0x5c ? 2 : 1;\n    return text.substring(start, this.at++);\n",
    tests: [UNIT_CONFIG],
  },
  {
    name: "a repeated configuration key keeps its first value (JSON.parse takes the last)",
    file: "assembly/json_value.ts",
    find: "      if (!this.values.has(key)) this.names.push(key);\n      this.values.set(key, value);\n",
    replace: "      if (this.values.has(key)) return;\n      this.names.push(key);\n      this.values.set(key, value);\n",
    tests: [UNIT_CONFIG],
  },
  {
    name: "streamed mode: a failed attempt's result is not handed to the next attempt (a backup's answer reports the primary as unknown)",
    file: "assembly/upstream/attempt_log.ts",
    find: "    this.records.set(requestId, record);\n",
    replace: "",
    tests: [E2E_STREAMED],
  },
  {
    name: "streamed mode: a primary 2xx given up before its end is not named a first-packet timeout",
    file: "assembly/upstream/upstream_stream.ts",
    find: "      else if (status >= 200 && status < 300 && !endOfStream) this.unfinished2xx = true;\n",
    replace: "",
    tests: [E2E_STREAMED_FIRST_PACKET],
  },
  {
    name: "streamed mode: a backup's failed attempt is counted as answered and served",
    file: "assembly/upstream/upstream_stream.ts",
    find: "    if (!failed) {\n      metrics.count(metrics.answered);",
    replace: "    if (true) {\n      metrics.count(metrics.answered);",
    tests: [E2E_STREAMED],
  },
  {
    name: "streamed mode: the router's own reply after every attempt failed stays Envoy's plain text",
    file: "scripts/streamed_config_lib.cjs",
    find: "    local_reply_config: exhaustedLocalReply(plugin.hideTopology === true),\n",
    replace: "",
    tests: [E2E_STREAMED],
  },
  {
    name: "streamed mode: every method takes the retrying route (a GET the primary fails is asked of a backup with its key)",
    file: "scripts/streamed_config_lib.cjs",
    find: "safe_regex: { regex: methods.join(\"|\") }",
    replace: "safe_regex: { regex: \".*\" }",
    tests: [E2E_STREAMED],
  },
  {
    name: "streamed mode: hideTopology still names the backup's cluster on its answer",
    file: "assembly/upstream/upstream_stream.ts",
    find: "    if (!config.hideTopology) {\n      replaceHeader(MapType.HttpResponseHeaders, HEADER_SERVICE, backup.serviceLabel);",
    replace: "    replaceHeader(MapType.HttpResponseHeaders, HEADER_SERVICE, backup.serviceLabel);\n    if (!config.hideTopology) {",
    tests: [E2E_STREAMED],
  },
  {
    name: "primary guard: a streaming 2xx is never held (a stall after 200 is answered past CORS)",
    file: "assembly/upstream/guard_policy.ts",
    find: "!endOfStream && streaming && guard.holdFirstPacket) return GuardStep.HoldUntilFirstByte;",
    replace: "!endOfStream && streaming && guard.holdFirstPacket) return GuardStep.Continue;",
    tests: [UNIT_GUARD, E2E_PRIMARY_GUARD],
  },
  {
    name: "primary guard: a headers-only error gets no body (the backup's answer goes past CORS)",
    file: "assembly/upstream/guard_policy.ts",
    find: "return endOfStream && guard.replyToHeadersOnlyErrors ? GuardStep.ReplyWithBody : GuardStep.Continue;",
    replace: "return GuardStep.Continue;",
    tests: [UNIT_GUARD, E2E_PRIMARY_GUARD],
  },
  {
    name: "primary guard: its reply counts as a gateway reply (a headers-only model error no longer triggers)",
    file: "assembly/policy.ts",
    find: " || d == GUARD_REPLY_DETAILS) return Origin.Backend;",
    replace: ") return Origin.Backend;",
    tests: [UNIT_POLICY, E2E_PRIMARY_GUARD],
  },
  {
    name: "primary guard: maxRequestBodyBytes is ignored (a larger streaming request is still copied and held)",
    file: "assembly/upstream/guard_stream.ts",
    find: "if (<i64>sink.length + bodySize > <i64>this.guard.maxRequestBodyBytes) {",
    replace: "if (false && <i64>sink.length + bodySize > <i64>this.guard.maxRequestBodyBytes) {",
    tests: [E2E_PRIMARY_GUARD],
  },
  {
    name: "streamed mode: maxRequestBodyBytes is ignored (a larger streaming request still gets the per-try timeout)",
    file: "assembly/streamed/streamed_stream.ts",
    find: "if (bodySize > policy.maxRequestBodyBytes) {",
    replace: "if (false && bodySize > policy.maxRequestBodyBytes) {",
    tests: [E2E_STREAMED_FIRST_PACKET],
  },
  {
    name: "lean streamed mode: the primary's cluster keeps its filter (--no-primary-filter changes nothing on the happy path)",
    file: "scripts/streamed_config_lib.cjs",
    find: "    if (i === 0 && !primaryFilter) filters = null;\n",
    replace: "",
    tests: [UNIT_STREAMED, E2E_STREAMED_LEAN],
  },
  {
    name: "lean streamed mode: a backup reports the primary as unknown instead of retried",
    file: "assembly/upstream/upstream_stream.ts",
    find: "config.primaryFilter ? RESULT_UNKNOWN : RESULT_RETRY",
    replace: "RESULT_UNKNOWN",
    tests: [E2E_STREAMED_LEAN],
  },
  {
    name: "streamed mode: a backup bringing its own credential never reads the client's headers (the client's credentials reach it)",
    file: "assembly/upstream/attempt_headers.ts",
    find: "  return backup.replacesCredentials || backup.dropHeaders.length > 0;\n",
    replace: "  return backup.dropHeaders.length > 0;\n",
    tests: [UNIT_STREAMED, E2E_STREAMED_LEAN],
  },
  {
    name: "lean streamed mode: the last backup's filter never reads x-request-id (its info line says none)",
    file: "assembly/upstream/upstream_stream.ts",
    find: "if (backup == null || recordsAround(config) || logs(LogLevel.Info)) {",
    replace: "if (backup == null || recordsAround(config)) {",
    tests: [E2E_STREAMED_LEAN],
  },
];
