// The streamed mode's per-attempt glue: an upstream HTTP filter on one backup cluster. It rewrites
// the attempt's request for that backup (path, authority, credentials, headers; the body's model at
// its end) and labels the backup's answer. Retrying and streaming the answer are Envoy's router's.
import { BufferType, DataAction, HeadersAction, LogLevel, MapType } from "../abi/enums";
import { HttpContext } from "../abi/context";
import { getBufferBytes, getHeaders, log, removeHeader, replaceHeader, setBufferBytes } from "../abi/hostcalls";
import { Backup } from "../config";
import { RewriteOutcome, rewriteModel } from "../model_rewrite";
import { HEADER_MODEL, HEADER_SERVICE } from "../replay";
import { attemptHeaderEdits } from "./attempt_headers";
import { UpstreamRoot } from "./upstream_root";

export class UpstreamStream extends HttpContext {
  private rewriting: bool = false;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  private get backup(): Backup | null {
    return (this.root as UpstreamRoot).backup;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const backup = this.backup;
    if (backup == null) return HeadersAction.Continue;
    const edits = attemptHeaderEdits(getHeaders(MapType.HttpRequestHeaders), backup);
    for (let i = 0; i < edits.removals.length; i++) removeHeader(MapType.HttpRequestHeaders, edits.removals[i]);
    for (let i = 0; i < edits.sets.length; i++) replaceHeader(MapType.HttpRequestHeaders, edits.sets[i].name, edits.sets[i].value);
    this.rewriting = backup.modelLiteral !== null && !endOfStream;
    return HeadersAction.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataAction {
    if (!this.rewriting) return DataAction.Continue;
    // The model may sit anywhere in the body: rewrite it whole, once it is all here.
    if (!endOfStream) return DataAction.StopIterationAndBuffer;
    this.rewriting = false;
    const backup = this.backup!;
    const body = getBufferBytes(BufferType.HttpRequestBody, 0, bodySize);
    const result = rewriteModel(body, backup.modelLiteral!);
    if (result.outcome == RewriteOutcome.Rewritten) {
      setBufferBytes(BufferType.HttpRequestBody, 0, bodySize, changetype<usize>(result.body), result.body.byteLength);
    } else {
      log(LogLevel.Info, "streamed backup " + backup.service + ": body sent as it is (no top-level JSON \"model\")");
    }
    return DataAction.Continue;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersAction {
    const backup = this.backup;
    if (backup == null) return HeadersAction.Continue;
    replaceHeader(MapType.HttpResponseHeaders, HEADER_SERVICE, backup.serviceLabel);
    replaceHeader(MapType.HttpResponseHeaders, HEADER_MODEL, backup.modelLabel);
    return HeadersAction.Continue;
  }
}
