// The configuration's reader: walks the parsed JSON, section by section (policy, backups, headers,
// statuses, rules), and stops at the first problem with an error that names the field. Pure.
import { JSON, keyAsWritten } from "./json_value";
import { Header } from "./headers";
import { asciiLower, firstInvalidUtf8, utf8ByteString } from "./bytes";
import { firstJsonError } from "./json_scan";
import { jsonStringLiteral } from "./model_rewrite";
import { DomainPattern, RuleMatch, hostOf } from "./rule_match";
import { StatusSet } from "./status_set";
import { STRING_VALUE_HINT, Unit, integerWhy, notJsonWhy, unknownFieldWhy } from "./config_messages";
import { Backup, CREDENTIAL_HEADERS, DEFAULT_BACKUP_TIMEOUT_MS, DEFAULT_MAX_HELD_REQUEST_BYTES, MAX_REQUEST_BODY_BYTES, PASS_THROUGH, Policy, Rule } from "./config";
import { addStatusItem, describeChar, escapeControls, firstInvalidUriChar, hasControlCharacter, isHeaderName, isNumber, isReservedHeader, isWhitespace } from "./config_checks";

export const POLICY_KEYS = [
  "backups", "backendErrorsOnly", "triggerStatuses", "gatewayTriggerStatuses", "methods", "hideTopology",
  "maxRequestBodyBytes", "maxHeldRequestBytes", "firstPacketTimeout", "keepAliveIsNotFirstPacket", "fallbackDeadline",
];
export const BACKUP_KEYS = ["service", "model", "timeout", "path", "authority", "headers", "dropHeaders"];
export const RULE_KEYS = ["_match_route_", "_match_domain_", "_match_service_", "_match_route_prefix_"];
export const MATCH_KEYS_TEXT = "_match_route_, _match_domain_, _match_service_ or _match_route_prefix_";
// Added by Higress to a plugin's configuration to name it in logs; its SDK removes it before
// parsing (higress-group/wasm-go pkg/wrapper/plugin_wrapper.go, PluginIDKey). Ignored here.
export const PLUGIN_ID_KEY = "_plugin_id_";

/** Walks the parsed JSON; on the first problem it records `error` ("field: why") and returns false/null. */
export class Parser {
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

