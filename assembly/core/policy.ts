// Which primary response triggers a fallback, and why. Pure.
import { Policy } from "./config/config";

/** The `details` of every local reply this filter sends; how it recognises its own replies. */
export const OWN_REPLY_DETAILS = "ai_fallback";

/**
 * The `details` of the primary guard's local reply for a headers-only error (upstream/guard_stream.ts):
 * the model service's own answer with a body added, so it counts as the model service's. Only code
 * in the gateway sets response details: neither a client nor a model service can forge it.
 */
export const GUARD_REPLY_DETAILS = "ai_fallback_guard{headers_only_error}";

/**
 * The `details` of the primary guard's reply for a request the dispatch filter asked it to keep from a
 * cooling primary (host/cooldown_store.ts): it runs after every filter before the router, so only a
 * request the gateway let through is answered this way.
 */
export const GUARD_COOLING_DETAILS = "ai_fallback_guard{cooling}";

/** A skipped cooling service's attempt result (`primary;result=cooling`), and the trigger when the primary was skipped. */
export const RESULT_COOLING = "cooling";

export const enum Origin {
  /** The model service answered (response.code_details = via_upstream). */
  Backend = 0,
  /** Envoy's router answered for an unreachable or failing backend (connect failure, reset, timeout...). */
  UpstreamFailure = 1,
  /** Another filter answered (rate limiter, guardrail...), or an answer no one named (no details). */
  Intercepted = 2,
  /** This filter's own local reply. */
  OwnReply = 3,
  /** The gateway answered without routing at all: no route matched, or a direct_response route. */
  NotRouted = 4,
  /** An authentication or authorisation filter refused the request (ext_authz, rbac, jwt_authn...). */
  Refused = 5,
  /** The primary guard kept the request from the cooling primary (GUARD_COOLING_DETAILS). */
  Cooling = 6,
}

export const enum Verdict {
  PassThrough = 0,
  Fallback = 1,
  /** A gateway reply that does not trigger (see gatewayDeclineReason). */
  InterceptedPassThrough = 2,
}

// response.code_details of Envoy's own replies that never reached a route's backend (Envoy 1.40's
// StreamInfo::ResponseCodeDetails; the e2e tests pin them).
const ROUTE_NOT_FOUND = "route_not_found";
const DIRECT_RESPONSE = "direct_response";
// Detail prefixes of Envoy's authentication and authorisation filters: their replies are refusals.
const REFUSAL_PREFIXES = ["ext_authz", "rbac_access_denied", "jwt_authn", "basic_auth", "api_key_auth", "oauth"];

/**
 * The router's own replies when it could not get an answer from the route's model service, each by
 * its exact name (Envoy's StreamInfo::ResponseCodeDetails, router.cc): its route timeout, a try's
 * timeouts, no healthy host (an ejected or unhealthy service), a missing cluster, maintenance mode,
 * the cluster's drop_overload. A reset before the response started is EARLY_RESET, alone or with
 * its reason in braces (`{connection_failure}`, `{overflow}` for a full connection pool or circuit
 * breaker, `{remote_reset}`, `{connection_termination}`, `{protocol_error}`, `{local_reset}`).
 */
const ROUTER_UPSTREAM_FAILURES = [
  "response_timeout", "upstream_per_try_timeout", "upstream_per_try_idle_timeout", "upstream_max_stream_duration_reached",
  "no_healthy_upstream", "cluster_not_found", "maintenance_mode", "drop_overload", "unconditional_drop_overload",
];
const EARLY_RESET = "upstream_reset_before_response_started";

function isRefusal(details: string): bool {
  for (let i = 0; i < REFUSAL_PREFIXES.length; i++) {
    if (details.startsWith(REFUSAL_PREFIXES[i])) return true;
  }
  return false;
}

function isRouterUpstreamFailure(details: string): bool {
  if (ROUTER_UPSTREAM_FAILURES.includes(details)) return true;
  if (!details.startsWith(EARLY_RESET)) return false;
  return details.length == EARLY_RESET.length || details.charCodeAt(EARLY_RESET.length) == 0x7b; // "{"
}

/**
 * Where a response came from, by Envoy's response.code_details (null when Envoy gave none). Decided
 * positively: an answer is the model service's only when Envoy says it came from upstream
 * (`via_upstream`), it is one of the router's named upstream-failure replies, or it carries the
 * primary guard's marker. Anything else is the gateway's, whatever its details, and no details at
 * all too: a neighbour's local reply often carries none (the Rust and Go proxy-wasm SDKs send none,
 * an ext_proc immediate response may not), and taking it for the backend's would replay a request
 * the gateway refused.
 */
export function classifyOrigin(codeDetails: string | null): Origin {
  if (codeDetails === null) return Origin.Intercepted;
  const d = codeDetails;
  if (d == "via_upstream" || d == GUARD_REPLY_DETAILS) return Origin.Backend;
  if (d == GUARD_COOLING_DETAILS) return Origin.Cooling;
  if (isRouterUpstreamFailure(d)) return Origin.UpstreamFailure;
  if (d.startsWith(OWN_REPLY_DETAILS)) return Origin.OwnReply;
  if (d == ROUTE_NOT_FOUND || d == DIRECT_RESPONSE) return Origin.NotRouted;
  if (isRefusal(d)) return Origin.Refused;
  return Origin.Intercepted;
}

export function decide(policy: Policy, status: i32, origin: Origin): Verdict {
  if (origin == Origin.OwnReply) return Verdict.PassThrough;
  // The request passed every filter and was kept from a primary known to be down.
  if (origin == Origin.Cooling) return Verdict.Fallback;
  // An unreachable or failing model service is what fallback is for.
  if (origin == Origin.UpstreamFailure) return status >= 400 ? Verdict.Fallback : Verdict.PassThrough;
  if (origin == Origin.Backend) return policy.triggerStatuses.has(status) ? Verdict.Fallback : Verdict.PassThrough;
  // A reply of the gateway itself: the request never reached the model service.
  if (status < 400) return Verdict.PassThrough;
  return gatewayReplyTriggers(policy, status, origin) ? Verdict.Fallback : Verdict.InterceptedPassThrough;
}

/**
 * A gateway reply triggers only when the operator allowed it (backendErrorsOnly off) and it says
 * "busy, try elsewhere" (gatewayTriggerStatuses). A request the gateway did not route is never
 * replayed, and one it refused only for an explicitly listed 401/403: a refusal answered with any
 * other status (ext_authz failing closed with 503) was not authorised, so it is not replayed.
 */
function gatewayReplyTriggers(policy: Policy, status: i32, origin: Origin): bool {
  if (policy.backendErrorsOnly || origin == Origin.NotRouted) return false;
  if (!policy.gatewayTriggerStatuses.has(status)) return false;
  return origin != Origin.Refused || status == 401 || status == 403;
}

/** Why a gateway reply (an InterceptedPassThrough verdict) was not replayed, for the log. */
export function gatewayDeclineReason(policy: Policy, status: i32, origin: Origin): string {
  if (origin == Origin.NotRouted) return "the gateway answered without a route to the model service: never replayed";
  if (policy.backendErrorsOnly) return "a gateway reply, not the model service's (backendErrorsOnly is on)";
  if (!policy.gatewayTriggerStatuses.has(status)) return "a gateway reply whose status is not in gatewayTriggerStatuses";
  return "an authorisation refusal with a status other than 401/403: the request was not authorised, so it is not replayed";
}

/** What started a fallback. */
export const enum TriggerKind {
  /** The model service answered with a triggering status. */
  Status = 0,
  /** Envoy's router could not get an answer from the model service. */
  UpstreamFailure = 1,
  /** Another filter's reply (with backendErrorsOnly off). */
  Intercepted = 2,
  /** A streaming primary's first packet was late. */
  FirstPacketTimeout = 3,
  /** A streaming 2xx's first event was an error (firstPacket "content"). */
  StreamError = 4,
  /** The primary cools (a service known to be down): it was skipped. */
  Cooling = 5,
}

export function triggerKindOf(origin: Origin): TriggerKind {
  if (origin == Origin.UpstreamFailure) return TriggerKind.UpstreamFailure;
  if (origin == Origin.Backend) return TriggerKind.Status;
  if (origin == Origin.Cooling) return TriggerKind.Cooling;
  return TriggerKind.Intercepted;
}

/** The trigger's name as operators read it in logs, headers and metrics. */
export function triggerKindName(kind: TriggerKind): string {
  switch (kind) {
    case TriggerKind.UpstreamFailure: return "upstream_failure";
    case TriggerKind.Intercepted: return "intercepted";
    case TriggerKind.FirstPacketTimeout: return "first_packet_timeout";
    case TriggerKind.StreamError: return "stream_error";
    case TriggerKind.Cooling: return RESULT_COOLING;
    default: return "status";
  }
}

/** Whether a backup's answer is the success the client should get. */
export function isBackupSuccess(status: i32): bool {
  return status >= 200 && status < 300;
}

/**
 * Whether a model service's error answer could be decided otherwise by its meaning (its body's
 * error code or type): only then is the body read. Only a client error says something of the
 * request (refused content, too long a prompt): a 5xx or a 429 falls back by its status, as before,
 * and its body is never read. `statusTriggers`: its status is in triggerStatuses.
 */
export function meaningMayMatter(status: i32, statusTriggers: bool, neverTrigger: string[], alwaysTrigger: string[]): bool {
  if (!isMeaningStatus(status)) return false;
  return statusTriggers ? neverTrigger.length > 0 : alwaysTrigger.length > 0;
}

/** A status whose error body may be read for its meaning: a 4xx other than 429. */
export function isMeaningStatus(status: i32): bool {
  return status >= 400 && status <= 499 && status != 429;
}

/** A model service's error answer, decided with its meaning. */
export class MeaningVerdict {
  /** `code`: the error code that decided ("" = the status did). */
  constructor(public fallback: bool, public code: string) {}

  /** A refusal the client gets unreplayed: an error in neverTrigger stopped a fallback its status would start. */
  get neverTriggered(): bool {
    return !this.fallback && this.code.length > 0;
  }
}

/**
 * neverTrigger first (a refusal is never replayed, even if another of its codes is in alwaysTrigger),
 * then alwaysTrigger, then the status.
 */
export function decideByMeaning(statusTriggers: bool, meanings: string[], neverTrigger: string[], alwaysTrigger: string[]): MeaningVerdict {
  for (let i = 0; i < meanings.length; i++) {
    if (neverTrigger.includes(meanings[i])) return new MeaningVerdict(false, statusTriggers ? meanings[i] : "");
  }
  if (statusTriggers) return new MeaningVerdict(true, "");
  for (let i = 0; i < meanings.length; i++) {
    if (alwaysTrigger.includes(meanings[i])) return new MeaningVerdict(true, meanings[i]);
  }
  return new MeaningVerdict(false, "");
}

/** The report of a refusal passed through unreplayed (header x-ai-fallback-declined, and the log). */
export function neverTriggerReport(code: string): string {
  return "never_trigger=" + code;
}
