// The streamed mode's answer for a backup attempt its filter will not send: the body's model could not
// be rewritten for the backup's override (or the VM's budget had no room to rewrite it). Envoy's router
// takes an upstream filter's local reply as the attempt's answer: with a status it retries, it goes on
// to the next backup; on the last attempt, the client gets this reply. Pure.
import { UpstreamConfig } from "../core/config/config";
import { byteStringToBuffer, jsonQuote } from "../core/bytes";

/** The local reply's response code details (Envoy's access log %RESPONSE_CODE_DETAILS%). */
export const SKIPPED_REPLY_DETAILS = "ai_fallback_skipped";

/** The status the client gets when the last attempt was skipped (the dispatch mode's own error is a 502 too). */
const SKIPPED_STATUS = 502;

/**
 * The status of the skip's local reply: one the router retries (in triggerStatuses) while backups
 * remain, 502 when possible; 502 on the last attempt.
 */
export function skippedReplyStatus(config: UpstreamConfig): i32 {
  const statuses = config.triggerStatuses;
  if (config.attempt >= config.attempts || statuses.has(SKIPPED_STATUS)) return SKIPPED_STATUS;
  for (let s = 500; s < 600; s++) if (statuses.has(s)) return s;
  for (let s = 400; s < 500; s++) if (statuses.has(s)) return s;
  return SKIPPED_STATUS;
}

/** An OpenAI-style JSON error saying why the backup was not called (`why`: plain ASCII). */
export function skippedReplyBody(status: i32, why: string): ArrayBuffer {
  return byteStringToBuffer("{\"error\":{\"type\":\"ai_fallback_exhausted\",\"code\":" + status.toString() +
    ",\"message\":" + jsonQuote("no model service answered; the last backup was not called: " + why) + "}}");
}
