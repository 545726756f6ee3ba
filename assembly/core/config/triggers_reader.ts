// The trigger fields of a policy: which answers fall back (statuses, gateway statuses, origin),
// for which methods, and when a late first packet does. Pure.
import { JSON } from "./json_value";
import { StatusSet } from "../status_set";
import { Unit } from "./config_messages";
import { FirstPacket, Policy } from "./config";
import { addStatusItem } from "./config_checks";
import { ConfigReader } from "./config_reader";

/** Fills `policy`'s trigger fields present in `obj`; false after refusing. */
export function readTriggers(r: ConfigReader, obj: JSON.Obj, prefix: string, policy: Policy): bool {
  if (obj.has("backendErrorsOnly")) {
    const v = obj.get("backendErrorsOnly")!;
    if (v.type != JSON.Types.Bool) return r.refuse(prefix + "backendErrorsOnly", "must be true or false, got " + v.toString());
    policy.backendErrorsOnly = v.get<bool>();
  }
  if (obj.has("triggerStatuses")) {
    const set = readStatuses(r, obj.get("triggerStatuses")!, prefix + "triggerStatuses");
    if (set == null) return false;
    policy.triggerStatuses = set;
  }
  if (obj.has("gatewayTriggerStatuses")) {
    const set = readGatewayStatuses(r, obj.get("gatewayTriggerStatuses")!, prefix + "gatewayTriggerStatuses");
    if (set == null) return false;
    policy.gatewayTriggerStatuses = set;
  }
  if (obj.has("methods")) {
    const methods = readMethods(r, obj.get("methods")!, prefix + "methods");
    if (methods == null) return false;
    policy.methods = methods;
  }
  if (!readErrorTriggers(r, obj, prefix, policy)) return false;
  if (obj.has("firstPacketTimeout")) {
    const n = r.readInteger(obj.get("firstPacketTimeout")!, prefix + "firstPacketTimeout", 0, 2147483647, Unit.Milliseconds);
    if (n < 0) return false;
    policy.firstPacketTimeoutMs = <u32>n;
  }
  if (obj.has("streamIdleTimeout")) {
    const n = r.readInteger(obj.get("streamIdleTimeout")!, prefix + "streamIdleTimeout", 0, 2147483647, Unit.Milliseconds);
    if (n < 0) return false;
    policy.streamIdleTimeoutMs = <u32>n;
  }
  return readFirstPacket(r, obj, prefix, policy);
}

const FIRST_PACKET_WHY = "must be \"byte\" (any body byte), \"event\" (the first SSE line that is not a keep-alive comment " +
  "or blank) or \"content\" (the first SSE event that carries content: metadata events wait, an error event before it " +
  "falls back), got ";

/** firstPacket, or the older keepAliveIsNotFirstPacket (true is "event", false "byte"); not both. */
function readFirstPacket(r: ConfigReader, obj: JSON.Obj, prefix: string, policy: Policy): bool {
  if (obj.has("firstPacket")) {
    if (obj.has("keepAliveIsNotFirstPacket")) {
      return r.refuse(prefix + "keepAliveIsNotFirstPacket", "set firstPacket alone (keepAliveIsNotFirstPacket: true is " +
        "firstPacket \"event\", false is \"byte\")");
    }
    const v = obj.get("firstPacket")!;
    const name = v.type == JSON.Types.String ? v.get<string>() : "";
    if (name == "byte") policy.firstPacket = FirstPacket.Byte;
    else if (name == "event") policy.firstPacket = FirstPacket.Event;
    else if (name == "content") policy.firstPacket = FirstPacket.Content;
    else return r.refuse(prefix + "firstPacket", FIRST_PACKET_WHY + v.toString());
  } else if (obj.has("keepAliveIsNotFirstPacket")) {
    const v = obj.get("keepAliveIsNotFirstPacket")!;
    if (v.type != JSON.Types.Bool) return r.refuse(prefix + "keepAliveIsNotFirstPacket", "must be true or false, got " + v.toString());
    policy.firstPacket = v.get<bool>() ? FirstPacket.Event : FirstPacket.Byte;
  }
  return true;
}

/** The error-meaning lists, as either carries them: `neverTrigger` and `alwaysTrigger` (both modes). */
export class ErrorTriggerLists {
  constructor(public neverTrigger: string[], public alwaysTrigger: string[]) {}
}

/**
 * `neverTrigger` / `alwaysTrigger` of `obj` over `policy`'s (a rule's lists replace the global
 * ones); an error listed in both is refused: it could not both fall back and not.
 */
function readErrorTriggers(r: ConfigReader, obj: JSON.Obj, prefix: string, policy: Policy): bool {
  const lists = readErrorTriggerLists(r, obj, prefix, new ErrorTriggerLists(policy.neverTrigger, policy.alwaysTrigger));
  if (lists == null) return false;
  policy.neverTrigger = lists.neverTrigger;
  policy.alwaysTrigger = lists.alwaysTrigger;
  return true;
}

export function readErrorTriggerLists(r: ConfigReader, obj: JSON.Obj, prefix: string, base: ErrorTriggerLists): ErrorTriggerLists | null {
  const lists = new ErrorTriggerLists(base.neverTrigger, base.alwaysTrigger);
  if (obj.has("neverTrigger")) {
    const list = readErrorCodes(r, obj.get("neverTrigger")!, prefix + "neverTrigger");
    if (list == null) return null;
    lists.neverTrigger = list;
  }
  if (obj.has("alwaysTrigger")) {
    const list = readErrorCodes(r, obj.get("alwaysTrigger")!, prefix + "alwaysTrigger");
    if (list == null) return null;
    lists.alwaysTrigger = list;
  }
  const always = lists.alwaysTrigger;
  for (let i = 0; i < always.length; i++) {
    if (!lists.neverTrigger.includes(always[i])) continue;
    const inNever = obj.has("neverTrigger") ? "neverTrigger" : "neverTrigger (by default)";
    r.refuse(prefix + "alwaysTrigger[" + i.toString() + "]", "\"" + always[i] + "\" is also in " + inNever +
      ": an error cannot both fall back and not; list it in one of them only (set neverTrigger without it to let it fall back)");
    return null;
  }
  return lists;
}

/** An error code or type as a header value can carry it: visible ASCII, none of the report's separators. */
function isErrorCode(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c == 0x2c || c == 0x3b || c == 0x3d || c == 0x22 || c == 0x5c) return false;
  }
  return true;
}

/** A list of error codes/types (case-sensitive, as the model services send them); [] = none. */
export function readErrorCodes(r: ConfigReader, v: JSON.Value, field: string): string[] | null {
  if (v.type != JSON.Types.Array) {
    r.refuse(field, "must be an array of error codes or types as the model service sends them (case-sensitive), " +
      "e.g. [\"content_filter\", \"context_length_exceeded\"], or [] for none; got " + v.toString());
    return null;
  }
  const list = r.readStringList(v, field);
  if (list == null) return null;
  for (let i = 0; i < list.length; i++) {
    if (!isErrorCode(list[i])) {
      r.refuse(field + "[" + i.toString() + "]", "must be an error code or type as the model service sends it: visible ASCII " +
        "without spaces, commas, semicolons, '=', quotes or backslashes, e.g. \"content_filter\"; got \"" + list[i] + "\"");
      return null;
    }
  }
  return list;
}

export function readStatuses(r: ConfigReader, v: JSON.Value, field: string): StatusSet | null {
  return readStatusList(r, v, field, true,
    "must be a non-empty array of status codes (400..599) or classes \"4xx\"/\"5xx\", got ");
}

/**
 * Gateway statuses: explicit codes only (a class would slip 401/403 in). Listing 401 or 403 is
 * allowed but logged as a warning: requests the gateway refused will then reach the backups.
 */
export function readGatewayStatuses(r: ConfigReader, v: JSON.Value, field: string): StatusSet | null {
  const set = readStatusList(r, v, field, false,
    "must be an array of status codes 400..599 (no classes: each code is a deliberate choice), got ");
  if (set == null) return null;
  for (let code = 401; code <= 403; code += 2) {
    if (set.has(code)) {
      r.warnings.push(field + " lists " + code.toString() + ": requests the gateway refused (authentication or " +
        "authorisation) will be replayed to the backups with their credentials");
    }
  }
  return set;
}

/**
 * A list of statuses 400..599, as numbers or their text; `withClasses`: also "4xx"/"5xx", and the
 * list must not be empty (an empty gateway list is a deliberate "none").
 */
export function readStatusList(r: ConfigReader, v: JSON.Value, field: string, withClasses: bool, why: string): StatusSet | null {
  if (v.type != JSON.Types.Array || (withClasses && v.get<JSON.Arr>().length == 0)) {
    r.refuse(field, why + v.toString());
    return null;
  }
  const list = v.get<JSON.Arr>();
  const set = new StatusSet();
  for (let i = 0; i < list.length; i++) {
    const item = list.at(i);
    if (!addStatusItem(set, item, withClasses)) {
      r.refuse(field + "[" + i.toString() + "]", why + item.toString());
      return null;
    }
  }
  return set;
}

/** HTTP methods: upper-case tokens (methods are case-sensitive). */
export function readMethods(r: ConfigReader, v: JSON.Value, field: string): string[] | null {
  const methods = r.readStringList(v, field);
  if (methods == null) return null;
  if (methods.length == 0) {
    r.refuse(field, "must list at least one method, e.g. [\"POST\"]");
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
      r.refuse(field + "[" + i.toString() + "]", "must be an upper-case HTTP method such as \"POST\", got \"" + m + "\"");
      return null;
    }
  }
  return methods;
}
