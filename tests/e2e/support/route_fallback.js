// Envoy's custom_response filter as Higress places it (first in the chain, so last on the way
// out), with a matcher on the handoff marker. Upstream Envoy has no fork fields of Higress's
// redirect policy, so here a marked answer is answered by a local response policy: what reaches
// the client shows that the marked answer reached the filter placed first.
const MARKER = "x-ai-fallback-handoff";
const HANDED_OVER_BODY = "handed to the route fallback";

const markerMatcher = (onMatch) => ({
  matcher_list: {
    matchers: [
      {
        predicate: {
          single_predicate: {
            input: {
              name: "handoff-marker",
              typed_config: { "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpResponseHeaderMatchInput", header_name: MARKER },
            },
            value_match: { safe_regex: { google_re2: {}, regex: ".+" } },
          },
        },
        on_match: onMatch,
      },
    ],
  },
});

/** custom_response answering every marked response with HANDED_OVER_BODY, keeping its status. */
const customResponseLocal = {
  name: "envoy.filters.http.custom_response",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.custom_response.v3.CustomResponse",
    custom_response_matcher: markerMatcher({
      action: {
        name: "handed-over",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.http.custom_response.local_response_policy.v3.LocalResponsePolicy",
          body: { inline_string: HANDED_OVER_BODY },
        },
      },
    }),
  },
};

/** Whether a response is custom_response's answer to a marked one. */
const handedOver = (res) => res.text === HANDED_OVER_BODY;

module.exports = { MARKER, HANDED_OVER_BODY, customResponseLocal, markerMatcher, handedOver };

/**
 * custom_response redirecting every marked response as Higress's route fallback does: the request
 * is recreated with `x-higress-fallback-from: <fromRoute>`. Upstream Envoy's redirect policy has no
 * use_original_request_uri (the uri is fixed here) and turns the method into GET (Higress's fork
 * keeps it: restoreMethod below puts it back).
 */
function customResponseRedirect(fromRoute, uriPath = "/v1/chat/completions") {
  return {
    name: "envoy.filters.http.custom_response",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.custom_response.v3.CustomResponse",
      custom_response_matcher: markerMatcher({
        action: {
          name: "route-fallback",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.http.custom_response.redirect_policy.v3.RedirectPolicy",
            uri: `http://fallback.local${uriPath}`,
            request_headers_to_add: [{ header: { key: "x-higress-fallback-from", value: fromRoute }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }],
          },
        },
      }),
    },
  };
}

/** A Lua filter that puts back the POST upstream custom_response's redirect turned into a GET. */
const restoreMethod = {
  name: "envoy.filters.http.lua",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    default_source_code: {
      inline_string: `function envoy_on_request(handle)
  if handle:headers():get("x-higress-fallback-from") ~= nil and handle:headers():get(":method") == "GET" then
    handle:headers():replace(":method", "POST")
  end
end`,
    },
  },
};

module.exports.customResponseRedirect = customResponseRedirect;
module.exports.restoreMethod = restoreMethod;
