// How the upstream filter learns which service an attempt goes to in the one-cluster layout (the
// services are priority levels of one cluster; `hedge` needs it, as Envoy hedges within a cluster only).
// A property read at the request headers names the first attempt's endpoint on every later attempt
// (measured in Envoy 1.40), so the generator puts Envoy's header_mutation filter first in the
// cluster's upstream chain: it writes the endpoint's metadata `ai_fallback.service` into this header
// on every attempt, retry or hedge, replacing any client's value. This filter reads and removes it.
import { HeadersAction, LogLevel, MapType } from "../abi/enums";
import { getHeader, log, removeHeader, sendLocalResponse } from "../abi/hostcalls";
import { Header } from "../core/headers";
import { SKIPPED_REPLY_DETAILS } from "./skipped_attempt";

export const SERVICE_MARKER_HEADER = "x-ai-fallback-upstream-service";

/** The attempt's service as the marker names it (null: no marker), removed so that it never leaves. */
export function takeServiceMarker(): string | null {
  const name = getHeader(MapType.HttpRequestHeaders, SERVICE_MARKER_HEADER);
  if (name !== null) removeHeader(MapType.HttpRequestHeaders, SERVICE_MARKER_HEADER);
  return name;
}

/** The status of the answer to an attempt whose service the filter could not tell. */
const UNKNOWN_SERVICE_STATUS: u32 = 502;

/**
 * Fail closed, for an attempt whose marker (`name`) names no service this filter knows: none of the
 * client's credentials (`credentialHeaders`, cookie) go out, nor any backup's (the filter adds none),
 * and its body is emptied (onRequestBody), so its length goes too.
 */
export function sendNothingOfTheClient(name: string | null, credentialHeaders: string[]): void {
  log(LogLevel.Error, "streamed attempt: the request header " + SERVICE_MARKER_HEADER + " names " + (name === null ? "no service" : "an unknown service") +
    "; the attempt goes out without credentials or body and its answer is replaced by a 502 (the cluster's first upstream filter must be the " +
    "header_mutation that sets it from the endpoint's metadata ai_fallback.service: regenerate the configuration)");
  for (let i = 0; i < credentialHeaders.length; i++) removeHeader(MapType.HttpRequestHeaders, credentialHeaders[i]);
  removeHeader(MapType.HttpRequestHeaders, "cookie");
  removeHeader(MapType.HttpRequestHeaders, "content-length");
}

/** The answer to such an attempt: a 502 error, never the answer of an unnamed service. */
export function answerUnknownService(): HeadersAction {
  const body = String.UTF8.encode("{\"error\":{\"type\":\"ai_fallback_misconfigured\",\"code\":502,\"message\":\"the gateway could not tell which model service this attempt went to\"}}");
  const headers: Header[] = [new Header("content-type", "application/json")];
  sendLocalResponse(UNKNOWN_SERVICE_STATUS, SKIPPED_REPLY_DETAILS, changetype<usize>(body), body.byteLength, headers);
  return HeadersAction.StopIteration;
}
