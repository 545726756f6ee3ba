// The value of the marks the streamed mode's attempt filters set on an answer the router should
// retry (x-ai-fallback-retry; the primary guard's x-ai-fallback-stream-error). Pure.
import { JSON } from "./config/json_value";

/**
 * The marks' value when a configuration names none (a hand-written one). The generator names one per
 * configuration (retryMark) and the route retries on that value alone, so that a model service's own
 * header of the same name (it never sees the value) is not taken for this filter's decision.
 */
export const DEFAULT_RETRY_MARK = "1";

/** The longest retryMark. */
export const MAX_RETRY_MARK_CHARS = 128;

/** Why `mark` cannot be a retry mark's value ("" = it can: 1..128 visible ASCII characters). */
export function retryMarkWhy(mark: string): string {
  if (mark.length == 0 || mark.length > MAX_RETRY_MARK_CHARS) return "must be 1 to " + MAX_RETRY_MARK_CHARS.toString() + " characters, got " + mark.length.toString();
  for (let i = 0; i < mark.length; i++) {
    const c = mark.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return "must be visible ASCII characters (a header value without spaces), got character " + c.toString() + " at " + i.toString();
  }
  return "";
}

/** Why the configuration's `retryMark` field `v` is refused ("" = it is a mark: `v.get<string>()`), with the fix. */
export function retryMarkFieldWhy(v: JSON.Value): string {
  const why = v.type == JSON.Types.String ? retryMarkWhy(v.get<string>()) : "must be a string, got " + v.toString();
  return why.length == 0 ? "" : why + " (the value the generated route retries on; leave it out for \"1\")";
}
