// The primary guard's configuration: `{"guard": {...}}` as the upstream role's configuration on
// the PRIMARY cluster (the backups' filters take a backup entry instead). Bytes in, an immutable
// GuardConfig or an error naming the field out. Pure.
import { JSON, keyAsWritten } from "../core/config/json_value";
import { firstInvalidUtf8 } from "../core/bytes";
import { DEFAULT_MAX_REQUEST_BODY_BYTES, FirstPacket, MAX_REQUEST_BODY_BYTES } from "../core/config/config";
import { startsWithObject } from "../core/config/config_checks";
import { firstJsonError } from "../core/json_scan";
import { Unit, integerWhy, unknownFieldWhy } from "../core/config/config_messages";
import { DEFAULT_RETRY_MARK, retryMarkFieldWhy } from "../core/retry_mark";

const GUARD_KEYS = ["holdFirstPacket", "replyToHeadersOnlyErrors", "maxRequestBodyBytes", "keepAliveIsNotFirstPacket", "firstPacket", "hedgedOnly", "retryMark"];

export class GuardConfig {
  /** A streaming request's 2xx headers wait for the response's first body byte. */
  holdFirstPacket: bool = true;
  /** A headers-only 4xx/5xx becomes a local reply with the same status and a body. */
  replyToHeadersOnlyErrors: bool = true;
  /**
   * No longer used (the guard scans no request body: the downstream role says which requests are
   * timed, first_packet_signal.ts); still accepted, so that a configuration that sets it loads, with a warning.
   */
  maxRequestBodyBytes: u32 = DEFAULT_MAX_REQUEST_BODY_BYTES;
  /**
   * What the guard holds the headers for, at least, for every timed request ("event": keep-alives
   * are held; keepAliveIsNotFirstPacket: true): the downstream role's firstPacket applies if it waits for more.
   */
  firstPacket: FirstPacket = FirstPacket.Byte;
  /**
   * Holds only requests the downstream role let race (`hedge`, first_packet_signal.ts): on the backups'
   * attempts, so that a racing backup's answer counts from its first content too.
   */
  hedgedOnly: bool = false;
  /** The value of the stream-error mark: the one the route retries on (core/retry_mark.ts). */
  retryMark: string = DEFAULT_RETRY_MARK;
}

export class GuardResult {
  /** Said at load, the configuration still applies. */
  warnings: string[] = [];
  /** `isGuard`: the configuration has a top-level "guard" (else it is a backup entry). */
  constructor(public isGuard: bool, public guard: GuardConfig | null, public error: string) {}
}

/** The warning for the field the guard no longer uses. */
export const UNUSED_MAX_REQUEST_BODY_BYTES = "guard.maxRequestBodyBytes is no longer used: the guard copies no request body, " +
  "it holds the responses the downstream role times (ai-fallback's own maxRequestBodyBytes decides which)";

function refuse(field: string, why: string): GuardResult {
  return new GuardResult(true, null, field + ": " + why);
}

/** Parses a guard configuration; `isGuard` is false (and no error) when `bytes` has no "guard" member. */
export function parseGuardConfig(bytes: ArrayBuffer): GuardResult {
  const base = changetype<usize>(bytes);
  // Anything not a well-formed JSON object is left to the backup entry's parser, which names it.
  if (bytes.byteLength == 0 || firstJsonError(base, bytes.byteLength) >= 0 || firstInvalidUtf8(base, bytes.byteLength) >= 0 ||
      !startsWithObject(bytes)) {
    return new GuardResult(false, null, "");
  }
  const root = JSON.parse<JSON.Value>(String.UTF8.decode(bytes)).get<JSON.Obj>();
  if (!root.has("guard")) return new GuardResult(false, null, "");
  const keys = root.keys();
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] != "guard") return refuse(keyAsWritten(keys[i]), "unknown field next to \"guard\" (a guard's configuration is {\"guard\": {...}} alone)");
  }
  const value = root.get("guard")!;
  if (value.type != JSON.Types.Object) return refuse("guard", "must be an object (known fields: " + GUARD_KEYS.join(", ") + "), got " + value.toString());
  const obj = value.get<JSON.Obj>();
  const fields = obj.keys();
  for (let i = 0; i < fields.length; i++) {
    if (!GUARD_KEYS.includes(fields[i])) return refuse("guard." + keyAsWritten(fields[i]), unknownFieldWhy(fields[i], GUARD_KEYS));
  }
  const guard = new GuardConfig();
  if (obj.has("holdFirstPacket")) {
    const v = obj.get("holdFirstPacket")!;
    if (v.type != JSON.Types.Bool) return refuse("guard.holdFirstPacket", "must be true or false, got " + v.toString());
    guard.holdFirstPacket = v.get<bool>();
  }
  if (obj.has("replyToHeadersOnlyErrors")) {
    const v = obj.get("replyToHeadersOnlyErrors")!;
    if (v.type != JSON.Types.Bool) return refuse("guard.replyToHeadersOnlyErrors", "must be true or false, got " + v.toString());
    guard.replyToHeadersOnlyErrors = v.get<bool>();
  }
  if (obj.has("keepAliveIsNotFirstPacket")) {
    const v = obj.get("keepAliveIsNotFirstPacket")!;
    if (v.type != JSON.Types.Bool) return refuse("guard.keepAliveIsNotFirstPacket", "must be true or false, got " + v.toString());
    if (obj.has("firstPacket")) return refuse("guard.keepAliveIsNotFirstPacket", "set firstPacket alone (keepAliveIsNotFirstPacket: true is firstPacket \"event\")");
    guard.firstPacket = v.get<bool>() ? FirstPacket.Event : FirstPacket.Byte;
  }
  if (obj.has("firstPacket")) {
    const v = obj.get("firstPacket")!;
    const name = v.type == JSON.Types.String ? v.get<string>() : "";
    if (name == "byte") guard.firstPacket = FirstPacket.Byte;
    else if (name == "event") guard.firstPacket = FirstPacket.Event;
    else if (name == "content") guard.firstPacket = FirstPacket.Content;
    else return refuse("guard.firstPacket", "must be \"byte\", \"event\" (keep-alives are held) or \"content\" (events without content are held), got " + v.toString());
  }
  if (obj.has("hedgedOnly")) {
    const v = obj.get("hedgedOnly")!;
    if (v.type != JSON.Types.Bool) return refuse("guard.hedgedOnly", "must be true or false, got " + v.toString());
    guard.hedgedOnly = v.get<bool>();
  }
  if (obj.has("retryMark")) {
    const v = obj.get("retryMark")!;
    const why = retryMarkFieldWhy(v);
    if (why.length > 0) return refuse("guard.retryMark", why);
    guard.retryMark = v.get<string>();
  }
  if (obj.has("maxRequestBodyBytes")) {
    const v = obj.get("maxRequestBodyBytes")!;
    const why = integerWhy(v, 1, MAX_REQUEST_BODY_BYTES, Unit.Bytes);
    if (v.type < JSON.Types.U8 || v.type > JSON.Types.F64) return refuse("guard.maxRequestBodyBytes", why);
    const f = v.get<f64>();
    if (f != Math.floor(f) || f < 1 || f > <f64>MAX_REQUEST_BODY_BYTES) return refuse("guard.maxRequestBodyBytes", why);
    guard.maxRequestBodyBytes = <u32>f;
  }
  const result = new GuardResult(true, guard, "");
  if (obj.has("maxRequestBodyBytes")) result.warnings.push(UNUSED_MAX_REQUEST_BODY_BYTES);
  return result;
}
