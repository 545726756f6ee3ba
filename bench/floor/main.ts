// The dispatch fallback's floor (bench only, never shipped): the least a proxy-wasm module must do
// for the fallback the bench measures, so that the gap between it and the filter is the filter's
// own share. It keeps the request's headers and body, reads the primary's `:status`, and on a
// 4xx/5xx holds the response, makes the same proxy_http_call to the cluster "backup" (the kept
// headers with `:path` set to /v1/chat/completions, the kept body), and swaps the answer in the
// way the filter does (its headers replace the held response's, its body replaces the held body).
// Nothing else: no configuration, no policy, no model rewrite, no report headers, no counters, no
// log lines, no garbage collector (no managed objects: per-stream state lives in static tables,
// copies in the allocator's blocks). Built into build/floor.wasm by the bench (asconfig target `floor`).
import "../../assembly/abi/abort";
import { BufferType, DataAction, HeadersAction, MapType, StreamType, WasmResult } from "../../assembly/abi/enums";
import * as abi from "../../assembly/abi/imports";

// The backup call the bench's fallback configuration makes (bench/fleet.mjs FALLBACK_CONFIG).
const CLUSTER = "backup";
const PATH = "/v1/chat/completions";
const CALL_TIMEOUT_MS: u32 = 30000;

// Per-stream state in direct-mapped tables: Envoy numbers contexts and call tokens sequentially,
// so the few streams in flight never share a slot; a stream that finds its slot taken passes through.
const SLOTS: u32 = 4096;
const SLOT_BYTES: u32 = 40;
const streams = memory.data(SLOTS * SLOT_BYTES);
const tokenOwners = memory.data(SLOTS * 4);
// Slot fields (byte offsets): pointer and size pairs of the host's blocks this stream keeps.
const ID: usize = 0;
const TOKEN: usize = 4;
const HEADERS: usize = 8;
const BODY: usize = 16;
const ANSWER: usize = 24;
const SIZE: usize = 4;
/** The answer has been swapped into the response headers; its body goes into the next body chunk. */
const SWAPPED: usize = 32;

// The host writes what it returns here.
const RETURN_PTR = memory.data(4);
const RETURN_SIZE = memory.data(4);
const NO_TRAILERS = memory.data(4);

/** An ASCII string's bytes, made once at start (the module allocates no other object, and never collects). */
class Bytes {
  readonly ptr: usize;
  readonly size: usize;
  constructor(text: string) {
    this.size = <usize>text.length;
    this.ptr = heap.alloc(this.size);
    for (let i = 0; i < text.length; i++) store<u8>(this.ptr + <usize>i, <u8>text.charCodeAt(i));
  }
}
const CLUSTER_BYTES = new Bytes(CLUSTER);
const PATH_BYTES = new Bytes(PATH);
const PATH_NAME = new Bytes(":path");
const STATUS_NAME = new Bytes(":status");

function slotOf(id: u32): usize {
  return streams + <usize>((id & (SLOTS - 1)) * SLOT_BYTES);
}

function ownerOf(token: u32): usize {
  return tokenOwners + <usize>((token & (SLOTS - 1)) * 4);
}

/** This stream's slot, or 0 when it has none. */
function find(id: u32): usize {
  const slot = slotOf(id);
  return load<u32>(slot + ID) == id ? slot : 0;
}

/** Keeps the block the host returned in `slot` at `field`; false when it returned none. */
function keep(status: u32, slot: usize, field: usize): bool {
  if (status != WasmResult.Ok || load<u32>(RETURN_PTR) == 0) return false;
  store<u32>(slot + field, load<u32>(RETURN_PTR));
  store<u32>(slot + field + SIZE, load<u32>(RETURN_SIZE));
  return true;
}

function release(slot: usize): void {
  const token = load<u32>(slot + TOKEN);
  if (token != 0) store<u32>(ownerOf(token), 0);
  for (let field: usize = HEADERS; field <= ANSWER; field += 8) {
    const ptr = <usize>load<u32>(slot + field);
    if (ptr != 0) heap.free(ptr);
  }
  memory.fill(slot, 0, SLOT_BYTES);
}

export function proxy_abi_version_0_2_1(): void {}

export function malloc(size: usize): usize {
  return heap.alloc(size);
}

export function proxy_on_request_headers(id: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  const slot = slotOf(id);
  if (load<u32>(slot + ID) != 0) return HeadersAction.Continue;
  store<u32>(slot + ID, id);
  keep(abi.proxy_get_header_map_pairs(MapType.HttpRequestHeaders, RETURN_PTR, RETURN_SIZE), slot, HEADERS);
  return HeadersAction.Continue;
}

export function proxy_on_request_body(id: u32, size: u32, endOfStream: bool): DataAction {
  const slot = find(id);
  if (slot == 0 || size == 0) return DataAction.Continue;
  const kept = <usize>load<u32>(slot + BODY);
  const keptSize = <usize>load<u32>(slot + BODY + SIZE);
  if (!keep(abi.proxy_get_buffer_bytes(BufferType.HttpRequestBody, 0, size, RETURN_PTR, RETURN_SIZE), slot, BODY)) {
    return DataAction.Continue;
  }
  if (kept != 0) {
    // A later chunk: appended to what was kept.
    const chunk = <usize>load<u32>(RETURN_PTR);
    const chunkSize = <usize>load<u32>(RETURN_SIZE);
    const joined = heap.realloc(kept, keptSize + chunkSize);
    memory.copy(joined + keptSize, chunk, chunkSize);
    heap.free(chunk);
    store<u32>(slot + BODY, <u32>joined);
    store<u32>(slot + BODY + SIZE, <u32>(keptSize + chunkSize));
  }
  return DataAction.Continue;
}

export function proxy_on_response_headers(id: u32, headerCount: u32, endOfStream: bool): HeadersAction {
  const slot = find(id);
  if (slot == 0 || load<u32>(slot + SWAPPED) != 0 || endOfStream) return HeadersAction.Continue;
  if (abi.proxy_get_header_map_value(MapType.HttpResponseHeaders, STATUS_NAME.ptr, STATUS_NAME.size,
    RETURN_PTR, RETURN_SIZE) != WasmResult.Ok) return HeadersAction.Continue;
  const status = <usize>load<u32>(RETURN_PTR);
  const first = load<u8>(status);
  heap.free(status);
  if (first < 0x34) return HeadersAction.Continue; // below 400
  return dispatch(id, slot) ? HeadersAction.StopAllIterationAndWatermark : HeadersAction.Continue;
}

/** The backup call: the kept headers (wire format) with the value of `:path` replaced, the kept body. */
function dispatch(id: u32, slot: usize): bool {
  const headers = <usize>load<u32>(slot + HEADERS);
  if (headers == 0) return false;
  const headersSize = <usize>load<u32>(slot + HEADERS + SIZE);
  const count = <usize>load<u32>(headers);
  const out = heap.alloc(headersSize + PATH_BYTES.size);
  memory.copy(out, headers, 4 + 8 * count);
  let from = headers + 4 + 8 * count;
  let to = out + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(headers + 4 + 8 * i);
    const valueSize = <usize>load<u32>(headers + 8 + 8 * i);
    const isPath = nameSize == PATH_NAME.size && memory.compare(from, PATH_NAME.ptr, nameSize) == 0;
    memory.copy(to, from, nameSize + 1);
    to += nameSize + 1;
    from += nameSize + 1;
    if (isPath) {
      store<u32>(out + 8 + 8 * i, <u32>PATH_BYTES.size);
      memory.copy(to, PATH_BYTES.ptr, PATH_BYTES.size);
      store<u8>(to + PATH_BYTES.size, 0);
      to += PATH_BYTES.size + 1;
    } else {
      memory.copy(to, from, valueSize + 1);
      to += valueSize + 1;
    }
    from += valueSize + 1;
  }
  const result = abi.proxy_http_call(CLUSTER_BYTES.ptr, CLUSTER_BYTES.size, out, to - out,
    load<u32>(slot + BODY), load<u32>(slot + BODY + SIZE), NO_TRAILERS, 4, CALL_TIMEOUT_MS, RETURN_PTR);
  heap.free(out);
  if (result != WasmResult.Ok) return false;
  const token = load<u32>(RETURN_PTR);
  store<u32>(slot + TOKEN, token);
  store<u32>(ownerOf(token), id);
  return true;
}

export function proxy_on_http_call_response(root: u32, token: u32, headerCount: u32, bodySize: u32, trailers: u32): void {
  const owner = ownerOf(token);
  const id = load<u32>(owner);
  if (id == 0) return;
  store<u32>(owner, 0);
  const slot = find(id);
  if (slot == 0 || load<u32>(slot + TOKEN) != token) return;
  store<u32>(slot + TOKEN, 0);
  abi.proxy_set_effective_context(id);
  // A failed call (no headers): the held primary response goes on.
  if (headerCount > 0 &&
    abi.proxy_get_header_map_pairs(MapType.HttpCallResponseHeaders, RETURN_PTR, RETURN_SIZE) == WasmResult.Ok) {
    // The answer's headers, in the wire format they came in, replace the held response's.
    const answerHeaders = <usize>load<u32>(RETURN_PTR);
    abi.proxy_set_header_map_pairs(MapType.HttpResponseHeaders, answerHeaders, load<u32>(RETURN_SIZE));
    heap.free(answerHeaders);
    if (bodySize > 0) {
      keep(abi.proxy_get_buffer_bytes(BufferType.HttpCallResponseBody, 0, bodySize, RETURN_PTR, RETURN_SIZE), slot, ANSWER);
    }
    store<u32>(slot + SWAPPED, 1);
  }
  abi.proxy_continue_stream(StreamType.Response);
}

export function proxy_on_response_body(id: u32, size: u32, endOfStream: bool): DataAction {
  const slot = find(id);
  if (slot == 0 || load<u32>(slot + SWAPPED) == 0) return DataAction.Continue;
  // The first body chunk after the swap becomes the answer's body; what follows of the primary is dropped.
  const answer = <usize>load<u32>(slot + ANSWER);
  abi.proxy_set_buffer_bytes(BufferType.HttpResponseBody, 0, size, answer, answer == 0 ? 0 : load<u32>(slot + ANSWER + SIZE));
  if (answer != 0) {
    heap.free(answer);
    store<u32>(slot + ANSWER, 0);
  }
  return DataAction.Continue;
}

/** The stream's end (Envoy 1.40 calls it right after proxy_on_done): its copies go, a pending call is forgotten. */
export function proxy_on_delete(id: u32): void {
  const slot = find(id);
  if (slot != 0) release(slot);
}
