// A policy (the global one, or a rule's over it): its backups, triggers, limits and report fields,
// each section read by its own reader. Pure.
import { JSON } from "./json_value";
import { Policy } from "./config";
import { ConfigReader } from "./config_reader";
import { readBackups } from "./backups_reader";
import { readTriggers } from "./triggers_reader";
import { readLimits } from "./limits_reader";
import { readRetry } from "./retry_reader";
import { HANDOFF_DISPATCH, HANDOFF_ROUTE_FALLBACK } from "../handoff";

export const POLICY_KEYS = [
  "backups", "backendErrorsOnly", "triggerStatuses", "neverTrigger", "alwaysTrigger", "gatewayTriggerStatuses", "methods", "hideTopology",
  "maxRequestBodyBytes", "maxHeldRequestBytes", "firstPacketTimeout", "firstPacket", "keepAliveIsNotFirstPacket",
  "streamIdleTimeout", "fallbackDeadline", "handoff", "retry",
];

/** Fills `policy` from the policy fields present in `obj`; absent fields keep their values. */
export function readPolicy(r: ConfigReader, obj: JSON.Obj, prefix: string, policy: Policy, backupsRequired: bool): bool {
  if (obj.has("backups")) {
    const backups = readBackups(r, obj.get("backups")!, prefix + "backups");
    if (backups == null) return false;
    policy.backups = backups;
  } else if (backupsRequired) {
    return r.refuse(prefix + "backups", "required: a non-empty list of {\"service\": cluster, \"model\": ...}");
  }
  if (!readTriggers(r, obj, prefix, policy)) return false;
  if (!readLimits(r, obj, prefix, policy)) return false;
  if (obj.has("retry")) {
    policy.retry = readRetry(r, obj.get("retry")!, prefix + "retry");
    if (policy.retry === null) return false;
  }
  if (obj.has("hideTopology")) {
    const v = obj.get("hideTopology")!;
    if (v.type != JSON.Types.Bool) return r.refuse(prefix + "hideTopology", "must be true or false, got " + v.toString());
    policy.hideTopology = v.get<bool>();
  }
  if (obj.has("handoff")) {
    const v = obj.get("handoff")!;
    const name = v.type == JSON.Types.String ? v.get<string>() : "";
    if (name != HANDOFF_ROUTE_FALLBACK && name != HANDOFF_DISPATCH) {
      return r.refuse(prefix + "handoff", "must be \"" + HANDOFF_DISPATCH + "\" (call backups from the filter, the default) or \"" +
        HANDOFF_ROUTE_FALLBACK + "\" (mark the answer for Higress's route fallback), got " + v.toString());
    }
    policy.handoff = name == HANDOFF_ROUTE_FALLBACK;
  }
  return true;
}
