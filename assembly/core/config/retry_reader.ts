// The `retry` section: a failure retried on the same model service, after a back-off or its short
// Retry-After, before the next service is tried (core/retry.ts). Pure.
import { JSON, keyAsWritten } from "./json_value";
import { Unit, unknownFieldWhy } from "./config_messages";
import { RetrySettings } from "../retry";
import { ConfigReader } from "./config_reader";

export const RETRY_KEYS = ["attempts", "backoff", "maxRetryAfter", "on"];
/** The most retries of one service a configuration may ask for (each one delays the next service). */
export const MAX_RETRY_ATTEMPTS: i64 = 10;
const RESET = "reset";
const EXAMPLE = "{\"attempts\": 1, \"backoff\": 100, \"maxRetryAfter\": 2000, \"on\": [500, 502, 503, 504, 429, \"reset\"]}";

/** The section, or null after refusing (the caller reports r.error). */
export function readRetry(r: ConfigReader, v: JSON.Value, field: string): RetrySettings | null {
  if (v.type != JSON.Types.Object) {
    r.refuse(field, "must be an object like " + EXAMPLE + ", got " + v.toString());
    return null;
  }
  const obj = v.get<JSON.Obj>();
  const keys = obj.keys();
  for (let i = 0; i < keys.length; i++) {
    if (!RETRY_KEYS.includes(keys[i])) {
      r.refuse(field + "." + keyAsWritten(keys[i]), unknownFieldWhy(keys[i], RETRY_KEYS));
      return null;
    }
  }
  const settings = new RetrySettings();
  if (obj.has("attempts")) {
    const n = r.readInteger(obj.get("attempts")!, field + ".attempts", 1, MAX_RETRY_ATTEMPTS);
    if (n < 0) return null;
    settings.attempts = <i32>n;
  }
  if (obj.has("backoff")) {
    const n = r.readInteger(obj.get("backoff")!, field + ".backoff", 0, 60000, Unit.Milliseconds);
    if (n < 0) return null;
    settings.backoffMs = <u32>n;
  }
  if (obj.has("maxRetryAfter")) {
    const n = r.readInteger(obj.get("maxRetryAfter")!, field + ".maxRetryAfter", 0, 60000, Unit.Milliseconds);
    if (n < 0) return null;
    settings.maxRetryAfterMs = <u32>n;
  }
  if (obj.has("on") && !readOn(r, obj.get("on")!, field + ".on", settings)) return null;
  return settings;
}

/** `on`: status codes 400..599 and "reset"; at least one. */
function readOn(r: ConfigReader, v: JSON.Value, field: string, settings: RetrySettings): bool {
  const why = "must be a non-empty array of status codes (400 to 599) and \"reset\" (no answer: a reset or a connect failure), e.g. [500, 502, 503, 504, 429, \"reset\"]";
  if (v.type != JSON.Types.Array) return r.refuse(field, why + ", got " + v.toString());
  const list = v.get<JSON.Arr>();
  if (list.length == 0) return r.refuse(field, why + ", got []; to retry nothing, remove retry");
  const statuses: i32[] = [];
  let onReset = false;
  for (let i = 0; i < list.length; i++) {
    const item = list.at(i);
    const at = field + "[" + i.toString() + "]";
    if (item.type == JSON.Types.String) {
      const s = item.get<string>();
      if (s == RESET) { onReset = true; continue; }
      if (s == "timeout") return r.refuse(at, "\"timeout\" is not retried: a slow service stays slow (the next service is tried at once); use \"reset\" or a status code");
      return r.refuse(at, why + ", got " + item.toString());
    }
    const n = r.readInteger(item, at, 400, 599);
    if (n < 0) return false;
    if (!statuses.includes(<i32>n)) statuses.push(<i32>n);
  }
  settings.statuses = statuses;
  settings.onReset = onReset;
  return true;
}
