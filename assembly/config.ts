// Plugin configuration: JSON bytes in, an immutable Config or an error naming the field out. Pure.
// Parsed once per root context (on_configure); streams share it read-only.
import { JSON, keyAsWritten } from "./json_value";
import { Header } from "./headers";
import { asciiLower, firstInvalidUtf8, utf8ByteString } from "./bytes";
import { firstJsonError } from "./json_scan";
import { jsonStringLiteral } from "./model_rewrite";
import { DomainPattern, RuleMatch, hostOf } from "./rule_match";
import { StatusSet } from "./status_set";
import { STRING_VALUE_HINT, Unit, integerWhy, notJsonWhy, unknownFieldWhy } from "./config_messages";

// Defaults, documented in README.md's configuration table.
export const DEFAULT_BACKUP_TIMEOUT_MS: u32 = 120_000;
export const DEFAULT_MAX_REQUEST_BODY_BYTES: u32 = 10 * 1024 * 1024;
/** The copy of a body lives in one wasm buffer (AssemblyScript caps it far below 4 GiB). */
export const MAX_REQUEST_BODY_BYTES: u32 = 256 * 1024 * 1024;
/**
 * The per-VM memory budget (bytes the filter allocates for in-flight requests; see memory_budget.ts).
 * V8 caps a VM at 1 GiB (16384 pages, measured: tests/e2e/reliability.test.js); the budget leaves
 * the rest for the module itself, the allocator's fragmentation and short-lived objects.
 */
export const DEFAULT_MAX_KEPT_BYTES_PER_WORKER: u32 = 256 * 1024 * 1024;
export const MAX_KEPT_BYTES_PER_WORKER: u32 = 512 * 1024 * 1024;
/** Half of Envoy's default 1 MiB per_connection_buffer_limit_bytes: a held body must never reach it. */
export const DEFAULT_MAX_HELD_REQUEST_BYTES: u32 = 512 * 1024;
// Under Envoy's default 5-minute stream_idle_timeout, which would otherwise end a held stream first.
export const DEFAULT_FALLBACK_DEADLINE_MS: u32 = 240_000;
export const PASS_THROUGH = "pass-through";
/** Only model-API requests are replayed: by default POST (chat, completions, embeddings...). */
export const DEFAULT_METHODS = ["POST"];
/** Gateway replies that mean "busy, try elsewhere" (backendErrorsOnly: false). */
export const DEFAULT_GATEWAY_TRIGGER_STATUSES: i32[] = [429, 503];

/**
 * Client headers that carry a credential, or that belong to the client's own credential and account:
 * dropped when a backup sets its own (a backup that sets one of them brings its own credential).
 * - keys: `authorization` (OpenAI, DeepSeek, DashScope/Qwen, Bedrock API keys, Vertex AI tokens: Bearer),
 *   `proxy-authorization`, `x-api-key` (Anthropic), `api-key` (Azure OpenAI), `x-goog-api-key` (Gemini),
 *   `ocp-apim-subscription-key` (Azure API Management), `x-amz-security-token` (AWS session token);
 * - the rest of an AWS SigV4 signature, worthless without the client's `authorization`: `x-amz-date`,
 *   `x-amz-content-sha256`;
 * - the client's account at the provider: `openai-organization`, `openai-project`,
 *   `x-goog-user-project` (Google's billing project), `x-dashscope-workspace`.
 * Copied in scripts/streamed_config_lib.cjs (the generator); README.md lists them.
 */
export const CREDENTIAL_HEADERS = [
  "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "ocp-apim-subscription-key",
  "x-amz-security-token", "x-amz-date", "x-amz-content-sha256",
  "openai-organization", "openai-project", "x-goog-user-project", "x-dashscope-workspace",
];

export class Backup {
  /** The Envoy cluster the call goes to. */
  service: string = "";
  /** `service` as UTF-8, as proxy_http_call takes it (encoded once, not per call). */
  serviceBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Override model as configured; "" = pass-through (the request's own model). */
  model: string = "";
  /** `service` and the model ("pass-through" or the override) as byte strings (UTF-8), for headers and logs. */
  serviceLabel: string = "";
  modelLabel: string = PASS_THROUGH;
  /** `model` as a JSON string literal, precomputed; null for pass-through. */
  modelLiteral: ArrayBuffer | null = null;
  timeoutMs: u32 = DEFAULT_BACKUP_TIMEOUT_MS;
  /** Replaces the request's :path; null keeps it. */
  path: string | null = null;
  /** Replaces the request's :authority; null keeps it. */
  authority: string | null = null;
  /** Headers set on the backup request (lower-case names, byte-string values). */
  headers: Header[] = [];
  /** `headers` sets a credential, so the client's credentials (headers, cookie, query keys) are not forwarded. */
  replacesCredentials: bool = false;
  /** The credential header names (lower case): the built-in list plus the top-level `credentialHeaders`. */
  credentialHeaders: string[] = CREDENTIAL_HEADERS;

  /** Whether a client header (lower-case name) carries a credential this backup's own replaces. */
  isCredentialHeader(lowerName: string): bool {
    return this.credentialHeaders.includes(lowerName);
  }
  /** Further client headers this backup never gets (lower-case names). */
  dropHeaders: string[] = [];
}

/** The fallback policy of one Model API (the global one, or one `_rules_` entry). */
export class Policy {
  backups: Backup[] = [];
  backendErrorsOnly: bool = true;
  triggerStatuses: StatusSet = StatusSet.allErrors();
  /** Statuses of gateway replies that trigger when backendErrorsOnly is off. */
  gatewayTriggerStatuses: StatusSet = StatusSet.of(DEFAULT_GATEWAY_TRIGGER_STATUSES);
  /** Request methods that are replayed; others pass through. */
  methods: string[] = DEFAULT_METHODS;
  /** No cluster names or per-attempt results in client responses (they stay in the log). */
  hideTopology: bool = false;
  maxRequestBodyBytes: u32 = DEFAULT_MAX_REQUEST_BODY_BYTES;
  maxHeldRequestBytes: u32 = DEFAULT_MAX_HELD_REQUEST_BYTES;
  firstPacketTimeoutMs: u32 = 0;
  keepAliveIsNotFirstPacket: bool = false;
  fallbackDeadlineMs: u32 = DEFAULT_FALLBACK_DEADLINE_MS;

  copy(): Policy {
    const p = new Policy();
    p.backups = this.backups;
    p.backendErrorsOnly = this.backendErrorsOnly;
    p.triggerStatuses = this.triggerStatuses;
    p.gatewayTriggerStatuses = this.gatewayTriggerStatuses;
    p.methods = this.methods;
    p.hideTopology = this.hideTopology;
    p.maxRequestBodyBytes = this.maxRequestBodyBytes;
    p.maxHeldRequestBytes = this.maxHeldRequestBytes;
    p.firstPacketTimeoutMs = this.firstPacketTimeoutMs;
    p.keepAliveIsNotFirstPacket = this.keepAliveIsNotFirstPacket;
    p.fallbackDeadlineMs = this.fallbackDeadlineMs;
    return p;
  }
}

/** A `_rules_` entry: the policy for requests its conditions match (rule_match.ts). */
export class Rule {
  match: RuleMatch = new RuleMatch();
  policy: Policy = new Policy();
}

export class Config {
  global: Policy = new Policy();
  rules: Rule[] = [];
  /** Bytes of request copies one worker (one VM) may keep at once: a bound on the VM's memory. */
  maxKeptBytesPerWorker: u32 = DEFAULT_MAX_KEPT_BYTES_PER_WORKER;

  /** Some rule matches on the upstream service (so the glue reads the cluster name). */
  matchesServices: bool = false;

  /**
   * The policy for a request: the first rule that matches its route name, authority and upstream
   * cluster (as Higress's plugins match them, rule_match.ts), else the global one.
   */
  policyFor(routeName: string, authority: string, cluster: string): Policy {
    const host = hostOf(authority);
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i];
      if (rule.match.matches(routeName, host, cluster)) return rule.policy;
    }
    return this.global;
  }
}

export class ConfigResult {
  /** Accepted, but worth a warning in the log (e.g. refused requests will be replayed). */
  warnings: string[] = [];
  constructor(public config: Config | null, public error: string) {}
}


// Headers a backup may not set: the call's pseudo-headers and framing belong to the filter.
function isReservedHeader(lowerName: string): bool {
  return lowerName.startsWith(":") || lowerName == "content-length" || lowerName == "transfer-encoding" ||
    lowerName == "host";
}

const POLICY_KEYS = [
  "backups", "backendErrorsOnly", "triggerStatuses", "gatewayTriggerStatuses", "methods", "hideTopology",
  "maxRequestBodyBytes", "maxHeldRequestBytes", "firstPacketTimeout", "keepAliveIsNotFirstPacket", "fallbackDeadline",
];
const BACKUP_KEYS = ["service", "model", "timeout", "path", "authority", "headers", "dropHeaders"];
const RULE_KEYS = ["_match_route_", "_match_domain_", "_match_service_", "_match_route_prefix_"];
const MATCH_KEYS_TEXT = "_match_route_, _match_domain_, _match_service_ or _match_route_prefix_";
// Added by Higress to a plugin's configuration to name it in logs; its SDK removes it before
// parsing (higress-group/wasm-go pkg/wrapper/plugin_wrapper.go, PluginIDKey). Ignored here.
const PLUGIN_ID_KEY = "_plugin_id_";

/** Parses and validates the plugin configuration. */
export function parseConfig(bytes: ArrayBuffer): ConfigResult {
  if (bytes.byteLength == 0) return fail("configuration: empty; a JSON object with \"backups\" is required: " + STRING_VALUE_HINT);
  const syntaxError = firstJsonError(changetype<usize>(bytes), bytes.byteLength);
  if (syntaxError >= 0) return fail(notJsonWhy(bytes, syntaxError, ", or nested over 1024 levels"));
  // Decoding malformed UTF-8 would hand the parser a garbled text.
  const badByte = firstInvalidUtf8(changetype<usize>(bytes), bytes.byteLength);
  if (badByte >= 0) return fail("configuration: not valid UTF-8 (at byte " + badByte.toString() + ")");
  // The parser takes any JSON value; the configuration must be an object.
  if (!startsWithObject(bytes)) return fail("configuration: must be a JSON object");
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes));
  if (root.type != JSON.Types.Object) return fail("configuration: must be a JSON object");
  const obj = root.get<JSON.Obj>();
  const parser = new Parser();
  const config = new Config();
  const known = POLICY_KEYS.concat(["_rules_", "maxKeptBytesPerWorker", "credentialHeaders", PLUGIN_ID_KEY]);
  if (!parser.checkKeys(obj, known, "")) return fail(parser.error);
  // Before the backups: a backup whose headers name one of them brings its own credential.
  if (!parser.readCredentialHeaders(obj)) return fail(parser.error);
  if (obj.has("maxKeptBytesPerWorker")) {
    const n = parser.readInteger(obj.get("maxKeptBytesPerWorker")!, "maxKeptBytesPerWorker", 1, MAX_KEPT_BYTES_PER_WORKER, Unit.Bytes);
    if (n < 0) return fail(parser.error);
    config.maxKeptBytesPerWorker = <u32>n;
  }
  if (!parser.readPolicy(obj, "", config.global, !obj.has("_rules_"))) return fail(parser.error);
  if (obj.has("_rules_")) {
    const rules = obj.get("_rules_")!;
    if (rules.type != JSON.Types.Array) return fail("_rules_: must be an array, got " + rules.toString());
    const list = rules.get<JSON.Arr>();
    for (let i = 0; i < list.length; i++) {
      const rule = parser.readRule(list.at(i), "_rules_[" + i.toString() + "]", config.global);
      if (rule == null) return fail(parser.error);
      config.rules.push(rule);
      if (rule.match.needsService) config.matchesServices = true;
    }
  }
  const result = new ConfigResult(config, "");
  result.warnings = parser.warnings;
  return result;
}

/** The first byte after leading JSON whitespace is `{`. */
export function startsWithObject(bytes: ArrayBuffer): bool {
  const base = changetype<usize>(bytes);
  for (let i = 0; i < bytes.byteLength; i++) {
    const c = load<u8>(base + i);
    if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) continue;
    return c == 0x7b;
  }
  return false;
}

/** `s` with control characters written as \u00XX: an error quotes configured values, and it must stay one log line. */
function escapeControls(s: string): string {
  if (!hasControlCharacter(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c < 0x20 || c == 0x7f ? "\\u00" + (c < 0x10 ? "0" : c < 0x20 ? "1" : "7") + "0123456789abcdef".charAt(c & 15) : s.charAt(i);
  }
  return out;
}

function fail(message: string): ConfigResult {
  return new ConfigResult(null, escapeControls(message));
}

/** Control characters would make invalid header values (and cluster names). */
function hasControlCharacter(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

/** RFC 3986 unreserved and sub-delims characters (allowed in both a path and an authority). */
function isUnreservedOrSubDelim(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e || c == 0x21 || c == 0x24 || (c >= 0x26 && c <= 0x2c) ||
    c == 0x3b || c == 0x3d;
}

function isHexDigit(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * The index of the first character of `s` that may not appear in a request target (path and query,
 * RFC 3986: pchar, "/", "?", and "%" only before two hex digits) or, with `authority`, in a
 * host[:port] ("[", "]" and ":" for IP literals and the port; no "/", "?" or "@"); -1 when none.
 */
function firstInvalidUriChar(s: string, authority: bool): i32 {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isUnreservedOrSubDelim(c) || c == 0x3a) continue;
    if (c == 0x25 && i + 2 < s.length && isHexDigit(s.charCodeAt(i + 1)) && isHexDigit(s.charCodeAt(i + 2))) continue;
    if (authority ? (c == 0x5b || c == 0x5d) : (c == 0x2f || c == 0x3f || c == 0x40)) continue;
    return i;
  }
  return -1;
}

function describeChar(s: string, at: i32): string {
  const c = s.charCodeAt(at);
  return c == 0x20 ? "a space" : "\"" + s.charAt(at) + "\"";
}

function isWhitespace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/** An HTTP header name: RFC 9110 token characters (compared lower case). */
function isHeaderName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x21 || (c >= 0x23 && c <= 0x27) ||
      c == 0x2a || c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}

function isNumber(v: JSON.Value): bool {
  return v.type >= JSON.Types.U8 && v.type <= JSON.Types.F64;
}

/** The result of parsing one backup entry (the streamed mode's per-cluster configuration). */
export class BackupResult {
  constructor(public backup: Backup | null, public error: string) {}
}

/**
 * Parses one backup entry, `{"service": ..., "model": ..., "path": ..., ...}`, with the same rules
 * (and error messages) as an element of "backups": the configuration of the streamed mode's
 * per-cluster upstream filter.
 */
export function parseBackupEntry(bytes: ArrayBuffer, field: string): BackupResult {
  if (bytes.byteLength == 0) return new BackupResult(null, field + ": empty; a JSON object with \"service\" is required");
  const syntaxError = firstJsonError(changetype<usize>(bytes), bytes.byteLength);
  if (syntaxError >= 0) return new BackupResult(null, field + ": " + notJsonWhy(bytes, syntaxError, ""));
  const badByte = firstInvalidUtf8(changetype<usize>(bytes), bytes.byteLength);
  if (badByte >= 0) return new BackupResult(null, field + ": not valid UTF-8 (at byte " + badByte.toString() + ")");
  if (!startsWithObject(bytes)) return new BackupResult(null, field + ": must be a JSON object");
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes));
  const parser = new Parser();
  const backup = parser.readBackup(root, field);
  return backup == null ? new BackupResult(null, parser.error) : new BackupResult(backup, "");
}

/**
 * The streamed mode's upstream filter configuration, one per cluster of the chain (written by
 * scripts/streamed_config_lib.cjs): which attempt this cluster serves, how many there are, which
 * statuses make Envoy's router retry, and, for a backup, its entry.
 */
export class UpstreamConfig {
  /** 1 = the primary, 2 = the first backup, ... */
  attempt: i32 = 1;
  /** Attempts in the chain: 1 + the number of backups. */
  attempts: i32 = 1;
  triggerStatuses: StatusSet = StatusSet.allErrors();
  hideTopology: bool = false;
  /** This attempt's backup entry; null on the primary. */
  backup: Backup | null = null;
  /**
   * Headers that earlier backups' filters set and this backup does not (lower case): Envoy keeps one
   * request header map for all attempts, so they are removed before this attempt is sent.
   */
  earlierBackupHeaders: string[] = [];
  /** The methods the route retries (the primary records a failure only for these). */
  methods: string[] = DEFAULT_METHODS;
  /**
   * The primary's cluster runs the attempt filter that records its result (false: the lean
   * streamed mode, a backup reports the primary's result and the trigger as "retry").
   */
  primaryFilter: bool = true;
}

export class UpstreamConfigResult {
  constructor(public config: UpstreamConfig | null, public error: string) {}
}

function upstreamFailure(parser: Parser): UpstreamConfigResult {
  return new UpstreamConfigResult(null, parser.error);
}

const UPSTREAM_KEYS = [
  "attempt", "attempts", "triggerStatuses", "hideTopology", "methods", "primaryFilter", "credentialHeaders", "earlierBackupHeaders", "backup",
];

/** Parses `{"attempt": 2, "attempts": 3, "triggerStatuses": [...], "hideTopology": false, "primaryFilter": true, "backup": {...}}`. */
export function parseUpstreamConfig(bytes: ArrayBuffer): UpstreamConfigResult {
  if (bytes.byteLength == 0) return new UpstreamConfigResult(null, "configuration: empty; a JSON object with \"attempt\" is required");
  const syntaxError = firstJsonError(changetype<usize>(bytes), bytes.byteLength);
  if (syntaxError >= 0) return new UpstreamConfigResult(null, notJsonWhy(bytes, syntaxError, ""));
  const badByte = firstInvalidUtf8(changetype<usize>(bytes), bytes.byteLength);
  if (badByte >= 0) return new UpstreamConfigResult(null, "configuration: not valid UTF-8 (at byte " + badByte.toString() + ")");
  if (!startsWithObject(bytes)) return new UpstreamConfigResult(null, "configuration: must be a JSON object");
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes));
  const obj = root.get<JSON.Obj>();
  const parser = new Parser();
  const config = new UpstreamConfig();
  if (!parser.checkKeys(obj, UPSTREAM_KEYS, "")) return upstreamFailure(parser);
  if (!obj.has("attempt")) return new UpstreamConfigResult(null, "attempt: required: 1 for the primary, 2 for the first backup, ...");
  const attempt = parser.readInteger(obj.get("attempt")!, "attempt", 1, 1000);
  if (attempt < 0) return upstreamFailure(parser);
  config.attempt = <i32>attempt;
  const attempts = obj.has("attempts") ? parser.readInteger(obj.get("attempts")!, "attempts", attempt, 1000) : attempt;
  if (attempts < 0) return upstreamFailure(parser);
  config.attempts = <i32>attempts;
  if (obj.has("triggerStatuses")) {
    const set = parser.readStatuses(obj.get("triggerStatuses")!, "triggerStatuses");
    if (set == null) return upstreamFailure(parser);
    config.triggerStatuses = set;
  }
  if (obj.has("hideTopology")) {
    const v = obj.get("hideTopology")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "hideTopology: must be true or false, got " + v.toString());
    config.hideTopology = v.get<bool>();
  }
  if (obj.has("methods")) {
    const methods = parser.readMethods(obj.get("methods")!, "methods");
    if (methods == null) return upstreamFailure(parser);
    config.methods = methods;
  }
  if (obj.has("primaryFilter")) {
    const v = obj.get("primaryFilter")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "primaryFilter: must be true or false, got " + v.toString());
    if (attempt == 1) return new UpstreamConfigResult(null, "primaryFilter: only on a backup's attempt (attempt > 1): it tells a backup whether the primary's cluster has this filter");
    config.primaryFilter = v.get<bool>();
  }
  if (config.attempt == 1 && obj.has("backup")) return new UpstreamConfigResult(null, "backup: not allowed on attempt 1 (the primary)");
  if (!parser.readCredentialHeaders(obj)) return upstreamFailure(parser);
  if (obj.has("earlierBackupHeaders")) {
    if (attempt == 1) return new UpstreamConfigResult(null, "earlierBackupHeaders: only on a backup's attempt (attempt > 1): no backup's filter ran before the primary's");
    const names = parser.readHeaderNames(obj.get("earlierBackupHeaders")!, "earlierBackupHeaders");
    if (names == null) return upstreamFailure(parser);
    config.earlierBackupHeaders = names;
  }
  if (config.attempt > 1) {
    if (!obj.has("backup")) return new UpstreamConfigResult(null, "backup: required on a backup's attempt (attempt > 1)");
    config.backup = parser.readBackup(obj.get("backup")!, "backup");
    if (config.backup == null) return upstreamFailure(parser);
  }
  return new UpstreamConfigResult(config, "");
}

/** Walks the parsed JSON; on the first problem it records `error` ("field: why") and returns false/null. */
class Parser {
  error: string = "";
  warnings: string[] = [];
  /** The built-in credential headers, plus the configuration's `credentialHeaders` once read. */
  credentialHeaders: string[] = CREDENTIAL_HEADERS;

  refuse(field: string, why: string): bool {
    this.error = escapeControls(field + ": " + why);
    return false;
  }

  checkKeys(obj: JSON.Obj, known: string[], prefix: string): bool {
    const keys = obj.keys();
    for (let i = 0; i < keys.length; i++) {
      if (!known.includes(keys[i])) {
        return this.refuse(prefix + keyAsWritten(keys[i]), unknownFieldWhy(keys[i], known));
      }
    }
    return true;
  }

  /** The top-level `credentialHeaders` of `obj`, if present: added to the built-in list for every backup. */
  readCredentialHeaders(obj: JSON.Obj): bool {
    if (!obj.has("credentialHeaders")) return true;
    const names = this.readHeaderNames(obj.get("credentialHeaders")!, "credentialHeaders");
    if (names == null) return false;
    const all = CREDENTIAL_HEADERS.slice(0);
    for (let i = 0; i < names.length; i++) if (!all.includes(names[i])) all.push(names[i]);
    this.credentialHeaders = all;
    return true;
  }

  /** A list of ordinary header names, lower-cased (case-insensitive): no pseudo-header, host or framing. */
  readHeaderNames(v: JSON.Value, field: string): string[] | null {
    if (v.type != JSON.Types.Array) {
      this.refuse(field, "must be an array of header names, e.g. [\"x-tenant-key\"], got " + v.toString());
      return null;
    }
    const listed = this.readStringList(v, field);
    if (listed == null) return null;
    const names = listed.map<string>((name: string) => asciiLower(name));
    for (let i = 0; i < names.length; i++) {
      if (!isHeaderName(names[i]) || isReservedHeader(names[i])) {
        this.refuse(field + "[" + i.toString() + "]", "must name an ordinary header (not a pseudo-header, host or framing), got \"" + names[i] + "\"");
        return null;
      }
    }
    return names;
  }

  /** Fills `policy` from the policy fields present in `obj`; absent fields keep their values. */
  readPolicy(obj: JSON.Obj, prefix: string, policy: Policy, backupsRequired: bool): bool {
    if (obj.has("backups")) {
      const backups = this.readBackups(obj.get("backups")!, prefix + "backups");
      if (backups == null) return false;
      policy.backups = backups;
    } else if (backupsRequired) {
      return this.refuse(prefix + "backups", "required: a non-empty list of {\"service\": cluster, \"model\": ...}");
    }
    if (obj.has("backendErrorsOnly")) {
      const v = obj.get("backendErrorsOnly")!;
      if (v.type != JSON.Types.Bool) return this.refuse(prefix + "backendErrorsOnly", "must be true or false, got " + v.toString());
      policy.backendErrorsOnly = v.get<bool>();
    }
    if (obj.has("triggerStatuses")) {
      const set = this.readStatuses(obj.get("triggerStatuses")!, prefix + "triggerStatuses");
      if (set == null) return false;
      policy.triggerStatuses = set;
    }
    if (obj.has("gatewayTriggerStatuses")) {
      const set = this.readGatewayStatuses(obj.get("gatewayTriggerStatuses")!, prefix + "gatewayTriggerStatuses");
      if (set == null) return false;
      policy.gatewayTriggerStatuses = set;
    }
    if (obj.has("methods")) {
      const methods = this.readMethods(obj.get("methods")!, prefix + "methods");
      if (methods == null) return false;
      policy.methods = methods;
    }
    if (obj.has("hideTopology")) {
      const v = obj.get("hideTopology")!;
      if (v.type != JSON.Types.Bool) return this.refuse(prefix + "hideTopology", "must be true or false, got " + v.toString());
      policy.hideTopology = v.get<bool>();
    }
    if (obj.has("maxRequestBodyBytes")) {
      const n = this.readInteger(obj.get("maxRequestBodyBytes")!, prefix + "maxRequestBodyBytes", 1, MAX_REQUEST_BODY_BYTES, Unit.Bytes);
      if (n < 0) return false;
      policy.maxRequestBodyBytes = <u32>n;
    }
    if (obj.has("maxHeldRequestBytes")) {
      const n = this.readInteger(obj.get("maxHeldRequestBytes")!, prefix + "maxHeldRequestBytes", 1, MAX_REQUEST_BODY_BYTES, Unit.Bytes);
      if (n < 0) return false;
      policy.maxHeldRequestBytes = <u32>n;
    }
    if (obj.has("firstPacketTimeout")) {
      const n = this.readInteger(obj.get("firstPacketTimeout")!, prefix + "firstPacketTimeout", 0, 2147483647, Unit.Milliseconds);
      if (n < 0) return false;
      policy.firstPacketTimeoutMs = <u32>n;
    }
    if (obj.has("keepAliveIsNotFirstPacket")) {
      const v = obj.get("keepAliveIsNotFirstPacket")!;
      if (v.type != JSON.Types.Bool) return this.refuse(prefix + "keepAliveIsNotFirstPacket", "must be true or false, got " + v.toString());
      policy.keepAliveIsNotFirstPacket = v.get<bool>();
    }
    if (obj.has("fallbackDeadline")) {
      const n = this.readInteger(obj.get("fallbackDeadline")!, prefix + "fallbackDeadline", 1, 2147483647, Unit.Milliseconds);
      if (n < 0) return false;
      policy.fallbackDeadlineMs = <u32>n;
    }
    return true;
  }

  /** A whole number in [min, max]; -1 after refusing. */
  readInteger(v: JSON.Value, field: string, min: i64, max: i64 = 2147483647, unit: Unit = Unit.None): i64 {
    const why = integerWhy(v, min, max, unit);
    if (!isNumber(v)) {
      this.refuse(field, why);
      return -1;
    }
    const f = v.get<f64>();
    if (f != Math.floor(f) || f < <f64>min || f > <f64>max) {
      this.refuse(field, why);
      return -1;
    }
    return <i64>f;
  }

  readString(v: JSON.Value, field: string): string | null {
    if (v.type != JSON.Types.String) {
      this.refuse(field, "must be a string, got " + v.toString());
      return null;
    }
    const s = v.get<string>();
    if (hasControlCharacter(s)) {
      this.refuse(field, "must not contain control characters");
      return null;
    }
    return s;
  }

  readBackups(v: JSON.Value, field: string): Backup[] | null {
    if (v.type != JSON.Types.Array) {
      this.refuse(field, "must be an array of backups, got " + v.toString());
      return null;
    }
    const list = v.get<JSON.Arr>();
    if (list.length == 0) {
      this.refuse(field, "must list at least one backup");
      return null;
    }
    const out = new Array<Backup>();
    for (let i = 0; i < list.length; i++) {
      const backup = this.readBackup(list.at(i), field + "[" + i.toString() + "]");
      if (backup == null) return null;
      out.push(backup);
    }
    return out;
  }

  readBackup(v: JSON.Value, field: string): Backup | null {
    if (v.type != JSON.Types.Object) {
      this.refuse(field, "must be an object like {\"service\": \"cluster\", \"model\": \"name\"}, got " + v.toString());
      return null;
    }
    const obj = v.get<JSON.Obj>();
    if (!this.checkKeys(obj, BACKUP_KEYS, field + ".")) return null;
    const backup = new Backup();
    backup.credentialHeaders = this.credentialHeaders;
    if (!obj.has("service")) {
      this.refuse(field + ".service", "required: the name of an Envoy cluster");
      return null;
    }
    const service = this.readString(obj.get("service")!, field + ".service");
    if (service == null) return null;
    if (service.length == 0) {
      this.refuse(field + ".service", "must not be empty");
      return null;
    }
    backup.service = service;
    backup.serviceBytes = String.UTF8.encode(service);
    backup.serviceLabel = utf8ByteString(service);
    if (obj.has("model") && obj.get("model")!.type != JSON.Types.Null) {
      const model = this.readString(obj.get("model")!, field + ".model");
      if (model == null) return null;
      if (model.length > 0 && model != PASS_THROUGH) {
        backup.model = model;
        backup.modelLabel = utf8ByteString(model);
        backup.modelLiteral = jsonStringLiteral(model);
      }
    }
    if (obj.has("timeout")) {
      const n = this.readInteger(obj.get("timeout")!, field + ".timeout", 1, 2147483647, Unit.Milliseconds);
      if (n < 0) return null;
      backup.timeoutMs = <u32>n;
    }
    if (obj.has("path")) {
      const path = this.readString(obj.get("path")!, field + ".path");
      if (path == null) return null;
      if (!path.startsWith("/")) {
        this.refuse(field + ".path", "must start with \"/\", got \"" + path + "\"");
        return null;
      }
      const bad = firstInvalidUriChar(path, false);
      if (bad >= 0) {
        this.refuse(field + ".path", "must be a URL path (and query), percent-encoded: " + describeChar(path, bad) +
          " at character " + bad.toString() + " is not allowed");
        return null;
      }
      backup.path = utf8ByteString(path);
    }
    if (obj.has("authority")) {
      const authority = this.readString(obj.get("authority")!, field + ".authority");
      if (authority == null) return null;
      if (authority.length == 0) {
        this.refuse(field + ".authority", "must not be empty");
        return null;
      }
      const bad = firstInvalidUriChar(authority, true);
      if (bad >= 0) {
        this.refuse(field + ".authority", "must be a host or host:port: " + describeChar(authority, bad) +
          " at character " + bad.toString() + " is not allowed");
        return null;
      }
      backup.authority = utf8ByteString(authority);
    }
    if (obj.has("headers")) {
      if (!this.readHeaders(obj.get("headers")!, field + ".headers", backup)) return null;
    }
    if (obj.has("dropHeaders")) {
      const names = this.readHeaderNames(obj.get("dropHeaders")!, field + ".dropHeaders");
      if (names == null) return null;
      backup.dropHeaders = names;
    }
    return backup;
  }

  readHeaders(v: JSON.Value, field: string, backup: Backup): bool {
    if (v.type != JSON.Types.Object) {
      return this.refuse(field, "must be an object of header name -> string value, got " + v.toString());
    }
    const obj = v.get<JSON.Obj>();
    const names = obj.keys();
    for (let i = 0; i < names.length; i++) {
      const name = asciiLower(names[i]);
      if (!isHeaderName(name) && !name.startsWith(":")) {
        return this.refuse(field + "." + keyAsWritten(names[i]), "not a valid header name");
      }
      if (isReservedHeader(name)) {
        return this.refuse(field + "." + keyAsWritten(names[i]), "this header cannot be set (pseudo-headers, host and framing belong to the filter; use path/authority)");
      }
      const value = this.readString(obj.get(names[i])!, field + "." + keyAsWritten(names[i]));
      if (value == null) return false;
      // Envoy would trim such whitespace, so the value sent would differ from the one configured.
      if (value.length > 0 && (isWhitespace(value.charCodeAt(0)) || isWhitespace(value.charCodeAt(value.length - 1)))) {
        return this.refuse(field + "." + keyAsWritten(names[i]), "must not begin or end with whitespace");
      }
      backup.headers.push(new Header(utf8ByteString(name), utf8ByteString(value)));
      if (backup.isCredentialHeader(name)) backup.replacesCredentials = true;
    }
    return true;
  }

  readStatuses(v: JSON.Value, field: string): StatusSet | null {
    return this.readStatusList(v, field, true,
      "must be a non-empty array of status codes (400..599) or classes \"4xx\"/\"5xx\", got ");
  }

  /** A `_match_*_` list of `obj` (absent = empty); empty strings are left out, as Higress's SDK does. */
  readMatchList(obj: JSON.Obj, key: string, field: string): string[] | null {
    if (!obj.has(key)) return new Array<string>();
    const list = this.readStringList(obj.get(key)!, field + "." + key);
    if (list == null) return null;
    const out = new Array<string>();
    for (let i = 0; i < list.length; i++) if (list[i].length > 0) out.push(list[i]);
    return out;
  }

  /**
   * Gateway statuses: explicit codes only (a class would slip 401/403 in). Listing 401 or 403 is
   * allowed but logged as a warning: requests the gateway refused will then reach the backups.
   */
  readGatewayStatuses(v: JSON.Value, field: string): StatusSet | null {
    const set = this.readStatusList(v, field, false,
      "must be an array of status codes 400..599 (no classes: each code is a deliberate choice), got ");
    if (set == null) return null;
    for (let code = 401; code <= 403; code += 2) {
      if (set.has(code)) {
        this.warnings.push(field + " lists " + code.toString() + ": requests the gateway refused (authentication or " +
          "authorisation) will be replayed to the backups with their credentials");
      }
    }
    return set;
  }

  /**
   * A list of statuses 400..599, as numbers or their text; `withClasses`: also "4xx"/"5xx", and the
   * list must not be empty (an empty gateway list is a deliberate "none").
   */
  private readStatusList(v: JSON.Value, field: string, withClasses: bool, why: string): StatusSet | null {
    if (v.type != JSON.Types.Array || (withClasses && v.get<JSON.Arr>().length == 0)) {
      this.refuse(field, why + v.toString());
      return null;
    }
    const list = v.get<JSON.Arr>();
    const set = new StatusSet();
    for (let i = 0; i < list.length; i++) {
      const item = list.at(i);
      if (!addStatusItem(set, item, withClasses)) {
        this.refuse(field + "[" + i.toString() + "]", why + item.toString());
        return null;
      }
    }
    return set;
  }

  /** HTTP methods: upper-case tokens (methods are case-sensitive). */
  readMethods(v: JSON.Value, field: string): string[] | null {
    const methods = this.readStringList(v, field);
    if (methods == null) return null;
    if (methods.length == 0) {
      this.refuse(field, "must list at least one method, e.g. [\"POST\"]");
      return null;
    }
    for (let i = 0; i < methods.length; i++) {
      const m = methods[i];
      let ok = m.length > 0;
      for (let k = 0; k < m.length; k++) {
        const c = m.charCodeAt(k);
        if (!((c >= 0x41 && c <= 0x5a) || c == 0x2d || c == 0x5f)) ok = false;
      }
      if (!ok) {
        this.refuse(field + "[" + i.toString() + "]", "must be an upper-case HTTP method such as \"POST\", got \"" + m + "\"");
        return null;
      }
    }
    return methods;
  }

  readStringList(v: JSON.Value, field: string): string[] | null {
    if (v.type != JSON.Types.Array) {
      this.refuse(field, "must be an array of strings, got " + v.toString());
      return null;
    }
    const list = v.get<JSON.Arr>();
    const out = new Array<string>();
    for (let i = 0; i < list.length; i++) {
      const s = this.readString(list.at(i), field + "[" + i.toString() + "]");
      if (s == null) return null;
      out.push(s);
    }
    return out;
  }

  readRule(v: JSON.Value, field: string, global: Policy): Rule | null {
    if (v.type != JSON.Types.Object) {
      this.refuse(field, "must be an object with " + MATCH_KEYS_TEXT + ", got " + v.toString());
      return null;
    }
    const obj = v.get<JSON.Obj>();
    if (!this.checkKeys(obj, RULE_KEYS.concat(POLICY_KEYS).concat([PLUGIN_ID_KEY]), field + ".")) return null;
    const rule = new Rule();
    const match = rule.match;
    const routes = this.readMatchList(obj, "_match_route_", field);
    if (routes == null) return null;
    const domains = this.readMatchList(obj, "_match_domain_", field);
    if (domains == null) return null;
    const services = this.readMatchList(obj, "_match_service_", field);
    if (services == null) return null;
    const routePrefixes = this.readMatchList(obj, "_match_route_prefix_", field);
    if (routePrefixes == null) return null;
    match.routes = routes;
    for (let i = 0; i < domains.length; i++) match.domains.push(DomainPattern.parse(domains[i]));
    match.services = services;
    match.routePrefixes = routePrefixes;
    if (!match.decideKind()) {
      this.refuse(field, "needs a non-empty " + MATCH_KEYS_TEXT);
      return null;
    }
    // A rule starts from the global policy; the fields it sets override it.
    rule.policy = global.copy();
    if (!this.readPolicy(obj, field + ".", rule.policy, false)) return null;
    if (rule.policy.backups.length == 0) {
      this.refuse(field + ".backups", "required: neither this rule nor the global configuration lists backups");
      return null;
    }
    return rule;
  }
}

/** Adds one status item (a code 400..599, or its text; with `withClasses` also "4xx"/"5xx"); false when it is none. */
function addStatusItem(set: StatusSet, item: JSON.Value, withClasses: bool): bool {
  if (isNumber(item)) {
    const f = item.get<f64>();
    if (f != Math.floor(f) || f < 400 || f > 599) return false;
    set.add(<i32>f);
    return true;
  }
  if (item.type != JSON.Types.String) return false;
  const text = item.get<string>();
  // A class's second character is 'x' or 'X'.
  if (!withClasses && (text.length != 3 || text.charCodeAt(1) == 0x78 || text.charCodeAt(1) == 0x58)) return false;
  return set.addText(text);
}
