"use strict";
// The streamed mode's Envoy configuration, computed from one plugin configuration (the dispatch
// mode's JSON) and the clusters' addresses. Pure: no file or process access (unit-tested).
//
// The route sends each attempt to the next priority group (primary, backup 1, backup 2, ...) and
// Envoy's router retries there; each backup cluster runs the module's "ai-fallback-upstream" role as
// an upstream filter, which rewrites the attempt for that backup. The answer streams to the client.

const { createHash } = require("node:crypto");

const UPSTREAM_ROOT_ID = "ai-fallback-upstream";
/** The downstream role that gives streaming requests the router's per-try timeout (firstPacketTimeout). */
const STREAMED_ROOT_ID = "ai-fallback-streamed";
/** firstPacket "content": the primary guard's mark on a 2xx whose first event is an error; the route retries on it. */
const STREAM_ERROR_HEADER = "x-ai-fallback-stream-error";
/** The route's request buffer: a retry needs the whole body kept (Envoy's default, 1 MiB, silently drops retries). */
const DEFAULT_REQUEST_BUFFER_BYTES = 16 * 1024 * 1024;
/** Retries one cluster may have in flight (Envoy's default, 3, overflows under concurrency). */
const DEFAULT_MAX_RETRIES = 1024;
/** `hedge`: the one cluster whose priority levels are the services (primary = 0, backups in order). */
const SERVICES_CLUSTER = "ai-fallback-services";
/** The header the cluster's first upstream filter sets to the attempt's service (assembly/upstream/service_marker.ts). */
const SERVICE_MARKER_HEADER = "x-ai-fallback-upstream-service";
/** The most requests per worker `hedge.maxInFlight` may let race (assembly/core/config/hedge_reader.ts). */
const MAX_HEDGES_IN_FLIGHT = 100000;
/** The CA bundle an https cluster checks its server's certificate against (Debian/Ubuntu; Fedora/RHEL: /etc/pki/tls/certs/ca-bundle.crt). */
const DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

const BACKUP_KEYS = ["service", "model", "timeout", "path", "authority", "headers", "dropHeaders"];
// The module's built-in credential headers (assembly/core/config/config.ts CREDENTIAL_HEADERS, where each is explained).
const CREDENTIAL_HEADERS = [
  "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "ocp-apim-subscription-key",
  "x-amz-security-token", "x-amz-date", "x-amz-content-sha256",
  "openai-organization", "openai-project", "x-goog-user-project", "x-dashscope-workspace",
];
// RFC 9110 token characters, lower case (as the module checks a header name).
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Set by an attempt's upstream filter on an answer to retry (assembly/core/replay.ts HEADER_RETRY): the
 * route retries on it (retriable_headers) and removes it before the client sees the answer.
 */
const RETRY_HEADER = "x-ai-fallback-retry";
/**
 * The value of the marks (RETRY_HEADER, STREAM_ERROR_HEADER) the route retries on, the same for every
 * attempt's filter of one configuration (assembly/core/retry_mark.ts): a model service's answer may
 * carry headers of those names, but not this value, which only the gateway's configuration holds. A
 * digest of the plugin configuration (its credentials included), so that generating it again gives
 * the same output.
 */
function retryMark(plugin) {
  return createHash("sha256").update("ai-fallback retry mark\n").update(JSON.stringify(plugin)).digest("hex").slice(0, 32);
}

/**
 * An operator's own mark (--retry-mark): a secret in place of the digest, for a configuration whose
 * digest someone else could compute (one without credentials). As the module checks it, and long enough to be one.
 */
function checkedRetryMark(mark) {
  if (typeof mark !== "string" || !/^[\x21-\x7e]{16,128}$/.test(mark)) {
    refuse("--retry-mark", "must be 16 to 128 visible ASCII characters (a header value without spaces), e.g. the output of `openssl rand -hex 16`");
  }
  return mark;
}

/** Per generated plugin object (with its defaults filled in): the mark of the configuration as given, or the operator's. */
const MARKS = new WeakMap();

function markOf(plugin) {
  return MARKS.get(plugin) ?? retryMark(plugin);
}

/** Same-service retry: the filter state naming the next try's cluster (assembly/upstream/attempt_retry.ts). */
const CHAIN_NEXT_FILTER_STATE = "wasm.ai_fallback.next";
/** Its value after the last try (attempt_retry.ts CHAIN_OVER), and the endpoint-less cluster it selects. */
const CHAIN_OVER = "-";
/** Same-service retry: the last failed try's cluster (the exhausted reply's `last`; the route's sink is no service). */
const CHAIN_LAST_FILTER_STATE = "wasm.ai_fallback.last";
const CHAIN_OVER_CLUSTER = "ai-fallback-chain-over";
/** Per generated plugin object: every attempt's cluster, in order (kept out of the plugin's own JSON). */
const RETRY_CLUSTERS = new WeakMap();
/** The dispatch mode's defaults of `retry` (core/retry.ts RetrySettings). */
const RETRY_DEFAULTS = { attempts: 1, backoff: 100, maxRetryAfter: 2000, on: [500, 502, 503, 504, 429, "reset"] };

class StreamedConfigError extends Error {}

function refuse(field, why) {
  throw new StreamedConfigError(`${field}: ${why}`);
}

/** The trigger statuses as the explicit list Envoy's retriable_status_codes needs (default: 400..599). */
function retriableStatusCodes(triggerStatuses) {
  if (triggerStatuses === undefined) return range(400, 599);
  if (!Array.isArray(triggerStatuses) || triggerStatuses.length === 0) {
    refuse("triggerStatuses", "must be a non-empty array of status codes (400..599) or classes \"4xx\"/\"5xx\"");
  }
  const codes = new Set();
  triggerStatuses.forEach((s, i) => {
    if (s === "4xx" || s === "5xx") range(s === "4xx" ? 400 : 500, s === "4xx" ? 499 : 599).forEach((c) => codes.add(c));
    else if (Number.isInteger(s) && s >= 400 && s <= 599) codes.add(s);
    else refuse(`triggerStatuses[${i}]`, `must be a status code (400..599) or "4xx"/"5xx", got ${JSON.stringify(s)}`);
  });
  return [...codes].sort((a, b) => a - b);
}

/**
 * A 4xx other than 429 may be decided by its error code (neverTrigger / alwaysTrigger): the primary's
 * filter reads it and marks it when it falls back, so the router retries those by the marker, not by status.
 */
function decidedByMeaning(code) {
  return code >= 400 && code <= 499 && code !== 429;
}

/**
 * The route's retry policy. With the primary's filter, every attempt's filter marks a failed answer
 * (RETRY_HEADER) and only 429 and 5xx are retried by status as well; without it (lean), by status alone.
 */
function retryPolicy(codes, retries, primaryFilter, mark) {
  const byStatus = primaryFilter ? codes.filter((c) => !decidedByMeaning(c)) : codes;
  const retryOn = ["reset", "connect-failure", "refused-stream"];
  if (byStatus.length > 0) retryOn.push("retriable-status-codes");
  if (primaryFilter) retryOn.push("retriable-headers");
  const policy = { retry_on: retryOn.join(",") };
  if (byStatus.length > 0) policy.retriable_status_codes = byStatus;
  if (primaryFilter) policy.retriable_headers = [{ name: RETRY_HEADER, string_match: { exact: mark } }];
  return {
    ...policy,
    num_retries: retries,
    refresh_cluster_on_retry: true,
    // The next attempt goes to another cluster: nothing to wait for. Envoy's least (a jittered wait of
    // at most 1 ms, then 2, 4 ms) instead of its default 25 ms base (measured in npm run bench).
    retry_back_off: { base_interval: "0.001s", max_interval: "0.005s" },
  };
}

function range(from, to) {
  const out = [];
  for (let c = from; c <= to; c++) out.push(c);
  return out;
}

/** The credential headers: the built-in list plus the plugin's `credentialHeaders`, checked as the module checks them. */
function credentialHeaderList(plugin) {
  const extra = plugin.credentialHeaders;
  if (extra === undefined) return CREDENTIAL_HEADERS;
  if (!Array.isArray(extra)) refuse("credentialHeaders", `must be an array of header names, e.g. ["x-tenant-key"], got ${JSON.stringify(extra)}`);
  const names = extra.map((n, i) => {
    if (typeof n !== "string") refuse(`credentialHeaders[${i}]`, `must be a string, got ${JSON.stringify(n)}`);
    const name = n.toLowerCase();
    if (!HEADER_NAME.test(name) || ["host", "content-length", "transfer-encoding"].includes(name)) {
      refuse(`credentialHeaders[${i}]`, `must name an ordinary header (not a pseudo-header, host or framing), got ${JSON.stringify(name)}`);
    }
    return name;
  });
  return [...new Set([...CREDENTIAL_HEADERS, ...names])];
}

function headerNames(backup) {
  return Object.keys(backup.headers ?? {}).map((n) => n.toLowerCase());
}

function hasOwnCredential(backup, credentialHeaders) {
  return headerNames(backup).some((n) => credentialHeaders.includes(n));
}

/**
 * The headers that the backups before `backups[index]` set and it does not (lower case): its filter
 * removes them, so no backup receives another's header (Envoy keeps one header map for all attempts).
 */
function earlierBackupHeaders(backups, index) {
  const own = headerNames(backups[index]);
  const earlier = new Set(backups.slice(0, index).flatMap(headerNames));
  return [...earlier].filter((n) => !own.includes(n));
}

/**
 * Checks the backups for what the streamed mode cannot do. Envoy keeps one request header map
 * for all attempts, so an upstream filter's edits on one attempt are still there on the next:
 * a backup that keeps the client's path or authority after an earlier backup changed it would get
 * the earlier backup's value instead, and one that keeps the client's credential after an earlier
 * backup replaced it would get none (the earlier backup's is removed: earlierBackupHeaders).
 */
function checkBackups(backups, credentialHeaders = CREDENTIAL_HEADERS) {
  if (!Array.isArray(backups) || backups.length === 0) refuse("backups", "required: a non-empty list of backups");
  let credentialReplaced = false, pathSet = false, authoritySet = false;
  backups.forEach((b, i) => {
    const field = `backups[${i}]`;
    if (b === null || typeof b !== "object" || Array.isArray(b)) refuse(field, "must be an object");
    for (const k of Object.keys(b)) if (!BACKUP_KEYS.includes(k)) refuse(`${field}.${k}`, `unknown field (known: ${BACKUP_KEYS.join(", ")})`);
    if (typeof b.service !== "string" || b.service === "") refuse(`${field}.service`, "required: the name of an Envoy cluster");
    const own = hasOwnCredential(b, credentialHeaders);
    if (credentialReplaced && !own) {
      refuse(`${field}.headers`, "streamed mode: must set its own credential header, because an earlier backup replaced the client's (Envoy keeps header edits across attempts: the client's credential is gone by then)");
    }
    if (pathSet && b.path === undefined) refuse(`${field}.path`, "streamed mode: required because an earlier backup sets a path (Envoy keeps header edits across attempts)");
    if (authoritySet && b.authority === undefined) refuse(`${field}.authority`, "streamed mode: required because an earlier backup sets an authority (Envoy keeps header edits across attempts)");
    credentialReplaced ||= own;
    pathSet ||= b.path !== undefined;
    authoritySet ||= b.authority !== undefined;
  });
}

/** The methods whose requests fall back (default POST), checked as the module checks them. */
function retriedMethods(methods) {
  if (methods === undefined) return ["POST"];
  if (!Array.isArray(methods) || methods.length === 0) refuse("methods", "must list at least one method, e.g. [\"POST\"]");
  methods.forEach((m, i) => {
    if (typeof m !== "string" || !/^[A-Z_-]+$/.test(m)) refuse(`methods[${i}]`, `must be an upper-case HTTP method such as "POST", got ${JSON.stringify(m)}`);
  });
  return methods;
}

/** "host:port" or "https://host[:port]" -> { host, port, tls }. */
function parseAddress(text, field) {
  if (typeof text !== "string") refuse(field, "must be \"host:port\" or \"https://host[:port]\"");
  const tls = text.startsWith("https://");
  const rest = tls ? text.slice("https://".length) : text.replace(/^http:\/\//, "");
  const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?$/.exec(rest);
  if (!m || (!tls && m[2] === undefined)) refuse(field, `must be "host:port" or "https://host[:port]", got ${JSON.stringify(text)}`);
  const port = m[2] === undefined ? 443 : Number(m[2]);
  if (port < 1 || port > 65535) refuse(field, `port out of range: ${port}`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port, tls };
}

/** An IPv4 or IPv6 address (as parseAddress returns it), not a host name. */
function isIpAddress(host) {
  return /^[0-9.]+$|:/.test(host);
}

/** The module as an HTTP filter (downstream or upstream: the same shape) with `rootId` and `configuration` (JSON). */
function wasmFilter(name, rootId, configuration, wasmPath, holdsHeaders = false) {
  const config = {
    name,
    root_id: rootId,
    vm_config: { vm_id: "ai-fallback", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasmPath } } },
    configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(configuration) },
  };
  // A filter that pauses at the headers and waits for the body needs it (Envoy >= 1.35).
  if (holdsHeaders) config.allow_on_headers_stop_iteration = true;
  return { name: "envoy.filters.http.wasm", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", config } };
}

/**
 * The upstream filter of attempt `attempt` (1 = the primary): the module's upstream role with that
 * attempt's configuration (assembly/core/config/config.ts parseUpstreamConfig): on the primary it records a
 * failed attempt's result for the next one; on a backup it also rewrites the attempt's request and
 * reports the fallback on the answer.
 */
function upstreamWasmFilter(plugin, attempt, wasmPath, primaryFilter = true) {
  const name = attempt === 1 ? "ai-fallback-upstream-primary" : `ai-fallback-upstream-${attempt - 1}`;
  // The primary's filter holds a 4xx's headers until it has read the body's error code.
  // An override backup's filter holds the request's headers until its body's model is rewritten.
  const config = attemptConfig(plugin, attempt, primaryFilter);
  return wasmFilter(name, UPSTREAM_ROOT_ID, config, wasmPath, attempt === 1 || config.holdsRequestHeaders === true);
}

/** The plain cluster (no filter) by which requests of methods not in `methods` reach the primary. */
function otherMethodsCluster(primary) {
  return `${primary}-other-methods`;
}

/** Attempt `attempt`'s configuration (1 = the primary): the upstream role's `{"attempt": n, ...}`. */
function attemptConfig(plugin, attempt, primaryFilter = true) {
  const config = { attempt, attempts: plugin.backups.length + 1, retryMark: markOf(plugin) };
  // Lean: the backups know that no filter recorded the primary's result (they report it as "retry").
  if (!primaryFilter && attempt > 1) config.primaryFilter = false;
  if (plugin.triggerStatuses !== undefined) config.triggerStatuses = plugin.triggerStatuses;
  if (plugin.hideTopology !== undefined) config.hideTopology = plugin.hideTopology;
  if (attempt === 1 && plugin.methods !== undefined) config.methods = plugin.methods;
  // Requests of other methods reach the primary through a plain cluster (otherMethodsCluster): the
  // primary's filter need not read each request's method.
  if (attempt === 1) config.retryingRouteOnly = true;
  if (attempt === 1 && plugin.neverTrigger !== undefined) config.neverTrigger = plugin.neverTrigger;
  if (attempt === 1 && plugin.alwaysTrigger !== undefined) config.alwaysTrigger = plugin.alwaysTrigger;
  if (attempt > 1 && plugin.credentialHeaders !== undefined) config.credentialHeaders = plugin.credentialHeaders;
  if (attempt > 2) {
    const earlier = earlierBackupHeaders(plugin.backups, attempt - 2);
    if (earlier.length > 0) config.earlierBackupHeaders = earlier;
  }
  if (attempt > 1) config.backup = plugin.backups[attempt - 2];
  // A skipped attempt (its model not rewritable) then gets none of this backup's headers (wasmFilter's allow_on_headers_stop_iteration).
  if (attempt > 1 && typeof config.backup.model === "string") config.holdsRequestHeaders = true;
  // Each attempt's filter records its service's failures and answers in the shared cooldown table.
  if (plugin.cooldown !== undefined) config.cooldown = plugin.cooldown;
  // Same-service retry: the filter names the next try's cluster (route: retryRoute).
  if (plugin.retry !== undefined) {
    config.retry = plugin.retry;
    config.retryClusters = RETRY_CLUSTERS.get(plugin);
  }
  return config;
}

/** The plugin's `retry` with its defaults filled in (the module checked its fields), or undefined. */
function retrySection(plugin) {
  const r = plugin.retry;
  if (r === undefined) return undefined;
  if (r === null || typeof r !== "object" || Array.isArray(r)) refuse("retry", `must be an object like ${JSON.stringify(RETRY_DEFAULTS)}, got ${JSON.stringify(r)}`);
  return { ...RETRY_DEFAULTS, ...r };
}

/**
 * Same-service retry: each try's cluster is the one the previous try's filter named in the filter
 * state CHAIN_NEXT_FILTER_STATE (its own cluster to retry it, the next service's to move on, none on
 * the first try: the primary), which the router reads again on every retry (refresh_cluster_on_retry).
 * The route retries on the filters' mark alone (no retriable status codes): the last try is left
 * unmarked. A last try that gives no answer names CHAIN_OVER_CLUSTER, which has no endpoint (the
 * router then answers itself). Retries wait `backoff` (Envoy's jittered back-off), or a 429/503's
 * Retry-After (seconds) up to `maxRetryAfter`; a filter that moves on removes the Retry-After.
 */
function retryRoute(route, retry, names) {
  const action = (cluster) => ({ action: { name: cluster, typed_config: { "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.matcher.v3.ClusterAction", cluster } } });
  const map = {};
  for (const n of names) map[n] = action(n);
  map[CHAIN_OVER] = action(CHAIN_OVER_CLUSTER);
  route.inline_cluster_specifier_plugin = {
    extension: {
      name: "envoy.router.cluster_specifier_plugin.matcher",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.matcher.v3.MatcherClusterSpecifier",
        cluster_matcher: {
          matcher_tree: {
            input: { name: "ai_fallback_next", typed_config: { "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput", key: CHAIN_NEXT_FILTER_STATE } },
            exact_match_map: { map },
          },
          on_no_match: action(names[0]),
        },
      },
    },
  };
  const policy = route.retry_policy;
  policy.retry_on = policy.retry_on.split(",").filter((r) => r !== "retriable-status-codes").join(",");
  delete policy.retriable_status_codes;
  policy.num_retries = names.length * (1 + retry.attempts) - 1;
  policy.retry_back_off = { base_interval: `${Math.max(retry.backoff, 1) / 1000}s` };
  if (retry.maxRetryAfter >= 1000) {
    policy.rate_limited_retry_back_off = { reset_headers: [{ name: "retry-after", format: "SECONDS" }], max_interval: `${retry.maxRetryAfter / 1000}s` };
  }
}

/** The cluster a chain that is over goes to: no endpoint, so the router answers at once (no healthy upstream). */
function chainOverCluster() {
  return { name: CHAIN_OVER_CLUSTER, type: "STATIC", connect_timeout: "1s", load_assignment: { cluster_name: CHAIN_OVER_CLUSTER, endpoints: [] } };
}

/** hedge.maxInFlight (0 = no hedging), checked as the module checks it. */
function hedgeMaxInFlight(plugin) {
  const hedge = plugin.hedge;
  if (hedge === undefined) return 0;
  if (hedge === null || typeof hedge !== "object" || Array.isArray(hedge)) {
    refuse("hedge", `must be an object such as {"maxInFlight": 10}, got ${JSON.stringify(hedge)}`);
  }
  for (const k of Object.keys(hedge)) if (k !== "maxInFlight") refuse(`hedge.${k}`, "unknown field (known: maxInFlight)");
  const n = hedge.maxInFlight;
  if (!Number.isInteger(n) || n < 1 || n > MAX_HEDGES_IN_FLIGHT) {
    refuse("hedge.maxInFlight", `must be an integer from 1 to ${MAX_HEDGES_IN_FLIGHT} (the most requests per worker racing a backup at once), got ${JSON.stringify(n)}`);
  }
  if (firstPacketTimeoutMs(plugin) === 0) {
    refuse("hedge", "needs firstPacketTimeout (the race starts when the primary's first packet is that late): set firstPacketTimeout, e.g. 2000, or remove hedge");
  }
  return n;
}

/** Envoy's header_mutation upstream filter writing the attempt's endpoint's service into the marker, on every attempt. */
function serviceMarkerFilter() {
  return {
    name: "envoy.filters.http.header_mutation",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
      mutations: { request_mutations: [{ append: {
        header: { key: SERVICE_MARKER_HEADER, value: "%UPSTREAM_METADATA(ai_fallback:service)%" },
        append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
      } }] },
    },
  };
}

/** `filter`, skipped on the attempts whose marker names one of `skipped` (Envoy's match_delegate). */
function skippedFor(filter, skipped, suffix) {
  const skip = { action: { name: "skip", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter" } } };
  return {
    name: `${filter.typed_config.config.name}-${suffix}`,
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
      extension_config: filter,
      xds_matcher: { matcher_tree: {
        input: { name: "service", typed_config: { "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput", header_name: SERVICE_MARKER_HEADER } },
        exact_match_map: { map: Object.fromEntries(skipped.map((n) => [n, skip])) },
      } },
    },
  };
}

/**
 * `hedge`: ONE cluster whose priority levels are the services (Envoy hedges within a cluster only).
 * Each endpoint carries its service's name (metadata ai_fallback.service) and, for an https service,
 * its own TLS (transport_socket_matches). Its upstream chain: the marker (serviceMarkerFilter), the
 * primary guard on the primary's attempts only, the module's attempt filter with every service's
 * configuration keyed by name, the codec.
 */
function servicesCluster(plugin, names, addresses, wasmPath, maxRetries, caBundle) {
  const parsed = names.map((n) => parseAddress(addresses[n], `clusters.addresses.${n}`));
  const services = {};
  names.forEach((n, i) => { services[n] = attemptConfig(plugin, i + 1); });
  // It holds a streaming 2xx's headers until the first body byte, which decides a race (and the report they carry).
  const attemptFilter = wasmFilter("ai-fallback-upstream", UPSTREAM_ROOT_ID, { hedge: true, services }, wasmPath, true);
  // The primary's guard as without hedge; the backups' holds a racing request's 2xx until its first
  // content (the first content, not the first headers, wins the race).
  const filters = [serviceMarkerFilter(), skippedFor(primaryGuardFilter(plugin, wasmPath), names.slice(1), "primary"),
    skippedFor(primaryGuardFilter(plugin, wasmPath, true), names.slice(0, 1), "backups"), attemptFilter,
    { name: "envoy.filters.http.upstream_codec", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" } }];
  return {
    name: SERVICES_CLUSTER,
    type: parsed.every((a) => isIpAddress(a.host)) ? "STATIC" : "STRICT_DNS",
    connect_timeout: "5s",
    circuit_breakers: { thresholds: [{ priority: "DEFAULT", max_retries: maxRetries }] },
    load_assignment: {
      cluster_name: SERVICES_CLUSTER,
      endpoints: names.map((n, i) => {
        const metadata = { ai_fallback: { service: n } };
        if (parsed[i].tls) metadata["envoy.transport_socket_match"] = { service: n };
        return {
          priority: i,
          locality: { zone: n },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: parsed[i].host, port_value: parsed[i].port } } }, metadata: { filter_metadata: metadata } }],
        };
      }),
    },
    transport_socket_matches: names.filter((n, i) => parsed[i].tls).map((n) => ({
      name: `tls-${n}`, match: { service: n }, transport_socket: upstreamTls(parsed[names.indexOf(n)].host, caBundle),
    })),
    typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      explicit_http_config: { http_protocol_options: {} },
      http_filters: filters,
    } },
  };
}

/**
 * What the client gets when the router itself answers (the last attempt got no answer: connect
 * failure, reset, timeout; or no attempt could be made): the dispatch mode's JSON error in place of
 * Envoy's plain text, with what Envoy knows of the last attempt. Every router reply sets a response
 * flag; answers of the model services are never local replies, so they pass unchanged.
 */
function exhaustedLocalReply(hideTopology, lastService = "%UPSTREAM_CLUSTER%") {
  const error = {
    type: "ai_fallback_exhausted",
    code: "%RESPONSE_CODE%",
    message: "every model service failed",
    attempts: "%RESP(x-envoy-attempt-count)%",
    envoy: "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%",
  };
  if (!hideTopology) error.last = lastService;
  return {
    mappers: [{
      filter: { response_flag_filter: {} },
      body_format_override: { json_format: { error }, content_type: "application/json" },
    }],
  };
}

/**
 * firstPacketTimeout: the primary's guard holds a streaming 2xx's headers until its first body byte
 * (headers-only errors stay as they are: the router retries their status, it would not retry the
 * guard's local reply), so the router's per-try timeout, which the downstream role sets for
 * streaming requests only, runs until that byte.
 */
function primaryGuardFilter(plugin, wasmPath, hedgedOnly = false) {
  const guard = { replyToHeadersOnlyErrors: false, retryMark: markOf(plugin) };
  // hedge: the backups' guard, which holds only requests that race.
  if (hedgedOnly) guard.hedgedOnly = true;
  if (plugin.keepAliveIsNotFirstPacket !== undefined) guard.keepAliveIsNotFirstPacket = plugin.keepAliveIsNotFirstPacket;
  return wasmFilter(hedgedOnly ? "ai-fallback-guard-hedged" : "ai-fallback-guard", UPSTREAM_ROOT_ID, { guard }, wasmPath, true);
}

function streamedDownstreamFilter(plugin, wasmPath) {
  return wasmFilter("ai-fallback-streamed", STREAMED_ROOT_ID, plugin, wasmPath, true);
}

/** The property the downstream role sets to start a request's chain past cooling services (assembly/host/streamed_start_signal.ts). */
const START_FILTER_STATE = "wasm.ai_fallback.start";

/**
 * cooldown: one route per later start of the chain, before the retrying route. The downstream role
 * (ai-fallback-streamed, the last filter before the router) sets the filter state
 * `wasm.ai_fallback.start` to the attempt the chain starts at, past the services that cool, and
 * clears the route cache; no client can set filter state. The router runs after every filter, so a
 * request a filter refuses never reaches a backup. The chain's last service is always a start.
 */
function cooldownRoutes(route, names, methodMatch, requestBodyBufferLimit) {
  const out = [];
  for (let attempt = 2; attempt <= names.length; attempt++) {
    const groups = route.inline_cluster_specifier_plugin.extension.typed_config.priority_groups.slice(attempt - 1);
    out.push({
      match: { prefix: "/", headers: [methodMatch], filter_state: [{ key: START_FILTER_STATE, string_match: { exact: String(attempt) } }] },
      request_body_buffer_limit: requestBodyBufferLimit,
      route: {
        ...route,
        inline_cluster_specifier_plugin: { extension: { ...route.inline_cluster_specifier_plugin.extension,
          typed_config: { ...route.inline_cluster_specifier_plugin.extension.typed_config, priority_groups: groups } } },
        retry_policy: { ...route.retry_policy, num_retries: names.length - attempt },
      },
    });
  }
  return out;
}

/** The plugin's cooldown section, checked here for what the module cannot check (it names the primary for every role). */
function cooldownSection(plugin, primary) {
  const c = plugin.cooldown;
  if (c === undefined) return undefined;
  if (c === null || typeof c !== "object" || Array.isArray(c)) refuse("cooldown", `must be an object like {"failures": 3, "window": 10000, "duration": 30000}, got ${JSON.stringify(c)}`);
  if (c.primary !== undefined && c.primary !== primary) refuse("cooldown.primary", `set by the generator to clusters.primary (${JSON.stringify(primary)}); leave it out`);
  return { ...c, primary };
}

/** firstPacketTimeout in ms (0 = off), checked as the module checks it. */
function firstPacketTimeoutMs(plugin) {
  const v = plugin.firstPacketTimeout;
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 2147483647) refuse("firstPacketTimeout", `must be an integer from 0 to 2147483647, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * streamIdleTimeout in ms (0 = off), checked as the module checks it, and against firstPacketTimeout:
 * it becomes the route's idle_timeout, which Envoy's connection manager also runs while the first
 * packet is awaited (and while a non-streaming answer is computed).
 */
function streamIdleTimeoutMs(plugin, firstPacketMs) {
  const v = plugin.streamIdleTimeout;
  if (v === undefined || v === 0) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 2147483647) {
    refuse("streamIdleTimeout", `must be an integer number of milliseconds from 0 (off: Envoy's stream_idle_timeout applies, 5 minutes by default) to 2147483647, e.g. 30000 for 30 s; got ${JSON.stringify(v)}`);
  }
  if (firstPacketMs > 0 && v <= firstPacketMs) {
    refuse("streamIdleTimeout", `must be longer than firstPacketTimeout (${firstPacketMs} ms), got ${v}: in the streamed mode it is the route's idle timeout, which also runs while the first packet is awaited and would end the request before its fallback`);
  }
  return v;
}

/**
 * The CA bundle's path: opts.caBundle (--ca-bundle), else clusters.caBundle, else DEFAULT_CA_BUNDLE.
 * A given but empty value is refused: an https cluster must not connect without checking its server.
 */
function caBundlePath(clusters, opts) {
  const [field, value] = opts.caBundle !== undefined ? ["--ca-bundle", opts.caBundle] : ["clusters.caBundle", clusters.caBundle];
  if (value === undefined) return DEFAULT_CA_BUNDLE;
  if (typeof value !== "string" || value.trim() === "") {
    refuse(field, `must be the path of a CA bundle file (PEM), e.g. ${JSON.stringify(DEFAULT_CA_BUNDLE)}; got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * TLS to an https cluster: the server's certificate must come from a CA of `caBundle` and name `host`
 * (Envoy's DNS match also accepts a wildcard certificate, *.example.com, for x.example.com; an IP
 * address must be among the certificate's IP addresses). Without
 * the validation context Envoy accepts any certificate, and the provider's key goes to whoever answers.
 */
function upstreamTls(host, caBundle) {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      sni: host,
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: caBundle },
          match_typed_subject_alt_names: [{ san_type: isIpAddress(host) ? "IP_ADDRESS" : "DNS", matcher: { exact: host } }],
        },
      },
    },
  };
}

function cluster(name, address, filters, maxRetries, caBundle) {
  const protocolOptions = {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    explicit_http_config: { http_protocol_options: {} },
  };
  if (filters) {
    protocolOptions.http_filters = [
      ...filters,
      { name: "envoy.filters.http.upstream_codec", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" } },
    ];
  }
  const out = {
    name,
    type: isIpAddress(address.host) ? "STATIC" : "STRICT_DNS",
    connect_timeout: "5s",
    circuit_breakers: { thresholds: [{ priority: "DEFAULT", max_retries: maxRetries }] },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: address.host, port_value: address.port } } } }] }],
    },
    typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": protocolOptions },
  };
  if (address.tls) out.transport_socket = upstreamTls(address.host, caBundle);
  return out;
}

/**
 * { route, clusters }: the route action (priority groups + retry policy) and every cluster.
 * `clusters` is { primary: "<cluster name>", addresses: { "<cluster name>": "host:port" | "https://host[:port]" },
 * caBundle?: "<CA bundle path>" }.
 * opts: wasmPath, caBundle (overrides clusters.caBundle), maxRetries, requestBufferBytes, and primaryFilter (default true; false = the lean
 * streamed mode: no filter on the primary's cluster, so the happy path never enters the module, and
 * a backup's report cannot say why the primary was left: trigger "retry"; needs firstPacketTimeout off).
 */
function streamedConfig(pluginIn, clusters, opts = {}) {
  if (pluginIn === null || typeof pluginIn !== "object") refuse("configuration", "must be a JSON object");
  let plugin = pluginIn;
  if (plugin._rules_ !== undefined) refuse("_rules_", "streamed mode: one route per generated configuration; generate one per rule");
  if (plugin.backendErrorsOnly === false) {
    refuse("backendErrorsOnly", "streamed mode: must be true (or absent): the gateway's own replies never reach the router's retries");
  }
  checkBackups(plugin.backups, credentialHeaderList(plugin));
  const codes = retriableStatusCodes(plugin.triggerStatuses);
  if (clusters === null || typeof clusters !== "object") refuse("clusters", "must be a JSON object");
  if (typeof clusters.primary !== "string" || clusters.primary === "") refuse("clusters.primary", "required: the primary's cluster name");
  const addresses = clusters.addresses ?? {};
  const names = [clusters.primary, ...plugin.backups.map((b) => b.service)];
  const cooldown = cooldownSection(plugin, clusters.primary);
  const retry = retrySection(plugin);
  if (retry !== undefined) {
    plugin = { ...plugin, retry };
    RETRY_CLUSTERS.set(plugin, names);
  }
  if (cooldown !== undefined) plugin = { ...plugin, cooldown };
  MARKS.set(plugin, opts.retryMark === undefined ? retryMark(pluginIn) : checkedRetryMark(opts.retryMark));
  if (names.includes(otherMethodsCluster(clusters.primary))) {
    refuse("backups", `streamed mode: the cluster name ${otherMethodsCluster(clusters.primary)} is the generator's own (requests of other methods reach the primary by it): rename that service's cluster`);
  }
  if (new Set(names).size !== names.length) refuse("backups", "streamed mode: every attempt needs its own cluster (a cluster has one upstream filter configuration); names repeat: " + names.join(", "));
  for (const n of names) if (addresses[n] === undefined) refuse(`clusters.addresses.${n}`, "required: \"host:port\" or \"https://host[:port]\"");
  const wasmPath = opts.wasmPath ?? "ai_fallback.wasm";
  const caBundle = caBundlePath(clusters, opts);
  const maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
  const methods = retriedMethods(plugin.methods);
  const route = {
    inline_cluster_specifier_plugin: {
      extension: {
        name: "envoy.router.cluster_specifier_plugin.priority_group",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.priority_group.v3.PriorityGroupClusterSpecifier",
          priority_groups: names.map((n, i) => ({ name: i === 0 ? "primary" : `backup-${i}`, clusters: [{ cluster_name: n, weight: 1 }] })),
        },
      },
    },
    // A streamed answer may run for minutes: no overall deadline.
    timeout: "0s",
  };
  const firstPacket = firstPacketTimeoutMs(plugin) > 0;
  const idleMs = streamIdleTimeoutMs(plugin, firstPacketTimeoutMs(plugin));
  // A stall after the answer began: Envoy's connection manager resets the stream (its response started).
  if (idleMs > 0) route.idle_timeout = `${idleMs / 1000}s`;
  const primaryFilter = opts.primaryFilter ?? true;
  if (typeof primaryFilter !== "boolean") refuse("primaryFilter", `must be true or false, got ${JSON.stringify(primaryFilter)}`);
  if (!primaryFilter) {
    for (const field of ["neverTrigger", "alwaysTrigger"]) {
      if (Array.isArray(plugin[field]) && plugin[field].length > 0) {
        refuse(field, "the lean streamed mode (--no-primary-filter) reads no error body: the primary's answers are retried by " +
          "status alone; generate without --no-primary-filter, or set neverTrigger and alwaysTrigger to []");
      }
    }
  }
  route.retry_policy = retryPolicy(codes, plugin.backups.length, primaryFilter, markOf(plugin));
  if (firstPacket && plugin.firstPacket === "content") {
    // The primary guard marks a 2xx whose first event is an error (host/first_packet_signal.ts STREAM_ERROR_HEADER).
    const retry = route.retry_policy;
    if (!retry.retry_on.includes("retriable-headers")) retry.retry_on += ",retriable-headers";
    retry.retriable_headers = [...(retry.retriable_headers ?? []), { name: STREAM_ERROR_HEADER, string_match: { exact: markOf(plugin) } }];
  }
  if (!primaryFilter && firstPacket) {
    refuse("firstPacketTimeout", "needs the primary's filters (the guard holds its first packet): set it to 0, or generate without --no-primary-filter");
  }
  if (!primaryFilter && cooldown !== undefined) {
    refuse("cooldown", "needs the primary's filter (it records the primary's failures): leave it out, or generate without --no-primary-filter");
  }
  const hedge = hedgeMaxInFlight(plugin) > 0;
  if (retry !== undefined) {
    // Each try's cluster is chosen by the filter state the failed try's filter sets (retryRoute).
    if (hedge) refuse("retry", "not together with hedge in the streamed mode (racing tries share one cluster of priority levels, which a retry of the same service cannot address): remove hedge or retry, or use the dispatch mode");
    if (cooldown !== undefined) refuse("retry", "not together with cooldown in the streamed mode yet: remove cooldown or retry, or use the dispatch mode, which has both");
    if (!primaryFilter) refuse("retry", "needs the primary's filter (it names the primary's next try): generate without --no-primary-filter, or remove retry");
    retryRoute(route, retry, names);
  }
  if (hedge && cooldown !== undefined) {
    // A later start of the chain would need its own services cluster, its priority levels from that service on.
    refuse("cooldown", "not together with hedge in the streamed mode (a chain started past a cooling service has no priority " +
      "levels of its own to race on): remove hedge or cooldown, or use the dispatch mode, which has both");
  }
  if (hedge) {
    // One cluster, the services its priority levels: the next attempt (retry or hedge) goes to the next
    // level. No cluster specifier; the primary keeps a plain cluster of its own for the other methods.
    delete route.inline_cluster_specifier_plugin;
    delete route.retry_policy.refresh_cluster_on_retry;
    route.cluster = SERVICES_CLUSTER;
    route.retry_policy.retry_priority = {
      name: "envoy.retry_priorities.previous_priorities",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig", update_frequency: 1 },
    };
  }
  // Every attempt's cluster runs the upstream role (upstreamWasmFilter); the primary's runs the guard
  // before it with firstPacketTimeout. Upstream filters see the answer in reverse order: the
  // primary's result is recorded before the guard holds a streaming 2xx. Lean (primaryFilter: false):
  // the primary's cluster has no filter at all, so a healthy request never enters the module.
  const primaryAddress = parseAddress(addresses[names[0]], `clusters.addresses.${names[0]}`);
  const out = hedge
    ? [servicesCluster(plugin, names, addresses, wasmPath, maxRetries, caBundle), cluster(names[0], primaryAddress, null, maxRetries, caBundle)]
    : names.map((n, i) => {
      let filters = [upstreamWasmFilter(plugin, i + 1, wasmPath, primaryFilter)];
      if (i === 0 && firstPacket) filters.unshift(primaryGuardFilter(plugin, wasmPath));
      if (i === 0 && !primaryFilter) filters = null;
      return cluster(n, parseAddress(addresses[n], `clusters.addresses.${n}`), filters, maxRetries, caBundle);
    });
  // Requests of other methods go to the primary alone: through a plain cluster whenever the primary's
  // own cluster runs the filter (its configuration says retryingRouteOnly).
  const otherMethods = hedge || !primaryFilter ? names[0] : otherMethodsCluster(names[0]);
  if (otherMethods !== names[0]) out.push(cluster(otherMethods, primaryAddress, null, maxRetries, caBundle));
  if (retry !== undefined) out.push(chainOverCluster());
  // The connection manager's filters before the router.
  const httpFilters = firstPacket || cooldown !== undefined ? [streamedDownstreamFilter(plugin, wasmPath)] : [];
  const methodMatch = { name: ":method", string_match: { safe_regex: { regex: methods.join("|") } } };
  const requestBodyBufferLimit = Math.max(opts.requestBufferBytes ?? DEFAULT_REQUEST_BUFFER_BYTES,
    firstPacket && Number.isInteger(plugin.maxRequestBodyBytes) ? plugin.maxRequestBodyBytes : 0);
  return {
    route,
    // With cooldown: the routes that start the chain past cooling services, before the retrying route.
    cooldown_routes: cooldown === undefined ? [] : cooldownRoutes(route, names, methodMatch, requestBodyBufferLimit),
    // Only model-API requests fall back (the methods in `methods`, POST by default): the retrying route
    // matches them; every other request goes to the primary alone, as in the dispatch mode.
    method_match: methodMatch,
    primary_only_route: { cluster: otherMethods, timeout: "0s" },
    // The ai-fallback-streamed role holds a body up to maxRequestBodyBytes under this limit (past it
    // Envoy would answer 413), and a retry needs the whole body: never less than maxRequestBodyBytes.
    request_body_buffer_limit: requestBodyBufferLimit,
    // On the virtual host: Envoy tells the client how many attempts were made (x-envoy-attempt-count);
    // the retry markers (an error meaning's, the guard's stream error) of an answer no attempt followed never reach it.
    virtual_host_options: { include_attempt_count_in_response: true, response_headers_to_remove: [RETRY_HEADER, STREAM_ERROR_HEADER] },
    // On the HTTP connection manager.
    local_reply_config: exhaustedLocalReply(plugin.hideTopology === true,
      hedge ? "%UPSTREAM_METADATA(ai_fallback:service)%" : retry !== undefined ? `%FILTER_STATE(${CHAIN_LAST_FILTER_STATE}:PLAIN)%` : undefined),
    clusters: out,
    http_filters: httpFilters,
  };
}

/**
 * The connection manager's view of clients: Envoy takes the client's address from the connection
 * (use_remote_address), or from the x-forwarded-for entry `xffNumTrustedHops` proxies in front of it
 * added, and then replaces any x-request-id an external client sends with its own (it is what the log
 * lines name; the module's attempt table never uses it).
 */
function clientAddressOptions(xffNumTrustedHops) {
  if (xffNumTrustedHops === undefined) return { use_remote_address: true };
  if (!Number.isInteger(xffNumTrustedHops) || xffNumTrustedHops < 0) {
    refuse("xffNumTrustedHops", `must be an integer >= 0 (the proxies in front of Envoy that add to x-forwarded-for), got ${JSON.stringify(xffNumTrustedHops)}`);
  }
  return { use_remote_address: true, xff_num_trusted_hops: xffNumTrustedHops };
}

/**
 * A whole Envoy bootstrap around streamedConfig: one listener, the retrying route for `methods`, then the primary alone.
 * opts also: adminPort, listenAddress, listenPort, xffNumTrustedHops (clientAddressOptions).
 */
function streamedBootstrap(plugin, clusters, opts = {}) {
  const { route, cooldown_routes, method_match, primary_only_route, request_body_buffer_limit, virtual_host_options, local_reply_config, clusters: cl, http_filters } =
    streamedConfig(plugin, clusters, opts);
  const routes = [
    ...cooldown_routes,
    { match: { prefix: "/", headers: [method_match] }, request_body_buffer_limit, route },
    { match: { prefix: "/" }, route: primary_only_route },
  ];
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: opts.adminPort ?? 9901 } } },
    static_resources: {
      listeners: [{
        name: "ingress",
        address: { socket_address: { address: opts.listenAddress ?? "0.0.0.0", port_value: opts.listenPort ?? 10000 } },
        filter_chains: [{ filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "ingress",
            ...clientAddressOptions(opts.xffNumTrustedHops),
            local_reply_config,
            route_config: { virtual_hosts: [{ name: "models", domains: ["*"], ...virtual_host_options, routes }] },
            http_filters: [...http_filters, { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
          },
        }] }],
      }],
      clusters: cl,
    },
  };
}

/** Plugin fields the dispatch mode reads and this mode has nothing to apply to, with why (the command prints them). */
const IGNORED_TOP_LEVEL = {
  fallbackDeadline: "the router's retries have no overall deadline here",
  maxKeptBytesPerWorker: "without firstPacketTimeout the module keeps no request copy here; the router keeps the body for retries (request_body_buffer_limit)",
  maxHeldRequestBytes: "only used with backendErrorsOnly: false, which this mode cannot do",
  gatewayTriggerStatuses: "the gateway's own replies never reach the router's retries",
};

/** [{ field, why }] for every field of `plugin` the streamed mode ignores, in the configuration's order. */
function ignoredFields(plugin) {
  const out = [];
  if (plugin === null || typeof plugin !== "object") return out;
  for (const k of Object.keys(plugin)) {
    // With firstPacketTimeout, the ai-fallback-streamed role's scan of a streaming body counts against it.
    if (k === "maxKeptBytesPerWorker" && plugin.firstPacketTimeout) continue;
    if (IGNORED_TOP_LEVEL[k] !== undefined) out.push({ field: k, why: IGNORED_TOP_LEVEL[k] });
  }
  if (Array.isArray(plugin.backups)) {
    plugin.backups.forEach((b, i) => {
      if (b !== null && typeof b === "object" && b.timeout !== undefined) {
        out.push({ field: `backups[${i}].timeout`, why: "an attempt has no timeout of its own here (firstPacketTimeout bounds a streaming one)" });
      }
    });
  }
  return out;
}

module.exports = {
  SERVICES_CLUSTER, SERVICE_MARKER_HEADER, CREDENTIAL_HEADERS, RETRY_HEADER, retryMark, ignoredFields, UPSTREAM_ROOT_ID, STREAMED_ROOT_ID, DEFAULT_REQUEST_BUFFER_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_CA_BUNDLE, StreamedConfigError, retriableStatusCodes, checkBackups, parseAddress, streamedConfig, streamedBootstrap };
