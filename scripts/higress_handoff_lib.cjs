"use strict";
// The Higress objects of the handoff way to fall back (`"handoff": "higress-route-fallback"`), from the
// plugin JSON: the WasmPlugin (one rule for the primary's route and its hops' routes), the EnvoyFilter
// that gives those routes custom_response's redirect on the filter's marker (Higress's fork fields,
// read in higress-group/envoy source/extensions/http/custom_response/redirect_policy/redirect_policy.cc),
// and one Ingress per backup: its hop's route, matched by the header Higress's redirect adds
// (x-higress-fallback-from) and, from the second hop on, by the hop header the filter sets.
// Pure: objects in, objects out; scripts/higress-handoff.mjs writes them as YAML.

const MARKER = "x-ai-fallback-handoff";
const FALLBACK_FROM = "x-higress-fallback-from";
const HOP_HEADER = "x-ai-fallback-hop";
const TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct";
/** The request body custom_response keeps for the redirect (Higress's fork: use_original_request_body). */
const DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024;

class HandoffConfigError extends Error {}

/** `outbound|443||llm-qwen.internal.dns` -> `llm-qwen.internal.dns:443` (Higress's destination annotation). */
function destinationOf(service, field) {
  const m = /^outbound\|(\d+)\|[^|]*\|(.+)$/.exec(String(service));
  if (!m) {
    throw new HandoffConfigError(`${field}: "${service}" is not a Higress cluster name (outbound|<port>||<service>): ` +
      "a hop's route needs the backup's service and port, e.g. outbound|443||llm-qwen.internal.dns");
  }
  return `${m[2]}:${m[1]}`;
}

/** A Kubernetes name from a route name: lower case, [a-z0-9-], at most 40 characters. */
function kubeName(text) {
  const name = String(text).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  return name || "route";
}

/** custom_response's per-route configuration: on the marker, Higress's redirect to the route's fallback. */
function routeFallbackConfig(route, hops) {
  return {
    "@type": TYPED_STRUCT,
    type_url: "type.googleapis.com/envoy.extensions.filters.http.custom_response.v3.CustomResponse",
    value: {
      custom_response_matcher: {
        matcher_list: {
          matchers: [{
            predicate: {
              single_predicate: {
                input: { name: "ai_fallback_handoff", typed_config: { "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpResponseHeaderMatchInput", header_name: MARKER } },
                value_match: { safe_regex: { google_re2: {}, regex: "[0-9]+" } },
              },
            },
            on_match: {
              action: {
                name: "ai_fallback_handoff",
                typed_config: {
                  "@type": TYPED_STRUCT,
                  type_url: "type.googleapis.com/envoy.extensions.http.custom_response.redirect_policy.v3.RedirectPolicy",
                  value: {
                    max_internal_redirects: hops,
                    use_original_request_uri: true,
                    use_original_request_body: true,
                    keep_original_response_code: false,
                    // The filter's own marked replies are redirected too.
                    only_redirect_upstream_code: false,
                    request_headers_to_add: [{ header: { key: FALLBACK_FROM, value: route }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }],
                  },
                },
              },
            },
          }],
        },
      },
    },
  };
}

/**
 * The gateway's custom_response filter (Higress's Helm chart inserts it first in the chain) keeps the
 * request body, so that the recreated request carries it: Higress's fork reads `with_request_body`
 * from the filter's own configuration, not a route's (custom_response_filter.cc, decodeHeaders).
 */
function bodyBufferPatch(maxRequestBytes) {
  return {
    applyTo: "HTTP_FILTER",
    match: { context: "GATEWAY", listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.custom_response" } } } } },
    patch: {
      operation: "MERGE",
      value: { typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.custom_response.v3.CustomResponse", with_request_body: { max_request_bytes: maxRequestBytes } } },
    },
  };
}

/**
 * [WasmPlugin, EnvoyFilter, Ingress per backup] for `plugin` (the plugin JSON of one Model API) on
 * the route `route` (as Higress names it: `namespace/name` for an Ingress, `ai-route-<name>.internal`
 * for the console's AI route) of `host` and `path`.
 */
function handoffObjects(plugin, options) {
  const { route, host, path = "/v1/chat/completions", url, namespace = "higress-system", routesNamespace = "default", maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES } = options;
  if (!plugin || typeof plugin !== "object" || Array.isArray(plugin)) throw new HandoffConfigError("plugin.json: must be a JSON object (the plugin configuration)");
  if (!route) throw new HandoffConfigError("--route: required: the primary's route name as Higress names it (namespace/name, or ai-route-<name>.internal)");
  if (!host) throw new HandoffConfigError("--host: required: the host the primary's route serves (the hops' routes match the same)");
  if (!url) throw new HandoffConfigError("--url: required: the module's oci:// URL (npm run push prints it)");
  for (const field of ["_rules_", "matchRules"]) {
    if (field in plugin) throw new HandoffConfigError(`${field}: one Model API's plugin JSON without rules is expected; run the command once per route`);
  }
  if (plugin.handoff !== undefined && plugin.handoff !== "higress-route-fallback") {
    throw new HandoffConfigError(`handoff: "${plugin.handoff}" here; this command writes the handoff way's objects ("higress-route-fallback")`);
  }
  const backups = plugin.backups;
  if (!Array.isArray(backups) || backups.length === 0) throw new HandoffConfigError("backups: required: a non-empty list (one hop per backup)");
  const base = kubeName(route);
  const hops = backups.map((b, i) => ({
    n: i + 1,
    name: `${base}-ai-fallback-${i + 1}`,
    destination: destinationOf(b && b.service, `backups[${i}].service`),
    // The filter leaves a hop's authority and path to its route (higress.io annotations: pkg/ingress/kube/annotations/rewrite.go).
    rewrites: {
      ...(b.authority ? { "higress.io/upstream-vhost": b.authority } : {}),
      ...(b.path ? { "higress.io/rewrite-path": b.path } : {}),
    },
  }));
  const hopRoutes = hops.map((h) => `${routesNamespace}/${h.name}`);
  const wasmPlugin = {
    apiVersion: "extensions.higress.io/v1alpha1",
    kind: "WasmPlugin",
    metadata: { name: `ai-fallback-handoff-${base}`, namespace },
    spec: {
      url,
      phase: "UNSPECIFIED_PHASE",
      priority: 200,
      defaultConfigDisable: true,
      matchRules: [{ ingress: [route, ...hopRoutes], config: { ...plugin, handoff: "higress-route-fallback" } }],
    },
  };
  // Every route but the last hop's hands a marked answer on (the last hop never marks one).
  const redirecting = [route, ...hopRoutes.slice(0, -1)];
  const envoyFilter = {
    apiVersion: "networking.istio.io/v1alpha3",
    kind: "EnvoyFilter",
    metadata: { name: `ai-fallback-handoff-${base}`, namespace },
    spec: {
      configPatches: [bodyBufferPatch(maxRequestBytes), ...redirecting.map((name) => ({
        applyTo: "HTTP_ROUTE",
        match: { context: "GATEWAY", routeConfiguration: { vhost: { route: { name } } } },
        patch: { operation: "MERGE", value: { typed_per_filter_config: { "envoy.filters.http.custom_response": routeFallbackConfig(route, backups.length) } } },
      }))],
    },
  };
  const ingresses = hops.map((h) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      name: h.name,
      namespace: routesNamespace,
      annotations: {
        "higress.io/destination": h.destination,
        [`higress.io/exact-match-header-${FALLBACK_FROM}`]: route,
        // The first hop is matched by the redirect's header alone (the hop header is not set yet).
        ...(h.n > 1 ? { [`higress.io/exact-match-header-${HOP_HEADER}`]: String(h.n) } : {}),
        ...h.rewrites,
      },
    },
    spec: {
      ingressClassName: "higress",
      rules: [{
        host,
        http: { paths: [{ path, pathType: "Prefix", backend: { resource: { apiGroup: "networking.higress.io", kind: "McpBridge", name: "default" } } }] },
      }],
    },
  }));
  return [wasmPlugin, envoyFilter, ...ingresses];
}

module.exports = { handoffObjects, HandoffConfigError, destinationOf, MARKER, FALLBACK_FROM, HOP_HEADER };
