// The `_rules_` section: each rule's `_match_*_` lists, and its policy fields over the global ones. Pure.
import { JSON } from "./json_value";
import { DomainPattern } from "../rule_match";
import { Policy, Rule } from "./config";
import { ConfigReader } from "./config_reader";
import { POLICY_KEYS, readPolicy } from "./policy_reader";

export const RULE_KEYS = ["_match_route_", "_match_domain_", "_match_service_", "_match_route_prefix_"];
export const MATCH_KEYS_TEXT = "_match_route_, _match_domain_, _match_service_ or _match_route_prefix_";
// Added by Higress to a plugin's configuration to name it in logs; its SDK removes it before
// parsing (higress-group/wasm-go pkg/wrapper/plugin_wrapper.go, PluginIDKey). Ignored here.
export const PLUGIN_ID_KEY = "_plugin_id_";

export function readRule(r: ConfigReader, v: JSON.Value, field: string, global: Policy): Rule | null {
  if (v.type != JSON.Types.Object) {
    r.refuse(field, "must be an object with " + MATCH_KEYS_TEXT + ", got " + v.toString());
    return null;
  }
  const obj = v.get<JSON.Obj>();
  if (!r.checkKeys(obj, RULE_KEYS.concat(POLICY_KEYS).concat([PLUGIN_ID_KEY]), field + ".")) return null;
  const rule = new Rule();
  const match = rule.match;
  const routes = readMatchList(r, obj, "_match_route_", field);
  if (routes == null) return null;
  const domains = readMatchList(r, obj, "_match_domain_", field);
  if (domains == null) return null;
  const services = readMatchList(r, obj, "_match_service_", field);
  if (services == null) return null;
  const routePrefixes = readMatchList(r, obj, "_match_route_prefix_", field);
  if (routePrefixes == null) return null;
  match.routes = routes;
  for (let i = 0; i < domains.length; i++) match.domains.push(DomainPattern.parse(domains[i]));
  match.services = services;
  match.routePrefixes = routePrefixes;
  if (!match.decideKind()) {
    r.refuse(field, "needs a non-empty " + MATCH_KEYS_TEXT);
    return null;
  }
  // A rule starts from the global policy; the fields it sets override it.
  rule.policy = global.copy();
  if (!readPolicy(r, obj, field + ".", rule.policy, false)) return null;
  if (rule.policy.backups.length == 0) {
    r.refuse(field + ".backups", "required: neither this rule nor the global configuration lists backups");
    return null;
  }
  return rule;
}

/** A `_match_*_` list of `obj` (absent = empty); empty strings are left out, as Higress's SDK does. */
export function readMatchList(r: ConfigReader, obj: JSON.Obj, key: string, field: string): string[] | null {
  if (!obj.has(key)) return new Array<string>();
  const list = r.readStringList(obj.get(key)!, field + "." + key);
  if (list == null) return null;
  const out = new Array<string>();
  for (let i = 0; i < list.length; i++) if (list[i].length > 0) out.push(list[i]);
  return out;
}
