// Test entry: exposes the pure core (configuration, policy, JSON scan, model rewrite, SSE check,
// header pairs, state machine) to jest through plain functions. Not part of the filter module.
import "../../assembly/abi/abort";
import { deserializeHeaders, findSerializedHeader, serializeHeaders, serializeResponseHeaders, serializedStatus } from "../../assembly/core/header_pairs";
import { Header } from "../../assembly/core/headers";
import { byteStringFromBuffer, byteStringToBuffer, statusCodeAt } from "../../assembly/core/bytes";
import { Backup, CREDENTIAL_HEADERS, FirstPacket, Policy } from "../../assembly/core/config/config";
import { parseConfig } from "../../assembly/core/config/config_parse";
import { Attempt, UNKNOWN_CLUSTER, formatAttempts } from "../../assembly/core/attempts";
import { FallbackMachine } from "../../assembly/core/fallback_machine";
import { Step } from "../../assembly/core/fallback_steps";
import { DomainPattern, hostOf, serviceMatches } from "../../assembly/core/rule_match";
import { refusedCallText } from "../../assembly/dispatch/call_refusal";
import { WasmResult } from "../../assembly/abi/enums";
import { firstJsonError, scanTopLevel } from "../../assembly/core/json_scan";
import { isStreamingRequest } from "../../assembly/core/stream_check";
import { jsonStringLiteral, rewriteModel } from "../../assembly/core/model_rewrite";
import { classifyOrigin, decide, decideByMeaning, meaningMayMatter } from "../../assembly/core/policy";
import { errorMeanings } from "../../assembly/core/error_meaning";
import { askedModel, backupRequestPairs, clientResponseHeaders, clientResponsePairs, exhaustedErrorBody, withoutCredentialParameters } from "../../assembly/core/replay";
import { isFirstPacket } from "../../assembly/core/sse";
import { scanForContent } from "../../assembly/core/first_content";
import { StreamIdleWatch } from "../../assembly/core/stream_idle";
import { BudgetLimits, BudgetShare, MemoryBudget } from "../../assembly/core/memory_budget";
import { ByteSink } from "../../assembly/core/byte_sink";
import { LogLimiter } from "../../assembly/core/log_limiter";
import { parseBackupEntry, parseUpstreamConfig } from "../../assembly/core/config/config_parse";
import { attemptHeaderEdits, editsReadClientHeaders } from "../../assembly/core/attempt_headers";
import { HeaderEdits } from "../../assembly/core/headers";
import { parseGuardConfig } from "../../assembly/upstream/guard_config";
import { perTryTimeoutApplies, perTryTimeoutMs } from "../../assembly/streamed/per_try_timeout";
import { guardNeedsStatus, guardReplyBody, guardReplyHeaders, guardResponseHeaders } from "../../assembly/upstream/guard_policy";
import { HandoffChain, decodeChain } from "../../assembly/core/handoff";
import { AttemptLog, AttemptRecord, Kept, RequestIdentity, triggerOf } from "../../assembly/upstream/attempt_log";
import { Admission, ServiceState, admission, claimProbe, formatTable, parseTable, recordFailure, recordSuccess } from "../../assembly/core/cooldown";
import { retryAfterMs } from "../../assembly/core/retry_after";
import { backoffMs, retryWaitMs } from "../../assembly/core/retry";

export const STRING_ID = idof<string>();
export const BUFFER_ID = idof<ArrayBuffer>();

function q(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    out += c == "\"" ? "\\\"" : c == "\\" ? "\\\\" : c;
  }
  return out + "\"";
}

function describeBackup(b: Backup): string {
  let headers = "";
  for (let i = 0; i < b.headers.length; i++) {
    if (i > 0) headers += ",";
    headers += q(b.headers[i].name) + ":" + q(b.headers[i].value);
  }
  return "{\"service\":" + q(b.service) + ",\"model\":" + q(b.model) + ",\"timeout\":" + b.timeoutMs.toString() +
    ",\"path\":" + (b.path == null ? "null" : q(b.path!)) + ",\"authority\":" + (b.authority == null ? "null" : q(b.authority!)) +
    ",\"headers\":{" + headers + "},\"replacesCredentials\":" + (b.replacesCredentials ? "true" : "false") +
    ",\"dropHeaders\":[" + b.dropHeaders.map<string>((s: string) => q(s)).join(",") + "]}";
}

function describePolicy(p: Policy): string {
  let backups = "";
  for (let i = 0; i < p.backups.length; i++) backups += (i > 0 ? "," : "") + describeBackup(p.backups[i]);
  let statuses = "";
  for (let s = 400; s < 600; s++) if (p.triggerStatuses.has(s)) statuses += (statuses.length > 0 ? "," : "") + s.toString();
  let gateway = "";
  for (let s = 400; s < 600; s++) if (p.gatewayTriggerStatuses.has(s)) gateway += (gateway.length > 0 ? "," : "") + s.toString();
  return "{\"backups\":[" + backups + "],\"backendErrorsOnly\":" + (p.backendErrorsOnly ? "true" : "false") +
    ",\"triggerStatuses\":[" + statuses + "],\"gatewayTriggerStatuses\":[" + gateway +
    "],\"methods\":[" + p.methods.map<string>((s: string) => q(s)).join(",") + "],\"hideTopology\":" + (p.hideTopology ? "true" : "false") +
    ",\"maxRequestBodyBytes\":" + p.maxRequestBodyBytes.toString() +
    ",\"maxHeldRequestBytes\":" + p.maxHeldRequestBytes.toString() +
    ",\"firstPacketTimeout\":" + p.firstPacketTimeoutMs.toString() +
    ",\"keepAliveIsNotFirstPacket\":" + (p.firstPacket == FirstPacket.Event ? "true" : "false") +
    ",\"streamIdleTimeout\":" + p.streamIdleTimeoutMs.toString() +
    ",\"firstPacket\":\"" + (p.firstPacket == FirstPacket.Content ? "content" : p.firstPacket == FirstPacket.Event ? "event" : "byte") + "\"" +
    ",\"fallbackDeadline\":" + p.fallbackDeadlineMs.toString() +
    ",\"neverTrigger\":[" + p.neverTrigger.map<string>((s: string) => q(s)).join(",") +
    "],\"alwaysTrigger\":[" + p.alwaysTrigger.map<string>((s: string) => q(s)).join(",") + "]" +
    ",\"handoff\":" + (p.handoff ? "true" : "false") + "}";
}

const MATCH_KIND_NAMES = ["route", "route+service", "domain", "service", "route-prefix"];
const DOMAIN_FORM_NAMES = ["exact", "suffix", "prefix"];

/** The parsed configuration as JSON, or {"error": "..."}. */
export function configSummary(json: ArrayBuffer): string {
  const result = parseConfig(json);
  if (result.config == null) return "{\"error\":" + q(result.error) + "}";
  const c = result.config!;
  let rules = "";
  for (let i = 0; i < c.rules.length; i++) {
    const r = c.rules[i];
    const m = r.match;
    rules += (i > 0 ? "," : "") + "{\"kind\":" + q(MATCH_KIND_NAMES[m.kind]) +
      ",\"routes\":[" + m.routes.map<string>((s: string) => q(s)).join(",") +
      "],\"routePrefixes\":[" + m.routePrefixes.map<string>((s: string) => q(s)).join(",") +
      "],\"domains\":[" + m.domains.map<string>((d: DomainPattern) => q(DOMAIN_FORM_NAMES[d.form] + ":" + d.text)).join(",") +
      "],\"services\":[" + m.services.map<string>((s: string) => q(s)).join(",") + "],\"policy\":" + describePolicy(r.policy) + "}";
  }
  return "{\"global\":" + describePolicy(c.global) + ",\"rules\":[" + rules + "],\"maxKeptBytesPerWorker\":" +
    c.maxKeptBytesPerWorker.toString() + ",\"warnings\":[" + result.warnings.map<string>((s: string) => q(s)).join(",") + "]}";
}

/** Which policy applies: "global" or "rule:<index>" (or the config error). */
export function policyFor(json: ArrayBuffer, routeName: string, authority: string, service: string): string {
  const result = parseConfig(json);
  if (result.config == null) return "error";
  const c = result.config!;
  const p = c.policyFor(routeName, authority, service);
  for (let i = 0; i < c.rules.length; i++) if (c.rules[i].policy === p) return "rule:" + i.toString();
  return "global";
}

export function refusedCall(service: string, status: i32): string {
  return refusedCallText(service, <WasmResult>status);
}

export function matchesService(entry: string, cluster: string): bool {
  return serviceMatches(entry, cluster);
}

export function hostOfAuthority(authority: string): string {
  return hostOf(authority);
}

export function streamingRequest(body: ArrayBuffer): bool {
  return isStreamingRequest(changetype<usize>(body), body.byteLength);
}

export function jsonError(body: ArrayBuffer): i32 {
  return firstJsonError(changetype<usize>(body), body.byteLength);
}

export function scanSummary(body: ArrayBuffer): string {
  const s = scanTopLevel(changetype<usize>(body), body.byteLength);
  let spans = "";
  for (let i = 0; i < s.modelValues.length; i++) {
    spans += (i > 0 ? "," : "") + "[" + s.modelValues[i].start.toString() + "," + s.modelValues[i].end.toString() + "]";
  }
  return "{\"valid\":" + (s.valid ? "true" : "false") + ",\"isObject\":" + (s.isObject ? "true" : "false") +
    ",\"modelValues\":[" + spans + "],\"streamTrue\":" + (s.streamTrue ? "true" : "false") + "}";
}

export let lastRewriteOutcome: i32 = -1;

export function rewrite(body: ArrayBuffer, model: string): ArrayBuffer {
  const result = rewriteModel(body, jsonStringLiteral(model));
  lastRewriteOutcome = result.outcome;
  return result.body;
}

export function modelLiteral(model: string): ArrayBuffer {
  return jsonStringLiteral(model);
}

export function firstPacket(body: ArrayBuffer): bool {
  return isFirstPacket(changetype<usize>(body), body.byteLength);
}

/** firstPacket "content": "waiting:<consumed>", "content" or "error". */
export function firstContent(body: ArrayBuffer, alreadyConsumed: i32): string {
  const scan = scanForContent(changetype<usize>(body), body.byteLength, alreadyConsumed);
  if (scan.verdict == 1) return "content";
  if (scan.verdict == 2) return "error";
  return "waiting:" + scan.consumed.toString();
}

/** Decision for a primary response under a configuration: "pass", "fallback" or "intercepted-pass". */
export function verdict(json: ArrayBuffer, status: i32, codeDetails: string, hasDetails: bool): string {
  const result = parseConfig(json);
  const origin = classifyOrigin(hasDetails ? codeDetails : null);
  const v = decide(result.config!.global, status, origin);
  return v == 0 ? "pass" : v == 1 ? "fallback" : "intercepted-pass";
}

function headerList(names: string, values: string): Header[] {
  const n = names.split("\n");
  const v = values.split("\n");
  const headers = new Array<Header>();
  for (let i = 0; i < n.length; i++) if (n[i].length > 0) headers.push(new Header(n[i], v[i]));
  return headers;
}

function listHeaders(headers: Header[]): string {
  let out = "";
  for (let i = 0; i < headers.length; i++) out += (i > 0 ? "\n" : "") + headers[i].name + "=" + headers[i].value;
  return out;
}

/** The request headers the global policy's backup `index` gets for client headers (names/values "\n"-separated). */
export function replayHeaders(json: ArrayBuffer, index: i32, names: string, values: string): string {
  const backup = parseConfig(json).config!.global.backups[index];
  const client = serializeHeaders(headerList(names, values));
  const pairs = backupRequestPairs(changetype<usize>(client), client.byteLength, backup);
  return listHeaders(deserializeHeaders(changetype<usize>(pairs), pairs.byteLength));
}

/**
 * The streamed mode's edits for one backup entry (JSON) on request headers: "-name" a removal,
 * "name=value" a set, one a line; "error: ..." when the entry is refused.
 */
export function upstreamEdits(entry: ArrayBuffer, names: string, values: string): string {
  const parsed = parseBackupEntry(entry, "backup");
  if (parsed.backup == null) return "error: " + parsed.error;
  return listEdits(attemptHeaderEdits(headerList(names, values), parsed.backup!, []));
}

/** As upstreamEdits, for a whole upstream configuration of a backup's attempt (its credentialHeaders, earlierBackupHeaders). */
export function attemptEdits(json: ArrayBuffer, names: string, values: string): string {
  const parsed = parseUpstreamConfig(json);
  if (parsed.config == null) return "error: " + parsed.error;
  const config = parsed.config!;
  return listEdits(attemptHeaderEdits(headerList(names, values), config.backup!, config.earlierBackupHeaders));
}

function listEdits(edits: HeaderEdits): string {
  let out = "";
  for (let i = 0; i < edits.removals.length; i++) out += (out.length > 0 ? "\n" : "") + "-" + edits.removals[i];
  if (edits.sets.length > 0) out += (out.length > 0 ? "\n" : "") + listHeaders(edits.sets);
  return out;
}

/** The built-in credential header names, one a line. */
export function builtInCredentialHeaders(): string {
  return CREDENTIAL_HEADERS.join("\n");
}

/** Whether a backup entry's filter reads the client's request headers (its edits depend on them). */
export function upstreamReadsClientHeaders(entry: ArrayBuffer): bool {
  return editsReadClientHeaders(parseBackupEntry(entry, "backup").backup!);
}

/**
 * The primary guard's configuration as JSON: {"isGuard":..,"error":..,"holdFirstPacket":..,
 * "replyToHeadersOnlyErrors":..,"maxRequestBodyBytes":..} (the last three only when accepted).
 */
export function guardSummary(json: ArrayBuffer): string {
  const r = parseGuardConfig(json);
  let out = "{\"isGuard\":" + (r.isGuard ? "true" : "false") + ",\"error\":" + q(r.error);
  const g = r.guard;
  if (g !== null) {
    out += ",\"holdFirstPacket\":" + (g.holdFirstPacket ? "true" : "false") +
      ",\"replyToHeadersOnlyErrors\":" + (g.replyToHeadersOnlyErrors ? "true" : "false") +
      ",\"maxRequestBodyBytes\":" + g.maxRequestBodyBytes.toString() +
      ",\"keepAliveIsNotFirstPacket\":" + (g.firstPacket == FirstPacket.Event ? "true" : "false") +
      ",\"firstPacket\":" + g.firstPacket.toString();
  }
  return out + "}";
}

/** The guard's step (0 continue, 1 hold until the first byte, 2 reply with a body) for a guard configuration. */
export function guardStep(json: ArrayBuffer, streaming: bool, status: i32, endOfStream: bool): i32 {
  return <i32>guardResponseHeaders(parseGuardConfig(json).guard!, streaming, status, endOfStream);
}

/** Whether the guard reads the response's status (its only data read besides the property). */
export function guardReadsStatus(json: ArrayBuffer, timed: bool, endOfStream: bool): bool {
  return guardNeedsStatus(parseGuardConfig(json).guard!, timed, endOfStream);
}

/** The guard configuration's load-time warnings, one a line. */
export function guardWarnings(json: ArrayBuffer): string {
  return parseGuardConfig(json).warnings.join("\n");
}

/** The guard's reply for a headers-only `status`: its headers ("name=value" a line), a blank line, its body. */
export function guardReply(status: i32, names: string, values: string): string {
  return listHeaders(guardReplyHeaders(headerList(names, values))) + "\n\n" + String.UTF8.decode(guardReplyBody(status));
}

/** The streamed role's per-try timeout (ms, 0 = none) for a plugin configuration and a request that streams or not. */
export function perTryTimeout(json: ArrayBuffer, method: string, streaming: bool): u32 {
  const policy = parseConfig(json).config!.global;
  return perTryTimeoutApplies(policy, method) ? perTryTimeoutMs(policy, streaming) : 0;
}

/** The streamed mode's upstream configuration, summarised: "error: ..." when refused. */
export function upstreamConfigSummary(json: ArrayBuffer): string {
  const parsed = parseUpstreamConfig(json);
  if (parsed.config == null) return "error: " + parsed.error;
  const c = parsed.config!;
  const backup = c.backup;
  return "attempt=" + c.attempt.toString() + " attempts=" + c.attempts.toString() + " hideTopology=" + c.hideTopology.toString() +
    " 404=" + c.triggerStatuses.has(404).toString() + " 503=" + c.triggerStatuses.has(503).toString() +
    " backup=" + (backup == null ? "none" : backup.service) + (c.primaryFilter ? "" : " primaryFilter=false") +
    " never=" + c.neverTrigger.join(",") + " always=" + c.alwaysTrigger.join(",") +
    (c.retry === null ? "" : " retry=" + c.retry!.attempts.toString() + " retryClusters=" + c.retryClusters.join(","));
}

/** The meanings an error body carries, one a line. */
export function meaningsOf(body: ArrayBuffer): string {
  return errorMeanings(changetype<usize>(body), body.byteLength).join("\n");
}

/**
 * A model service's error (`status`, meanings one a line) under the global policy of `json`:
 * "unread" (the body is not read: the status decides), "fallback", "fallback by <code>", "pass", "never <code>".
 */
export function meaningVerdict(json: ArrayBuffer, status: i32, meanings: string): string {
  const policy = parseConfig(json).config!.global;
  const statusTriggers = policy.triggerStatuses.has(status);
  if (!meaningMayMatter(status, statusTriggers, policy.neverTrigger, policy.alwaysTrigger)) return "unread";
  const list = meanings.length == 0 ? new Array<string>() : meanings.split("\n");
  const v = decideByMeaning(statusTriggers, list, policy.neverTrigger, policy.alwaysTrigger);
  if (v.neverTriggered) return "never " + v.code;
  if (!v.fallback) return "pass";
  return v.code.length > 0 ? "fallback by " + v.code : "fallback";
}

/** An identity whose digest is every other one's: a collision, which is too rare to find at 64 bits. */
class CollidingIdentity extends RequestIdentity {
  digest(): u64 {
    return 42;
  }
}

/** "<n>" -> the request whose key is n; "c<n>": key n, its digest made to collide with every other "c" one. */
function identityOf(word: string): RequestIdentity {
  if (word.startsWith("c")) return new CollidingIdentity(U64.parseInt(word.slice(1)));
  return new RequestIdentity(U64.parseInt(word));
}

/**
 * Drives one AttemptLog (over a budget of `budgetBytes`) through a script, one command a line; returns one answer a line:
 *   put <id> <ms> <result>[,<result>...]   -> ok | full | over_budget | collision        take <id> -> <attempts> | none
 *   fill <id> <attempt> [<primary result>]  (take, fill the gaps before <attempt>, answer the list)
 *   size -> <n>     bytes -> <the budget's bytes in use> <the table's>
 * An id is "<n>" or "c<n>" (identityOf).
 */
export function attemptLogScript(script: string, budgetBytes: i32): string {
  const budget = new MemoryBudget(budgetBytes);
  const log = new AttemptLog(budget);
  const lines = script.split("\n");
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    const words = lines[i].split(" ");
    let answer = "";
    if (words[0] == "put") {
      const record = new AttemptRecord();
      const results = words[3].split(",");
      for (let k = 0; k < results.length; k++) record.attempts.push(new Attempt(k == 0 ? "primary" : "b" + k.toString(), "", results[k]));
      const kept = log.put(identityOf(words[1]), record, U64.parseInt(words[2]));
      answer = kept == Kept.Yes ? "ok" : kept == Kept.Full ? "full" : kept == Kept.OverBudget ? "over_budget" : "collision";
    } else if (words[0] == "take" || words[0] == "fill") {
      let record = log.take(identityOf(words[1]));
      if (words[0] == "fill") {
        if (record == null) record = new AttemptRecord();
        if (words.length > 3) record.fillTo(I32.parseInt(words[2]), words[3]);
        else record.fillTo(I32.parseInt(words[2]));
      }
      answer = record == null ? "none" : formatAttempts(record.attempts) + " trigger=" + record.trigger();
    } else if (words[0] == "size") {
      answer = log.size.toString();
    } else if (words[0] == "bytes") {
      answer = budget.used.toString() + " " + log.heldBytes.toString();
    }
    out += (i > 0 ? "\n" : "") + answer;
  }
  return out;
}

export function attemptTrigger(result: string): string {
  return triggerOf(result);
}

export function stripCredentialParameters(path: string): string {
  return withoutCredentialParameters(path);
}

/** The filter's own error body, with the attempts of a two-line script ("svc result" a line). */
export function errorBody(status: i32, hideTopology: bool): string {
  const attempts = [new Attempt("primary", "", "first_packet_timeout"), new Attempt("backup-a", "pass-through", "timeout")];
  return String.UTF8.decode(exhaustedErrorBody(status, attempts, hideTopology));
}

/** A `:status` value's bytes as the filter reads them from the host (abi/hostcalls responseStatus). */
export function statusCode(bytes: ArrayBuffer): i32 {
  return statusCodeAt(changetype<usize>(bytes), bytes.byteLength);
}

export function answerHeaders(names: string, values: string): string {
  return listHeaders(clientResponseHeaders(headerList(names, values)));
}

/** A backup answer's header map (wire format) as the client gets it with one report header, `:status` first when `status` > 0. */
export function answerPairs(map: ArrayBuffer, status: i32): string {
  const extra: StaticArray<string> = ["x-ai-fallback-trigger", "status=503"];
  const pairs = clientResponsePairs(changetype<usize>(map), map.byteLength, extra, status);
  return listHeaders(deserializeHeaders(changetype<usize>(pairs), pairs.byteLength));
}

export function modelAsked(label: string, body: ArrayBuffer): string {
  return askedModel(label, changetype<usize>(body), body.byteLength);
}

export function headerPairs(names: string, values: string): ArrayBuffer {
  // names and values are "\n"-separated byte strings
  const n = names.split("\n");
  const v = values.split("\n");
  const headers = new Array<Header>();
  for (let i = 0; i < n.length; i++) headers.push(new Header(n[i], v[i]));
  return serializeHeaders(headers);
}

/** The served answer's header map as the filter writes it: `:status`, then the headers. */
export function responsePairs(status: i32, names: string, values: string): ArrayBuffer {
  const n = names.split("\n");
  const v = values.split("\n");
  const headers = new Array<Header>();
  for (let i = 0; i < n.length; i++) if (n[i].length > 0) headers.push(new Header(n[i], v[i]));
  return serializeResponseHeaders(status, headers);
}

export function headerPairsBack(bytes: ArrayBuffer): string {
  const headers = deserializeHeaders(changetype<usize>(bytes), bytes.byteLength);
  let out = "";
  for (let i = 0; i < headers.length; i++) out += (i > 0 ? "\n" : "") + headers[i].name + "=" + headers[i].value;
  return out;
}

/** A header's value from serialized pairs, or "<none>". */
export function serializedHeader(bytes: ArrayBuffer, name: string): string {
  const value = findSerializedHeader(changetype<usize>(bytes), bytes.byteLength, name);
  return value === null ? "<none>" : value;
}

/** A response's :status from serialized pairs (0 when absent or not three digits). */
export function statusFromPairs(bytes: ArrayBuffer): i32 {
  return serializedStatus(changetype<usize>(bytes), bytes.byteLength);
}

export function byteStringRoundTrip(bytes: ArrayBuffer): ArrayBuffer {
  return byteStringToBuffer(byteStringFromBuffer(bytes));
}

const STEP_NAMES = ["continue", "hold", "dispatch", "serve-backup", "serve-last-error", "resume-primary", "reply-error", "hold-buffered",
  "hold-whole", "write-headers", "write-body", "drop-chunk", "release-primary", "primary-wins-race", "wait-retry"];
const PHASE_NAMES = ["request", "awaiting", "holding-first-packet", "pass-through", "falling-back", "replying", "resumed", "done", "answering", "reading-error-body"];
const DELIVERY_NAMES = ["swap-in-place", "through-filter-chain", "direct", "swap-buffered"];

/**
 * Drives a FallbackMachine with a script, one event a line, and reports each step:
 *   body <size> | end [stream] | upstream | at <ms> | headers <status> [details] [eos] | chunk first|keepalive
 *   | timeout | answer <status> | refuse [unknown_cluster|refused] | norewrite | meaning <codes,...|-> [whole]
 *   | route <rule index, -1 = none> [nomethod] (a filter behind sent the request to that rule's route)
 * Output lines: "<event> -> <step> [<backup> <timeoutMs>] (<phase>)", then "attempts: ..." and "trigger: ...".
 */
export function runMachine(json: ArrayBuffer, script: string): string {
  const result = parseConfig(json);
  if (result.config == null) return "config error: " + result.error;
  const machine = new FallbackMachine(result.config!.global);
  let now: u64 = 1000;
  let out = "";
  const lines = script.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length == 0) continue;
    const words = line.split(" ");
    const verb = words[0];
    let step: i32 = -1;
    if (verb == "at") {
      now = <u64>I64.parseInt(words[1]);
      continue;
    } else if (verb == "body") {
      out += line + " -> " + (machine.requestBodyChunk(<u32>I32.parseInt(words[1])) ? "keep" : "drop") + "\n";
      continue;
    } else if (verb == "end") {
      machine.requestEnded(words.length > 1 && words[1] == "stream");
      out += line + " -> " + (machine.awaitingUpstream ? "awaiting upstream" : "deadline none") + "\n";
      continue;
    } else if (verb == "upstream") {
      machine.upstreamStarted(now);
      out += line + " -> deadline " + (machine.firstPacketDeadlineMs == 0 ? "none" : machine.firstPacketDeadlineMs.toString()) + "\n";
      continue;
    } else if (verb == "headers") {
      const details = words.length > 2 && words[2] != "eos" ? words[2] : "via_upstream";
      step = machine.responseHeaders(I32.parseInt(words[1]), classifyOrigin(details), words[words.length - 1] == "eos", now);
    } else if (verb == "chunk") {
      step = machine.responseBody(words[1] == "first");
    } else if (verb == "timeout") {
      step = machine.firstPacketTimedOut(now);
    } else if (verb == "answer") {
      // answer <status> [retry-after ms] [noanswer]
      const retryAfter = words.length > 2 && words[2] != "noanswer" ? I64.parseInt(words[2]) : -1;
      step = machine.backupAnswered(I32.parseInt(words[1]), now, words[words.length - 1] == "noanswer", retryAfter, 0);
    } else if (verb == "retrydue") {
      step = machine.retryDue(now);
    } else if (verb == "tries") {
      machine.primaryTries = I32.parseInt(words[1]);
      continue;
    } else if (verb == "refuse") {
      step = machine.dispatchFailed(words.length > 1 ? words[1] : UNKNOWN_CLUSTER, now);
    } else if (verb == "route") {
      const index = I32.parseInt(words[1]);
      const config = result.config!;
      machine.followRoute(index < 0 ? config.global : config.rules[index].policy, words.length < 3 || words[2] != "nomethod");
      out += line + " -> " + (machine.replayable ? "replayable" : "not replayable: " + machine.notReplayableReason) + "\n";
      continue;
    } else if (verb == "meaning") {
      // meaning <code,code|-> [whole]: the held error's body was read.
      const codes = words[1] == "-" ? new Array<string>() : words[1].split(",");
      step = machine.errorBodyRead(codes, now, words.length > 2 && words[2] == "whole");
    } else if (verb == "norewrite") {
      step = machine.notRewritable(now);
    } else {
      return "bad script line: " + line;
    }
    out += line + " -> " + STEP_NAMES[step];
    if (step == Step.Dispatch) out += " " + machine.currentBackup!.service + " " + machine.callTimeoutMs.toString();
    if (step == Step.WaitRetry) out += " at " + machine.retryAtMs.toString();
    out += " (" + PHASE_NAMES[machine.phase] + ")";
    if (step == Step.ServeBackup || step == Step.ServeLastError) out += " " + DELIVERY_NAMES[machine.delivery];
    out += "\n";
  }
  out += "attempts: " + formatAttempts(machine.attempts) + "\n";
  out += "trigger: " + machine.trigger + "\n";
  if (machine.declined.length > 0) out += "declined: " + machine.declined + "\n";
  if (machine.heldError.neverTriggered.length > 0) out += "report: " + machine.heldError.neverTriggered + "\n";
  return out;
}

/**
 * The VM budget's limit after each step of a script over root contexts: "3=100" (root 3 configures
 * 100), "3x" (root 3 is gone). Starts from `defaultLimit`; returns the limit after each step.
 */
export function budgetLimitsScript(defaultLimit: i32, script: string): string {
  const limits = new BudgetLimits(defaultLimit);
  const out = new Array<string>();
  const ops = script.split(" ");
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.endsWith("x")) limits.forget(<u32>I32.parseInt(op.substring(0, op.length - 1)));
    else {
      const eq = op.indexOf("=");
      limits.set(<u32>I32.parseInt(op.substring(0, eq)), I64.parseInt(op.substring(eq + 1)));
    }
    out.push(limits.current.toString());
  }
  return out.join(" ");
}

/**
 * Runs a script against one MemoryBudget of `limit` bytes shared by streams a and b: "a+100" (take;
 * "ok" or "no"), "a-40" (give), "a!" (release all). Returns each result, then "used=..,peak=..".
 */
export function budgetScript(limit: i32, script: string): string {
  const budget = new MemoryBudget(limit);
  const a = new BudgetShare(budget);
  const b = new BudgetShare(budget);
  const out = new Array<string>();
  const ops = script.split(" ");
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const share = op.charAt(0) == "a" ? a : b;
    const kind = op.charAt(1);
    const n = kind == "!" ? 0 : I64.parseInt(op.substring(2));
    if (kind == "+") out.push(share.tryTake(n) ? "ok" : "no");
    else if (kind == "-") share.give(n);
    else share.releaseAll();
  }
  out.push("used=" + budget.used.toString() + ",peak=" + budget.peak.toString());
  return out.join(" ");
}

/** Appends chunks of the given sizes (optionally after reserving `exact`): the capacity after each, and the bytes read back intact. */
export function sinkGrowth(exact: i32, limit: i32, sizes: string): string {
  const sink = new ByteSink();
  sink.limit = limit;
  if (exact > 0) sink.resize(exact);
  const out = new Array<string>();
  const list = sizes.split(",");
  let written: u8 = 0;
  for (let i = 0; i < list.length; i++) {
    const size = I32.parseInt(list[i]);
    const chunk = new Uint8Array(size);
    for (let k = 0; k < size; k++) chunk[k] = written++;
    sink.append(chunk.dataStart, size);
    out.push(sink.capacity.toString());
  }
  let intact = true;
  for (let k = 0; k < sink.length; k++) if (load<u8>(sink.ptr + k) != <u8>k) intact = false;
  out.push(intact ? "intact" : "corrupt");
  sink.clear();
  out.push(sink.capacity.toString());
  return out.join(" ");
}

/** Which of the events at the given times (ms) a one-per-`interval` limiter lets through ("y"/"n"), and the suppressed count at the end. */
export function limiterScript(interval: i32, times: string): string {
  const limiter = new LogLimiter(<u64>interval);
  const list = times.split(",");
  let out = "";
  for (let i = 0; i < list.length; i++) out += limiter.allow(U64.parseInt(list[i])) ? "y" : "n";
  return out + " " + limiter.takeSuppressed().toString();
}

/**
 * streamIdleTimeout's watch, driven as the glue drives it: started at 0 (the first chunk), chunks at
 * the times in `chunkTimes` (comma-separated ms), checked at each next-check time. The time of the
 * check that finds it silent (the cut); -1 when none does before `untilMs`.
 */
export function idleCutAt(idleMs: u32, chunkTimes: string, untilMs: u64): i64 {
  const times = chunkTimes.length == 0 ? new Array<string>() : chunkTimes.split(",");
  const watch = new StreamIdleWatch(idleMs, 0);
  let next = watch.nextCheckMs(0);
  let i = 0;
  while (next <= untilMs) {
    while (i < times.length && <u64>I64.parseInt(times[i]) <= next) {
      watch.chunks++;
      i++;
    }
    if (watch.silentAt(next)) return <i64>next;
    next = watch.nextCheckMs(next);
  }
  return -1;
}

/** The handoff chain's wire form round trip: encoded from `hop`, `trigger` and attempts (`service|model|result;...`), read back. */
export function handoffChainRoundTrip(hop: i32, trigger: string, attempts: string): string {
  const list: Attempt[] = [];
  const items = attempts.length == 0 ? new Array<string>(0) : attempts.split(";");
  for (let i = 0; i < items.length; i++) {
    const f = items[i].split("|");
    list.push(new Attempt(f[0], f[1], f[2]));
  }
  const back = decodeChain(new HandoffChain(hop, trigger, list).encode());
  return back === null ? "null" : back.nextHop.toString() + " " + back.trigger + " " + formatAttempts(back.attempts);
}

/** A carried chain as read back from raw text; "null" when it is not one. */
export function handoffChainRead(text: string): string {
  const back = decodeChain(text);
  return back === null ? "null" : back.nextHop.toString() + " " + back.trigger + " " + formatAttempts(back.attempts);
}

// --- the cooldown (core/cooldown.ts, core/retry_after.ts) ---

/**
 * Runs `script` against one service's cooldown state under the configuration `json`'s cooldown
 * section; events separated by ";": "f@t" a failure at t ms, "r<ms>@t" a failure with a Retry-After
 * of <ms>, "s@t" a success, "a@t" an admission (a probe is claimed, its lease the duration).
 * Returns one word per event: enter/- (failures), leave/- (successes), use/skip/probe (admissions),
 * and then "|" and the state's table line.
 */
export function cooldownScript(json: ArrayBuffer, script: string): string {
  const settings = parseConfig(json).config!.cooldown!;
  const state = new ServiceState();
  const events = script.split(";");
  const out = new Array<string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const at = e.indexOf("@");
    const t = <u64>I64.parseInt(e.slice(at + 1));
    const kind = e.charAt(0);
    if (kind == "f") out.push(recordFailure(state, settings, t, -1) ? "enter" : "-");
    else if (kind == "r") out.push(recordFailure(state, settings, t, I64.parseInt(e.slice(1, at))) ? "enter" : "-");
    else if (kind == "s") out.push(recordSuccess(state) ? "leave" : "-");
    else {
      const a = admission(state, t);
      if (a == Admission.Probe) claimProbe(state, t, settings.durationMs);
      out.push(a == Admission.Use ? "use" : a == Admission.Skip ? "skip" : "probe");
    }
  }
  const table = new Map<string, ServiceState>();
  table.set("svc", state);
  return out.join(",") + "|" + formatTable(table);
}

/** A table's text, parsed and written again. */
export function cooldownTableRoundTrip(text: string): string {
  return formatTable(parseTable(text));
}

export function retryAfter(value: string, wallNowMs: f64): f64 {
  return <f64>retryAfterMs(value, <u64>wallNowMs);
}

export function cooldownSummary(json: ArrayBuffer): string {
  const result = parseConfig(json);
  if (result.config == null) return "error: " + result.error;
  const c = result.config!.cooldown;
  if (c === null) return "off";
  return c.failures.toString() + " " + c.windowMs.toString() + " " + c.durationMs.toString() + " " + c.maxRetryAfterMs.toString() + " " + c.primary;
}

// --- same-service retry (core/retry.ts, core/config/retry_reader.ts) ---

/** The global policy's retry section as "attempts backoff maxRetryAfter statuses reset|-  retry-on / codes", "off", or "error: ...". */
export function retrySummary(json: ArrayBuffer): string {
  const result = parseConfig(json);
  if (result.config == null) return "error: " + result.error;
  const r = result.config!.global.retry;
  if (r === null) return "off";
  return r.attempts.toString() + " " + r.backoffMs.toString() + " " + r.maxRetryAfterMs.toString() + " " + r.statuses.join(",") + " " +
    (r.onReset ? "reset" : "-") + " | " + r.routerRetryOn + " / " + r.routerStatusCodes;
}

/** retryWaitMs under the configuration's retry section (-1: move on at once). */
export function retryWait(json: ArrayBuffer, status: i32, timedOut: bool, retriesDone: i32, retryAfter: f64, entropy: f64): f64 {
  const settings = parseConfig(json).config!.global.retry!;
  return <f64>retryWaitMs(settings, status, timedOut, retriesDone, <i64>retryAfter, <u64>entropy);
}

export function retryBackoff(baseMs: u32, retriesDone: i32, entropy: f64): f64 {
  return <f64>backoffMs(baseMs, retriesDone, <u64>entropy);
}
