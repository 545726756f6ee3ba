// The `cooldown` section: when a failing model service is skipped, for how long, and how much of a
// Retry-After is honoured (core/cooldown.ts). Pure.
import { JSON, keyAsWritten } from "./json_value";
import { Unit, unknownFieldWhy } from "./config_messages";
import { CooldownSettings } from "../cooldown";
import { ConfigReader } from "./config_reader";

export const COOLDOWN_KEYS = ["failures", "window", "duration", "maxRetryAfter", "primary"];

/** The section, or null after refusing (the caller reports r.error). */
export function readCooldown(r: ConfigReader, v: JSON.Value, field: string): CooldownSettings | null {
  if (v.type != JSON.Types.Object) {
    r.refuse(field, "must be an object like {\"failures\": 3, \"window\": 10000, \"duration\": 30000}, got " + v.toString());
    return null;
  }
  const obj = v.get<JSON.Obj>();
  const keys = obj.keys();
  for (let i = 0; i < keys.length; i++) {
    if (!COOLDOWN_KEYS.includes(keys[i])) {
      r.refuse(field + "." + keyAsWritten(keys[i]), unknownFieldWhy(keys[i], COOLDOWN_KEYS));
      return null;
    }
  }
  const settings = new CooldownSettings();
  if (obj.has("failures")) {
    const n = r.readInteger(obj.get("failures")!, field + ".failures", 1, 1_000_000);
    if (n < 0) return null;
    settings.failures = <i32>n;
  }
  if (obj.has("window")) {
    const n = r.readInteger(obj.get("window")!, field + ".window", 1, 2147483647, Unit.Milliseconds);
    if (n < 0) return null;
    settings.windowMs = <u32>n;
  }
  if (obj.has("duration")) {
    const n = r.readInteger(obj.get("duration")!, field + ".duration", 1, 2147483647, Unit.Milliseconds);
    if (n < 0) return null;
    settings.durationMs = <u32>n;
  }
  if (obj.has("maxRetryAfter")) {
    const n = r.readInteger(obj.get("maxRetryAfter")!, field + ".maxRetryAfter", 0, 2147483647, Unit.Milliseconds);
    if (n < 0) return null;
    settings.maxRetryAfterMs = <u32>n;
  }
  if (obj.has("primary")) {
    const name = r.readString(obj.get("primary")!, field + ".primary");
    if (name == null) return null;
    if (name.length == 0 || name.includes(" ")) {
      r.refuse(field + ".primary", "must be the primary's Envoy cluster name (no spaces), got \"" + name + "\"");
      return null;
    }
    settings.primary = name;
  }
  return settings;
}
