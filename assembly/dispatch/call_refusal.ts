// What the log says when the host refuses to dispatch a backup call. Pure.
import { WasmResult } from "../abi/enums";

/**
 * The log text for a refused `proxy_http_call` to `service`. Envoy answers BadArgument when it has no
 * cluster of that name (envoyproxy/envoy and higress-group/envoy source/extensions/common/wasm/
 * context.cc, Context::httpCall; its other BadArgument cases, a negative timeout or a missing
 * :method/:path/:authority, cannot happen here). In Higress the usual cause is
 * `global.onlyPushRouteCluster` (true by default, higress-group/higress helm/core/values.yaml):
 * the gateway gets no cluster for a service that no route uses.
 */
export function refusedCallText(service: string, status: WasmResult): string {
  if (status == WasmResult.BadArgument) {
    return "backup " + service + " could not be called: unknown cluster (Envoy has no cluster of that name). " +
      "In Higress, global.onlyPushRouteCluster (true by default) pushes only clusters that some route uses: " +
      "give the service a route, or set global.onlyPushRouteCluster=false";
  }
  // Envoy answers InternalFailure when its async client failed the call at once (no healthy
  // upstream, a circuit breaker overflow): the cluster exists, but no call went out.
  if (status == WasmResult.InternalFailure) {
    return "backup " + service + " could not be called: Envoy refused the call at once (no healthy upstream, or a " +
      "circuit breaker overflow)";
  }
  return "backup " + service + " could not be called (the host refused the call, status " + (<i32>status).toString() + ")";
}
