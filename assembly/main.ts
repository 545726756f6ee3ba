// Entry point: the proxy-wasm exports, with the root and stream contexts as the factories. The
// plugin's root_id picks the role: "ai-fallback-upstream" is the per-cluster upstream filter (a
// streamed backup's, or the primary guard: assembly/upstream/), "ai-fallback-streamed" the streamed
// mode's downstream filter (assembly/streamed/); anything else is the fallback filter.
// Loaded so that --use abort=assembly/abi/abort/onAbort can name it.
import "./abi/abort";
import { HttpContext, RootContext } from "./abi/context";
import { setAbandonedCallHandler, setRootContextFactory } from "./abi/registry";
import { FallbackRoot } from "./dispatch/fallback_root";
import { FallbackStream } from "./dispatch/fallback_stream";
import { abandonedCallAnswered } from "./dispatch/abandoned_calls";
import { getStringProperty } from "./abi/hostcalls";
import { UPSTREAM_ROOT_ID, UpstreamRoot } from "./upstream/upstream_root";
import { STREAMED_ROOT_ID, StreamedRoot } from "./streamed/streamed_root";
import { StreamedStream } from "./streamed/streamed_stream";
import { GuardStream } from "./upstream/guard_stream";
import { UpstreamStream } from "./upstream/upstream_stream";

export {
  // The order of these names is the module's export order, which picks the ABI (see exports.ts).
  proxy_abi_version_0_2_100, proxy_abi_version_0_2_1, malloc, proxy_on_memory_allocate,
  proxy_on_context_create, proxy_on_vm_start, proxy_on_configure, proxy_on_tick, proxy_on_request_headers,
  proxy_on_request_body, proxy_on_request_trailers,
  proxy_on_response_headers, proxy_on_response_body, proxy_on_response_trailers,
  proxy_on_http_call_response, proxy_on_log, proxy_on_delete,
} from "./abi/exports";

function createRoot(id: u32): RootContext {
  // A root context is created with its plugin current, so its root_id can be read here.
  const rootId = getStringProperty(["plugin_root_id"]);
  if (rootId !== null && rootId == UPSTREAM_ROOT_ID) return new UpstreamRoot(id);
  if (rootId !== null && rootId == STREAMED_ROOT_ID) return new StreamedRoot(id);
  return new FallbackRoot(id);
}

function createStream(id: u32, root: FallbackRoot): HttpContext {
  return new FallbackStream(id, root);
}

function createGuardStream(id: u32, root: UpstreamRoot): HttpContext {
  return new GuardStream(id, root);
}

function createAttemptStream(id: u32, root: UpstreamRoot): HttpContext {
  return new UpstreamStream(id, root);
}

function createStreamedStream(id: u32, root: StreamedRoot): HttpContext {
  return new StreamedStream(id, root);
}

FallbackRoot.streamFactory = createStream;
UpstreamRoot.guardStreamFactory = createGuardStream;
UpstreamRoot.attemptStreamFactory = createAttemptStream;
StreamedRoot.streamFactory = createStreamedStream;
setAbandonedCallHandler(abandonedCallAnswered);
setRootContextFactory(createRoot);
