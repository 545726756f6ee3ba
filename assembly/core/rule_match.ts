// Which `_rules_` entry a request belongs to, matched the way Higress's own plugins match it. Pure.
//
// Higress's controller (higress-group/higress pkg/ingress/config/ingress_config.go,
// convertIstioWasmPlugin) turns each WasmPlugin matchRule into a `_rules_` entry holding the rule's
// own config plus `_match_route_` (from `ingress`), `_match_service_` and `_match_domain_`. Its Go
// SDK (higress-group/wasm-go pkg/matcher/rule_matcher.go) reads them, and so does this file:
// - one kind per rule, by precedence: `_match_route_` (with `_match_service_` too: both must hold),
//   else `_match_domain_`, else `_match_service_`, else `_match_route_prefix_`. Conditions of a
//   lower kind in the same rule are not looked at (a route rule ignores its domains);
// - routes: the route name exactly (Higress names routes "namespace/name" or "ai-route-<name>.internal");
// - route prefixes: the route name starts with one of them;
// - domains: the authority without its port; a leading "*" matches any prefix ("*.example.com",
//   "*" alone matches every host), a trailing "*" any suffix ("api.*"), else equality. Unlike the SDK
//   this compares case-insensitively (host names are; Envoy does not lower-case :authority);
// - services: the FQDN of an Istio-style cluster name "outbound|<port>|<subset>|<fqdn>", written
//   "<fqdn>" or "<fqdn>:<port>" ("qwen.dns", "llm-qwen.internal.dns:443"). An entry equal to the
//   whole cluster name matches too (plain Envoy clusters, or "outbound|443||qwen.dns" written out):
//   the SDK never matches such an entry, and no FQDN-form entry can equal a whole Istio-style name
//   (an FQDN has no "|"), so the two forms cannot be mistaken for each other.
// Empty strings in the lists are skipped, as the SDK does.
import { asciiLower } from "./bytes";

export enum MatchKind {
  Route,
  RouteAndService,
  Domain,
  Service,
  RoutePrefix,
}

export enum DomainForm {
  Exact,
  /** "*.example.com": the host ends with ".example.com". */
  Suffix,
  /** "api.*": the host starts with "api.". */
  Prefix,
}

export class DomainPattern {
  constructor(public form: DomainForm, public text: string) {}

  static parse(written: string): DomainPattern {
    const lower = asciiLower(written);
    if (lower.startsWith("*")) return new DomainPattern(DomainForm.Suffix, lower.substring(1));
    if (lower.endsWith("*")) return new DomainPattern(DomainForm.Prefix, lower.substring(0, lower.length - 1));
    return new DomainPattern(DomainForm.Exact, lower);
  }

  matches(host: string): bool {
    if (this.form == DomainForm.Suffix) return host.endsWith(this.text);
    if (this.form == DomainForm.Prefix) return host.startsWith(this.text);
    return host == this.text;
  }
}

/** The match conditions of one `_rules_` entry (empty strings already left out). */
export class RuleMatch {
  kind: MatchKind = MatchKind.Route;
  routes: string[] = [];
  routePrefixes: string[] = [];
  domains: DomainPattern[] = [];
  services: string[] = [];

  /** False when the rule gives no condition at all (the SDK refuses such a rule). */
  decideKind(): bool {
    if (this.routes.length > 0) {
      this.kind = this.services.length > 0 ? MatchKind.RouteAndService : MatchKind.Route;
    } else if (this.domains.length > 0) {
      this.kind = MatchKind.Domain;
    } else if (this.services.length > 0) {
      this.kind = MatchKind.Service;
    } else if (this.routePrefixes.length > 0) {
      this.kind = MatchKind.RoutePrefix;
    } else {
      return false;
    }
    return true;
  }

  /** The cluster name is only read for rules that look at it. */
  get needsService(): bool {
    return this.kind == MatchKind.Service || this.kind == MatchKind.RouteAndService;
  }

  /** `host`: the request's authority, lower-cased, without port (see hostOf). */
  matches(routeName: string, host: string, cluster: string): bool {
    switch (this.kind) {
      case MatchKind.Route: return this.routes.includes(routeName);
      case MatchKind.RouteAndService: return this.routes.includes(routeName) && anyServiceMatches(this.services, cluster);
      case MatchKind.Domain: return anyDomainMatches(this.domains, host);
      case MatchKind.Service: return anyServiceMatches(this.services, cluster);
      default: return anyPrefixOf(this.routePrefixes, routeName);
    }
  }
}

/** The authority lower-cased and without its port ("[::1]:8080" -> "[::1]"). */
export function hostOf(authority: string): string {
  const lower = asciiLower(authority);
  const colon = lower.lastIndexOf(":");
  if (colon < 0) return lower;
  const bracket = lower.lastIndexOf("]");
  return bracket > colon ? lower : lower.substring(0, colon);
}

/** Whether a `_match_service_` entry names the cluster (see the file comment). */
export function serviceMatches(entry: string, cluster: string): bool {
  if (entry == cluster) return true;
  const parts = cluster.split("|");
  if (parts.length != 4) return false;
  const port = parts[1];
  const fqdn = parts[3];
  const colon = entry.lastIndexOf(":");
  if (colon >= 0 && entry.substring(0, colon) == fqdn && entry.substring(colon + 1) == port) return true;
  return entry == fqdn;
}

function anyServiceMatches(entries: string[], cluster: string): bool {
  for (let i = 0; i < entries.length; i++) if (serviceMatches(entries[i], cluster)) return true;
  return false;
}

function anyDomainMatches(patterns: DomainPattern[], host: string): bool {
  for (let i = 0; i < patterns.length; i++) if (patterns[i].matches(host)) return true;
  return false;
}

function anyPrefixOf(prefixes: string[], routeName: string): bool {
  for (let i = 0; i < prefixes.length; i++) if (routeName.startsWith(prefixes[i])) return true;
  return false;
}
