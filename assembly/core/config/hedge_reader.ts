// The top-level `hedge` field: race a slow primary instead of abandoning it. At firstPacketTimeout
// the next backup is started and the primary keeps going; whichever sends its first content first is
// served. `maxInFlight` bounds the requests per worker that may race at once (past it, the primary is
// abandoned at firstPacketTimeout as without `hedge`). Pure.
import { JSON } from "./json_value";
import { Policy } from "./config";
import { ConfigReader } from "./config_reader";

export const HEDGE_KEYS = ["maxInFlight"];
/** The most requests per worker a configuration may let race at once. */
export const MAX_HEDGES_IN_FLIGHT: i64 = 100000;

/** Reads `hedge` (if present) into `policy.hedgeMaxInFlight`; false after refusing. Needs firstPacketTimeout read first. */
export function readHedge(r: ConfigReader, obj: JSON.Obj, policy: Policy): bool {
  if (!obj.has("hedge")) return true;
  const v = obj.get("hedge")!;
  if (v.type != JSON.Types.Object) {
    return r.refuse("hedge", "must be an object such as {\"maxInFlight\": 10} (the most requests per worker racing a backup at once), got " + v.toString());
  }
  const hedge = v.get<JSON.Obj>();
  if (!r.checkKeys(hedge, HEDGE_KEYS, "hedge.")) return false;
  if (!hedge.has("maxInFlight")) {
    return r.refuse("hedge.maxInFlight", "required: the most requests per worker racing a backup at once, e.g. 10 (past it, a slow primary is abandoned as without hedge)");
  }
  const n = r.readInteger(hedge.get("maxInFlight")!, "hedge.maxInFlight", 1, MAX_HEDGES_IN_FLIGHT);
  if (n < 0) return false;
  if (policy.firstPacketTimeoutMs == 0) {
    return r.refuse("hedge", "needs firstPacketTimeout (the race starts when the primary's first packet is that late): set firstPacketTimeout, e.g. 2000, or remove hedge");
  }
  policy.hedgeMaxInFlight = <u32>n;
  return true;
}
