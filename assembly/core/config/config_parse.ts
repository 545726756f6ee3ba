// Parsing entry points: the plugin configuration (dispatch mode, the streamed role), one backup entry,
// and the streamed mode's per-cluster upstream configuration. Pure.
import { JSON } from "./json_value";
import { firstInvalidUtf8 } from "../bytes";
import { firstJsonError } from "../json_scan";
import { STRING_VALUE_HINT, Unit, notJsonWhy } from "./config_messages";
import {
  BackupResult, Config, ConfigResult, MAX_KEPT_BYTES_PER_WORKER, ServicesConfig, ServicesConfigResult, UpstreamConfig, UpstreamConfigResult,
} from "./config";
import { escapeControls, startsWithObject } from "./config_checks";
import { ConfigReader } from "./config_reader";
import { retryMarkFieldWhy } from "../retry_mark";
import { POLICY_KEYS, readPolicy } from "./policy_reader";
import { readBackup } from "./backups_reader";
import { ErrorTriggerLists, readErrorTriggerLists, readMethods, readStatuses } from "./triggers_reader";
import { PLUGIN_ID_KEY, readRule } from "./rules_reader";
import { readHedge } from "./hedge_reader";
import { readCooldown } from "./cooldown_reader";
import { readRetry } from "./retry_reader";

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
  const parser = new ConfigReader();
  const config = new Config();
  const known = POLICY_KEYS.concat(["_rules_", "maxKeptBytesPerWorker", "credentialHeaders", "hedge", "cooldown", PLUGIN_ID_KEY]);
  if (!parser.checkKeys(obj, known, "")) return fail(parser.error);
  // Before the backups: a backup whose headers name one of them brings its own credential.
  if (!parser.readCredentialHeaders(obj)) return fail(parser.error);
  if (obj.has("maxKeptBytesPerWorker")) {
    const n = parser.readInteger(obj.get("maxKeptBytesPerWorker")!, "maxKeptBytesPerWorker", 1, MAX_KEPT_BYTES_PER_WORKER, Unit.Bytes);
    if (n < 0) return fail(parser.error);
    config.maxKeptBytesPerWorker = <u32>n;
  }
  if (obj.has("cooldown")) {
    config.cooldown = readCooldown(parser, obj.get("cooldown")!, "cooldown");
    if (config.cooldown === null) return fail(parser.error);
  }
  if (!readPolicy(parser, obj, "", config.global, !obj.has("_rules_"))) return fail(parser.error);
  // Top level only (after firstPacketTimeout, which it needs); rules inherit it with the global policy.
  if (!readHedge(parser, obj, config.global)) return fail(parser.error);
  if (obj.has("_rules_")) {
    const rules = obj.get("_rules_")!;
    if (rules.type != JSON.Types.Array) return fail("_rules_: must be an array, got " + rules.toString());
    const list = rules.get<JSON.Arr>();
    for (let i = 0; i < list.length; i++) {
      const rule = readRule(parser, list.at(i), "_rules_[" + i.toString() + "]", config.global);
      if (rule == null) return fail(parser.error);
      config.rules.push(rule);
      if (rule.match.needsService) config.matchesServices = true;
    }
  }
  const result = new ConfigResult(config, "");
  result.warnings = parser.warnings;
  return result;
}

function fail(message: string): ConfigResult {
  return new ConfigResult(null, escapeControls(message));
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
  const parser = new ConfigReader();
  const backup = readBackup(parser, root, field);
  return backup == null ? new BackupResult(null, parser.error) : new BackupResult(backup, "");
}

function upstreamFailure(parser: ConfigReader): UpstreamConfigResult {
  return new UpstreamConfigResult(null, parser.error);
}

const UPSTREAM_KEYS = [
  "attempt", "attempts", "triggerStatuses", "neverTrigger", "alwaysTrigger", "hideTopology", "methods", "retryingRouteOnly", "holdsRequestHeaders", "retryMark", "primaryFilter", "credentialHeaders", "earlierBackupHeaders", "backup", "cooldown",
  "retry", "retryClusters",
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
  const parser = new ConfigReader();
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
    const set = readStatuses(parser, obj.get("triggerStatuses")!, "triggerStatuses");
    if (set == null) return upstreamFailure(parser);
    config.triggerStatuses = set;
  }
  const lists = readErrorTriggerLists(parser, obj, "", new ErrorTriggerLists(config.neverTrigger, config.alwaysTrigger));
  if (lists == null) return upstreamFailure(parser);
  config.neverTrigger = lists.neverTrigger;
  config.alwaysTrigger = lists.alwaysTrigger;
  if (obj.has("hideTopology")) {
    const v = obj.get("hideTopology")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "hideTopology: must be true or false, got " + v.toString());
    config.hideTopology = v.get<bool>();
  }
  if (obj.has("methods")) {
    const methods = readMethods(parser, obj.get("methods")!, "methods");
    if (methods == null) return upstreamFailure(parser);
    config.methods = methods;
  }
  if (obj.has("retryingRouteOnly")) {
    const v = obj.get("retryingRouteOnly")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "retryingRouteOnly: must be true or false, got " + v.toString());
    config.retryingRouteOnly = v.get<bool>();
  }
  if (obj.has("holdsRequestHeaders")) {
    const v = obj.get("holdsRequestHeaders")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "holdsRequestHeaders: must be true or false, got " + v.toString());
    config.holdsRequestHeaders = v.get<bool>();
  }
  if (obj.has("retryMark")) {
    const v = obj.get("retryMark")!;
    const why = retryMarkFieldWhy(v);
    if (why.length > 0) return new UpstreamConfigResult(null, "retryMark: " + why);
    config.retryMark = v.get<string>();
  }
  if (obj.has("primaryFilter")) {
    const v = obj.get("primaryFilter")!;
    if (v.type != JSON.Types.Bool) return new UpstreamConfigResult(null, "primaryFilter: must be true or false, got " + v.toString());
    if (attempt == 1) return new UpstreamConfigResult(null, "primaryFilter: only on a backup's attempt (attempt > 1): it tells a backup whether the primary's cluster has this filter");
    config.primaryFilter = v.get<bool>();
  }
  if (obj.has("cooldown")) {
    config.cooldown = readCooldown(parser, obj.get("cooldown")!, "cooldown");
    if (config.cooldown === null) return upstreamFailure(parser);
    if (attempt == 1 && config.cooldown!.primary.length == 0) {
      return new UpstreamConfigResult(null, "cooldown.primary: required on attempt 1 (the primary): the primary's cluster name, which its cooldown is kept under");
    }
  }
  if (obj.has("retry") || obj.has("retryClusters")) {
    if (!obj.has("retry") || !obj.has("retryClusters")) {
      return new UpstreamConfigResult(null, "retry: needs retryClusters (every attempt's cluster name, in order), and retryClusters needs retry");
    }
    config.retry = readRetry(parser, obj.get("retry")!, "retry");
    if (config.retry === null) return upstreamFailure(parser);
    const names = readRetryClusters(obj.get("retryClusters")!, config.attempts);
    if (names == null) return new UpstreamConfigResult(null, "retryClusters: must be an array of " + config.attempts.toString() + " cluster names (one per attempt, in order)");
    config.retryClusters = names;
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
    config.backup = readBackup(parser, obj.get("backup")!, "backup");
    if (config.backup == null) return upstreamFailure(parser);
  }
  return new UpstreamConfigResult(config, "");
}


/** `retryClusters`: `attempts` non-empty strings, or null. */
function readRetryClusters(v: JSON.Value, attempts: i32): string[] | null {
  if (v.type != JSON.Types.Array) return null;
  const list = v.get<JSON.Arr>();
  if (list.length != attempts) return null;
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list.at(i);
    if (item.type != JSON.Types.String || item.get<string>().length == 0) return null;
    out.push(item.get<string>());
  }
  return out;
}

const SERVICES_KEYS = ["services", "hedge"];

/** Whether an upstream configuration is the one-cluster form, `{"services": {...}}` (else the per-attempt form). */
export function isServicesConfig(bytes: ArrayBuffer): bool {
  if (bytes.byteLength == 0 || firstJsonError(changetype<usize>(bytes), bytes.byteLength) >= 0) return false;
  if (firstInvalidUtf8(changetype<usize>(bytes), bytes.byteLength) >= 0 || !startsWithObject(bytes)) return false;
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes));
  return root.type == JSON.Types.Object && root.get<JSON.Obj>().has("services");
}

/**
 * Parses the one-cluster form `{"services": {"<name>": {<an attempt's configuration>}, ...}, "hedge": true}`:
 * each service's entry as parseUpstreamConfig reads it (errors name `services.<name>.<field>`).
 */
export function parseServicesConfig(bytes: ArrayBuffer): ServicesConfigResult {
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes));
  const obj = root.get<JSON.Obj>();
  const parser = new ConfigReader();
  if (!parser.checkKeys(obj, SERVICES_KEYS, "")) return new ServicesConfigResult(null, parser.error);
  let hedge = false;
  if (obj.has("hedge")) {
    const v = obj.get("hedge")!;
    if (v.type != JSON.Types.Bool) return new ServicesConfigResult(null, "hedge: must be true or false, got " + v.toString());
    hedge = v.get<bool>();
  }
  const services = obj.get("services")!;
  if (services.type != JSON.Types.Object) {
    return new ServicesConfigResult(null, "services: must be an object of service name -> that service's attempt configuration, got " + services.toString());
  }
  const list = services.get<JSON.Obj>();
  const names = list.keys();
  if (names.length == 0) return new ServicesConfigResult(null, "services: must name at least the primary, e.g. {\"primary\": {\"attempt\": 1}}");
  const out = new ServicesConfig();
  for (let i = 0; i < names.length; i++) {
    const result = parseUpstreamConfig(String.UTF8.encode(list.get(names[i])!.toString()));
    if (result.config == null) return new ServicesConfigResult(null, "services." + names[i] + "." + result.error);
    result.config!.hedge = hedge;
    out.names.push(names[i]);
    out.configs.push(result.config!);
  }
  return new ServicesConfigResult(out, "");
}
