// Which primary response triggers a fallback, and why. Pure.
import { Policy } from "./config";

/** The `details` of every local reply this filter sends; how it recognises its own replies. */
export const OWN_REPLY_DETAILS = "ai_fallback";

export const enum Origin {
  /** The model service answered (response.code_details = via_upstream). */
  Backend = 0,
  /** Envoy's router answered for an unreachable or failing backend (connect failure, reset, timeout...). */
  UpstreamFailure = 1,
  /** Another filter or a direct_response answered (rate limiter, authorisation...). */
  Intercepted = 2,
  /** This filter's own local reply. */
  OwnReply = 3,
}

export const enum Verdict {
  PassThrough = 0,
  Fallback = 1,
  /** An error the policy does not fall back on: intercepted while backendErrorsOnly is on. */
  InterceptedPassThrough = 2,
}

/** Where a response came from, by Envoy's response.code_details (null when Envoy gave none). */
export function classifyOrigin(codeDetails: string | null): Origin {
  if (codeDetails === null) return Origin.Backend;
  const d = codeDetails;
  if (d == "via_upstream" || d.length == 0) return Origin.Backend;
  if (d.startsWith(OWN_REPLY_DETAILS)) return Origin.OwnReply;
  // The router's replies when it could not get an answer from the backend (its route timeout is
  // "response_timeout", not an upstream_* detail).
  if (d.startsWith("upstream_") || d == "response_timeout" || d == "no_healthy_upstream" || d == "cluster_not_found" ||
      d == "maintenance_mode" || d.includes("overflow")) {
    return Origin.UpstreamFailure;
  }
  return Origin.Intercepted;
}

export function decide(policy: Policy, status: i32, origin: Origin): Verdict {
  if (origin == Origin.OwnReply) return Verdict.PassThrough;
  // An unreachable or failing model service is what fallback is for: it triggers whatever the
  // configured statuses say.
  if (origin == Origin.UpstreamFailure) return status >= 400 ? Verdict.Fallback : Verdict.PassThrough;
  if (!policy.triggerStatuses.has(status)) return Verdict.PassThrough;
  if (origin == Origin.Intercepted && policy.backendErrorsOnly) return Verdict.InterceptedPassThrough;
  return Verdict.Fallback;
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
}

export function triggerKindOf(origin: Origin): TriggerKind {
  if (origin == Origin.UpstreamFailure) return TriggerKind.UpstreamFailure;
  if (origin == Origin.Intercepted) return TriggerKind.Intercepted;
  return TriggerKind.Status;
}

/** The trigger's name as operators read it in logs, headers and metrics. */
export function triggerKindName(kind: TriggerKind): string {
  switch (kind) {
    case TriggerKind.UpstreamFailure: return "upstream_failure";
    case TriggerKind.Intercepted: return "intercepted";
    case TriggerKind.FirstPacketTimeout: return "first_packet_timeout";
    default: return "status";
  }
}

/** Whether a backup's answer is the success the client should get. */
export function isBackupSuccess(status: i32): bool {
  return status >= 200 && status < 300;
}
