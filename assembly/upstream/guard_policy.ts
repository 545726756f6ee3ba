// What the primary's guard does with the primary's response headers. Pure.
//
// A downstream filter gets no body callback to write a backup's answer into when the primary's
// response has no body to come (a headers-only error), and a 2xx's headers that reached it are a
// response that has started. The guard, an upstream filter on the primary's cluster, acts before
// either exists downstream: it holds a 2xx whose first packet is timed downstream until its first
// body byte (for the downstream filter, and for Envoy's per-try timeout, the primary has then not
// answered yet; first_packet_signal.ts says how it learns which requests are timed), and turns a
// headers-only error into a local reply with the same status and a body (an upstream filter's local
// reply is the downstream stream's, and runs through the whole downstream filter chain).
import { Header } from "../core/headers";
import { GuardConfig } from "./guard_config";

export const enum GuardStep {
  Continue = 0,
  /** Hold the 2xx headers until the first body byte (or trailers, or the end). */
  HoldUntilFirstByte = 1,
  /** Answer with a local reply of the same status whose body says what happened. */
  ReplyWithBody = 2,
}

/**
 * Whether the step needs the response's status: a headers-only response may be an error to answer,
 * and a response whose first packet is timed downstream may be a 2xx to hold. Any other response
 * passes whatever its status, so the guard's happy path reads none.
 */
export function guardNeedsStatus(guard: GuardConfig, timed: bool, endOfStream: bool): bool {
  return endOfStream ? guard.replyToHeadersOnlyErrors : timed && guard.holdFirstPacket;
}

/**
 * `timed`: the downstream role that times this request's first packet said so (a streaming request
 * with firstPacketTimeout; a response that comes before the request is complete is never timed).
 */
export function guardResponseHeaders(guard: GuardConfig, timed: bool, status: i32, endOfStream: bool): GuardStep {
  if (status >= 400 && status <= 599) {
    return endOfStream && guard.replyToHeadersOnlyErrors ? GuardStep.ReplyWithBody : GuardStep.Continue;
  }
  // A headers-only 2xx is complete: no first byte to wait for.
  if (status >= 200 && status < 300 && !endOfStream && timed && guard.holdFirstPacket) return GuardStep.HoldUntilFirstByte;
  return GuardStep.Continue;
}

/** The reply's body: an OpenAI-style error naming the status the model service sent without a body. */
export function guardReplyBody(status: i32): ArrayBuffer {
  return String.UTF8.encode("{\"error\":{\"message\":\"the model service answered " + status.toString() +
    " without a body\",\"type\":\"upstream_error\",\"code\":" + status.toString() + "}}");
}

/**
 * The primary's headers the reply keeps (retry-after, its own ids...): not the status, framing or
 * hop-by-hop headers, which Envoy writes for the reply itself.
 */
export function guardReplyHeaders(headers: Header[]): Header[] {
  const out = new Array<Header>();
  out.push(new Header("content-type", "application/json"));
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i].name;
    if (name.startsWith(":") || name == "content-length" || name == "content-type" || name == "transfer-encoding" ||
        name == "connection" || name == "keep-alive" || name == "upgrade" || name == "proxy-connection") continue;
    out.push(headers[i]);
  }
  return out;
}
