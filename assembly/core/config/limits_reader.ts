// The limit fields of a policy: how much of a request body is kept, how long a request may be
// held, and how long the whole fallback may take. Pure.
import { JSON } from "./json_value";
import { Unit } from "./config_messages";
import { MAX_REQUEST_BODY_BYTES, Policy } from "./config";
import { ConfigReader } from "./config_reader";

/** Fills `policy`'s limit fields present in `obj`; false after refusing. */
export function readLimits(r: ConfigReader, obj: JSON.Obj, prefix: string, policy: Policy): bool {
  if (obj.has("maxRequestBodyBytes")) {
    const n = r.readInteger(obj.get("maxRequestBodyBytes")!, prefix + "maxRequestBodyBytes", 1, MAX_REQUEST_BODY_BYTES, Unit.Bytes);
    if (n < 0) return false;
    policy.maxRequestBodyBytes = <u32>n;
  }
  if (obj.has("maxHeldRequestBytes")) {
    const n = r.readInteger(obj.get("maxHeldRequestBytes")!, prefix + "maxHeldRequestBytes", 1, MAX_REQUEST_BODY_BYTES, Unit.Bytes);
    if (n < 0) return false;
    policy.maxHeldRequestBytes = <u32>n;
  }
  if (obj.has("fallbackDeadline")) {
    const n = r.readInteger(obj.get("fallbackDeadline")!, prefix + "fallbackDeadline", 1, 2147483647, Unit.Milliseconds);
    if (n < 0) return false;
    policy.fallbackDeadlineMs = <u32>n;
  }
  return true;
}
