// A proxy-wasm module that does nothing: the project's own ABI exports (assembly/abi/) with the
// base contexts, which accept any configuration and let every request and response continue.
// Built into build/noop.wasm. Two uses: `npm run check:noop` runs the e2e tests against it (a test
// that still passes without the filter checks nothing of the filter, unless it says it tests
// pass-through), and `npm run bench` takes it as the runtime baseline (a VM that is called but
// does no work).
import "../../assembly/abi/abort";

export {
  // The order of these names is the module's export order, which picks the ABI (see exports.ts).
  proxy_abi_version_0_2_100, proxy_abi_version_0_2_1, malloc, proxy_on_memory_allocate,
  proxy_on_context_create, proxy_on_vm_start, proxy_on_configure, proxy_on_tick, proxy_on_request_headers,
  proxy_on_request_body, proxy_on_request_trailers,
  proxy_on_response_headers, proxy_on_response_body, proxy_on_response_trailers,
  proxy_on_http_call_response, proxy_on_log, proxy_on_delete,
} from "../../assembly/abi/exports";
