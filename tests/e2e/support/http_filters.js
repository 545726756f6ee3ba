// Ready-made Envoy HTTP filters and connection-manager settings for end-to-end tests that check
// what the filters around ai-fallback see (startEnvoy's extraHttpFilters / connectionManager).
"use strict";

const CORS_ORIGIN = "https://chat.example";

/** The CORS filter; the policy itself sits on the route (corsRoutePolicy). */
const cors = {
  name: "envoy.filters.http.cors",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" },
};

/** A route's typed_per_filter_config allowing CORS_ORIGIN. */
const corsRoutePolicy = {
  "envoy.filters.http.cors": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
    allow_origin_string_match: [{ exact: CORS_ORIGIN }],
    allow_methods: "POST, OPTIONS",
    expose_headers: "x-ai-fallback-service, x-ai-fallback-trigger",
  },
};

/** Sets `name: value` on every response it encodes. */
function responseHeaderMutation(name, value) {
  return {
    name: "envoy.filters.http.header_mutation",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
      mutations: {
        response_mutations: [{ append: { header: { key: name, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" } }],
      },
    },
  };
}

/** gzip for the compressor's default content types (JSON, text, ...; not text/event-stream). */
const gzipCompressor = {
  name: "envoy.filters.http.compressor",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
    compressor_library: {
      name: "gzip",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip" },
    },
  },
};

/** local_reply_config turning every local reply into JSON: {"code":..,"error":"<the reply's body>"}. */
const jsonLocalReplies = {
  local_reply_config: { body_format: { json_format: { code: "%RESPONSE_CODE%", error: "%LOCAL_REPLY_BODY%" } } },
};

/**
 * The module's primary guard (docs/primary-guard.md): an upstream filter for the primary's
 * cluster (a cluster spec's upstreamFilters). `guard`: the guard's fields, e.g. { holdFirstPacket: false }.
 * allowOnHeadersStopIteration: false shows what a guard without it does (its held streams never see a body).
 */
function primaryGuard(guard = {}, { wasmPath = require("./envoy").WASM_PATH, allowOnHeadersStopIteration = true } = {}) {
  return {
    name: "envoy.filters.http.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: {
        name: "ai-fallback-guard",
        root_id: "ai-fallback-upstream",
        vm_config: { vm_id: "ai-fallback", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasmPath } } },
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify({ guard }) },
        allow_on_headers_stop_iteration: allowOnHeadersStopIteration,
      },
    },
  };
}

const LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

// A local rate limiter after the wasm filter; routes opt in with a one-token bucket of their own.
const rateLimiterFilter = { name: "envoy.filters.http.local_ratelimit", typed_config: { "@type": LIMIT_TYPE, stat_prefix: "limiter" } };
const oneRequestPerHour = {
  "envoy.filters.http.local_ratelimit": {
    "@type": LIMIT_TYPE,
    stat_prefix: "limiter",
    token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: "3600s" },
    filter_enabled: { default_value: { numerator: 100, denominator: "HUNDRED" } },
    filter_enforced: { default_value: { numerator: 100, denominator: "HUNDRED" } },
  },
};

/** What the encoder filters before ai-fallback (CORS, responseHeaderMutation("x-mutated", "yes")) left on a response. */
function seenByFilters(res) {
  return { cors: res.headers["access-control-allow-origin"] ?? null, mutated: res.headers["x-mutated"] ?? null };
}
const SEEN = { cors: CORS_ORIGIN, mutated: "yes" };
const UNSEEN = { cors: null, mutated: null };

module.exports = { seenByFilters, SEEN, UNSEEN, primaryGuard, LIMIT_TYPE, rateLimiterFilter, oneRequestPerHour, CORS_ORIGIN, cors, corsRoutePolicy, responseHeaderMutation, gzipCompressor, jsonLocalReplies };
