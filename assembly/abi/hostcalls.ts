// One typed wrapper per host function. Here each status becomes a value (NotFound -> null) or an
// error result; what the host hands back goes where host_memory.ts prepared it (copied out and freed, or kept).
import * as imports from "./imports";
import { BufferType, LogLevel, MapType, MetricType, StreamType, WasiClock, WasmResult } from "./enums";
import { Header } from "../core/headers";
import { deserializeHeaders, serializeHeaders } from "../core/header_pairs";
import { byteStringToBuffer, statusCodeAt } from "../core/bytes";
import {
  RETURN_PTR, RETURN_SIZE, RETURN_WORD, NAME_ROOM, NAME_SPACE, VALUE_ROOM, VALUE_SPACE, clearReturn, freeReturned, intoNewBuffer,
  intoSmallResult, intoTarget, placed, resetTargets, takeBuffer, takeByteString,
} from "./host_memory";
import { ByteSink } from "../core/byte_sink";
import { sharedByteString } from "../core/header_names";

// --- logging and time ---

/** Logs text (encoded as UTF-8). */
export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  imports.proxy_log(level, changetype<usize>(bytes), bytes.byteLength);
}

/** Logs a byte string (see bytes.ts) as its bytes: header values and labels appear exactly. */
export function logBytes(level: LogLevel, message: string): void {
  const bytes = byteStringToBuffer(message);
  imports.proxy_log(level, changetype<usize>(bytes), bytes.byteLength);
}

/**
 * Whether the host writes lines at `level` now (Envoy: its `wasm` logger's level, which the admin
 * interface can change at run time), so that the text of a line it would drop is not built.
 */
export function logs(level: LogLevel): bool {
  store<u32>(RETURN_WORD, 0);
  if (imports.proxy_get_log_level(RETURN_WORD) != WasmResult.Ok) return true;
  return <u32>level >= load<u32>(RETURN_WORD);
}

/**
 * Milliseconds on a monotonic clock (WASI clock_time_get): for deadlines and elapsed times, which a
 * wall-clock step must neither fire early nor delay. Its zero is arbitrary; it never goes back.
 */
export function monotonicMs(): u64 {
  store<u64>(RETURN_WORD, 0);
  if (imports.clock_time_get(WasiClock.Monotonic, 1_000_000, RETURN_WORD) == 0) {
    return load<u64>(RETURN_WORD) / 1_000_000;
  }
  // A host without it (Envoy has it): wall-clock time rather than a trap.
  imports.proxy_get_current_time_nanoseconds(RETURN_WORD);
  return load<u64>(RETURN_WORD) / 1_000_000;
}

export function setTickPeriodMs(periodMs: u32): void {
  imports.proxy_set_tick_period_milliseconds(periodMs);
}

// --- buffers ---

/** Bytes [start, start+length) of a buffer; an empty buffer when there is none. */
export function getBufferBytes(type: BufferType, start: u32, length: u32): ArrayBuffer {
  intoNewBuffer();
  const status = imports.proxy_get_buffer_bytes(type, start, length, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  if (status != WasmResult.Ok) return new ArrayBuffer(0);
  return takeBuffer();
}

/**
 * Takes bytes [start, start+length) of a buffer into `sink` without copying: the sink adopts the
 * block the host allocated through our malloc. Returns how many.
 */
export function takeBufferBytes(type: BufferType, start: u32, length: u32, sink: ByteSink): i32 {
  clearReturn();
  const status = imports.proxy_get_buffer_bytes(type, start, length, RETURN_PTR, RETURN_SIZE);
  const ptr = load<usize>(RETURN_PTR);
  if (status != WasmResult.Ok || ptr == 0) {
    sink.clear();
    return 0;
  }
  const size = <i32>load<usize>(RETURN_SIZE);
  sink.adopt(ptr, size);
  return size;
}

/**
 * Appends bytes [start, start+length) of a buffer to `sink`, written there by the host (the host's
 * allocation is the sink's own free space: no second copy, no block to allocate and free); returns how many.
 */
export function appendBufferBytes(type: BufferType, start: u32, length: u32, sink: ByteSink): i32 {
  if (length == 0) return 0;
  sink.resize(sink.capacityFor(<i32>length));
  const target = sink.ptr + <usize>sink.length;
  intoTarget(target, <usize>(sink.capacity - sink.length));
  const status = imports.proxy_get_buffer_bytes(type, start, length, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  const ptr = load<usize>(RETURN_PTR);
  if (status != WasmResult.Ok || ptr == 0) return 0;
  const size = <i32>load<usize>(RETURN_SIZE);
  if (ptr == target) {
    sink.length += size;
  } else {
    sink.append(ptr, size);
    heap.free(ptr);
  }
  return size;
}

/** Replaces bytes [start, start+length) of a buffer (the whole buffer: 0, its size) with [dataPtr, dataPtr+dataSize). */
export function setBufferBytes(type: BufferType, start: u32, length: u32, dataPtr: usize, dataSize: i32): WasmResult {
  return imports.proxy_set_buffer_bytes(type, start, length, dataPtr, dataSize);
}

// --- header maps ---

/** Replaces every header of a map (pseudo-headers such as `:status` included) with `headers`. */
export function setHeaders(type: MapType, headers: Header[]): WasmResult {
  const bytes = serializeHeaders(headers);
  return imports.proxy_set_header_map_pairs(type, changetype<usize>(bytes), bytes.byteLength);
}

/** Replaces every header of a map with `pairs` (a header map in the wire format). */
export function setHeaderPairs(type: MapType, pairs: ArrayBuffer): WasmResult {
  return imports.proxy_set_header_map_pairs(type, changetype<usize>(pairs), pairs.byteLength);
}

export function getHeaders(type: MapType): Header[] {
  const raw = getHeadersRaw(type);
  return deserializeHeaders(changetype<usize>(raw), raw.byteLength);
}

/** The raw wire bytes of a header map, for keeping a copy without parsing it. */
export function getHeadersRaw(type: MapType): ArrayBuffer {
  intoNewBuffer();
  const status = imports.proxy_get_header_map_pairs(type, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  if (status != WasmResult.Ok) return new ArrayBuffer(0);
  return takeBuffer();
}

/** One header's value (a byte string), or null when absent. `name` is lower case ASCII. */
export function getHeader(type: MapType, name: string): string | null {
  const key = placed(name, NAME_SPACE, NAME_ROOM);
  intoSmallResult();
  const status = imports.proxy_get_header_map_value(type, key, name.length, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  if (status != WasmResult.Ok) return null;
  return takeByteString();
}

// ":status", as proxy_get_header_map_value takes a key.
const STATUS_KEY = memory.data<u8>([0x3a, 0x73, 0x74, 0x61, 0x74, 0x75, 0x73]);

/**
 * The `:status` of a response header map as a number; 0 when absent or not three digits. Read on
 * every response, so with no allocation of its own (no key, no string).
 */
export function responseStatus(type: MapType): i32 {
  intoSmallResult();
  const result = imports.proxy_get_header_map_value(type, STATUS_KEY, 7, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  if (result != WasmResult.Ok) return 0;
  const ptr = load<usize>(RETURN_PTR);
  if (ptr == 0) return 0;
  const status = statusCodeAt(ptr, load<usize>(RETURN_SIZE));
  freeReturned(ptr);
  return status;
}

export function replaceHeader(type: MapType, name: string, value: string): void {
  const key = placed(name, NAME_SPACE, NAME_ROOM);
  const val = placed(value, VALUE_SPACE, VALUE_ROOM);
  imports.proxy_replace_header_map_value(type, key, name.length, val, value.length);
}

/** replaceHeader with the name and value already encoded (headers a filter sets on every request, encoded once). */
export function replaceHeaderBytes(type: MapType, key: ArrayBuffer, val: ArrayBuffer): void {
  imports.proxy_replace_header_map_value(type, changetype<usize>(key), key.byteLength, changetype<usize>(val), val.byteLength);
}

export function removeHeader(type: MapType, name: string): void {
  imports.proxy_remove_header_map_value(type, placed(name, NAME_SPACE, NAME_ROOM), name.length);
}

// --- properties ---

/**
 * A property path (e.g. ["response", "code_details"]) as proxy_get_property takes it: the segments'
 * UTF-8 bytes joined by NUL. Paths read on every request are encoded once, at start.
 */
export function propertyPath(segments: string[]): ArrayBuffer {
  let size = 0;
  for (let i = 0; i < segments.length; i++) size += String.UTF8.byteLength(segments[i]) + (i > 0 ? 1 : 0);
  const encoded = new ArrayBuffer(size);
  let at = changetype<usize>(encoded);
  for (let i = 0; i < segments.length; i++) {
    if (i > 0) store<u8>(at++, 0);
    const segment = String.UTF8.encode(segments[i]);
    memory.copy(at, changetype<usize>(segment), segment.byteLength);
    at += segment.byteLength;
  }
  return encoded;
}

/** A property by its encoded path (propertyPath), as bytes; null if absent. */
export function getPropertyAt(path: ArrayBuffer): ArrayBuffer | null {
  intoNewBuffer();
  const status = imports.proxy_get_property(changetype<usize>(path), path.byteLength, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  if (status != WasmResult.Ok) return null;
  return takeBuffer();
}

/** Reads a property into the small-result scratch (its pointer and size at RETURN_PTR/RETURN_SIZE); false if absent. */
function readPropertyIntoScratch(path: ArrayBuffer): bool {
  intoSmallResult();
  const status = imports.proxy_get_property(changetype<usize>(path), path.byteLength, RETURN_PTR, RETURN_SIZE);
  resetTargets();
  return status == WasmResult.Ok;
}

/** A property by its encoded path (propertyPath), as a byte string; null if absent. */
export function getStringPropertyAt(path: ArrayBuffer): string | null {
  if (!readPropertyIntoScratch(path)) return null;
  return takeByteString();
}

/** An 8-byte property (a u64, as Envoy and setU64Property write it), read without allocating; `absent` when missing or of another size. */
export function getU64PropertyAt(path: ArrayBuffer, absent: u64): u64 {
  if (!readPropertyIntoScratch(path)) return absent;
  const ptr = load<usize>(RETURN_PTR);
  const size = load<usize>(RETURN_SIZE);
  const value = ptr != 0 && size == 8 ? load<u64>(ptr) : absent;
  if (ptr != 0) freeReturned(ptr);
  return value;
}

/**
 * A property by its encoded path, as a byte string shared with earlier reads of the same text
 * (core/header_names.ts): for properties with few values (response.code_details); null if absent.
 */
export function getSharedStringPropertyAt(path: ArrayBuffer): string | null {
  if (!readPropertyIntoScratch(path)) return null;
  const ptr = load<usize>(RETURN_PTR);
  if (ptr == 0) return "";
  const text = sharedByteString(ptr, load<usize>(RETURN_SIZE));
  freeReturned(ptr);
  return text;
}

/** Whether a property by its encoded path has a value (read into scratch memory, not kept). */
export function hasPropertyAt(path: ArrayBuffer): bool {
  const found = readPropertyIntoScratch(path);
  freeReturned(load<usize>(RETURN_PTR));
  return found;
}

/** A property by its path segments (e.g. ["response", "code_details"]), as bytes; null if absent. */
export function getProperty(path: string[]): ArrayBuffer | null {
  return getPropertyAt(propertyPath(path));
}

export function getStringProperty(path: string[]): string | null {
  return getStringPropertyAt(propertyPath(path));
}

const U64_VALUE = memory.data(8);

/** Sets a one-segment property to a u64's 8 bytes (as getU64PropertyAt reads it), without allocating. */
export function setU64Property(name: ArrayBuffer, value: u64): WasmResult {
  store<u64>(U64_VALUE, value);
  return <WasmResult>imports.proxy_set_property(changetype<usize>(name), name.byteLength, U64_VALUE, 8);
}

/**
 * Sets a one-segment property of the stream (Envoy keeps it as filter state `wasm.<name>` of the
 * downstream request, which the request's upstream filters read too). Name and value as UTF-8 bytes.
 */
export function setProperty(name: ArrayBuffer, value: ArrayBuffer): WasmResult {
  return <WasmResult>imports.proxy_set_property(changetype<usize>(name), name.byteLength, changetype<usize>(value), value.byteLength);
}

/** setProperty with a byte string value, handed to the host from scratch memory when it fits (no buffer of its own). */
export function setStringProperty(name: ArrayBuffer, value: string): WasmResult {
  const at = placed(value, VALUE_SPACE, VALUE_ROOM);
  return <WasmResult>imports.proxy_set_property(changetype<usize>(name), name.byteLength, at, value.length);
}

/**
 * Declares a one-segment property whose filter state lives as long as the downstream request
 * (Envoy's `declare_property` foreign function, LifeSpan DownstreamRequest): Envoy keeps it across a
 * recreated stream (an internal redirect). Called on a root context: a stream's setProperty finds
 * the declaration there. The argument is the DeclarePropertyArguments message
 * (envoy source/extensions/common/wasm/ext/declare_property.proto): name = 1, span = 5.
 */
export function declareRequestProperty(name: string): WasmResult {
  const nameBytes = String.UTF8.encode(name);
  const size = nameBytes.byteLength;
  const args = new ArrayBuffer(2 + size + 2);
  const at = changetype<usize>(args);
  store<u8>(at, 0x0a); // field 1, length-delimited
  store<u8>(at + 1, <u8>size); // names here are short (< 128 bytes): one varint byte
  memory.copy(at + 2, changetype<usize>(nameBytes), size);
  store<u8>(at + 2 + size, 0x28); // field 5, varint
  store<u8>(at + 3 + size, 1); // DownstreamRequest
  const fn = String.UTF8.encode("declare_property");
  clearReturn();
  const status = imports.proxy_call_foreign_function(changetype<usize>(fn), fn.byteLength, at, args.byteLength, RETURN_PTR, RETURN_SIZE);
  const ret = load<usize>(RETURN_PTR);
  if (ret != 0) heap.free(ret);
  return <WasmResult>status;
}

// --- stream control ---

/** Sends a local reply whose body is [bodyPtr, bodyPtr+bodySize). */
export function sendLocalResponse(status: u32, details: string, bodyPtr: usize, bodySize: i32, headers: Header[]): WasmResult {
  const detailBytes = String.UTF8.encode(details);
  const headerBytes = serializeHeaders(headers);
  return imports.proxy_send_local_response(
    status, changetype<usize>(detailBytes), detailBytes.byteLength,
    bodyPtr, bodySize,
    changetype<usize>(headerBytes), headerBytes.byteLength, -1);
}

/** sendLocalResponse with its headers already in the wire format. */
export function sendLocalResponsePairs(status: u32, details: string, bodyPtr: usize, bodySize: i32, pairs: ArrayBuffer): WasmResult {
  const detailBytes = String.UTF8.encode(details);
  return imports.proxy_send_local_response(
    status, changetype<usize>(detailBytes), detailBytes.byteLength,
    bodyPtr, bodySize,
    changetype<usize>(pairs), pairs.byteLength, -1);
}

export function continueStream(type: StreamType): WasmResult {
  return imports.proxy_continue_stream(type);
}

/** Resets the stream (Envoy: the filter's resetStream): after its response began, the client sees it cut. */
export function closeStream(type: StreamType): WasmResult {
  return imports.proxy_close_stream(type);
}

export function setEffectiveContext(contextId: u32): WasmResult {
  return imports.proxy_set_effective_context(contextId);
}

// --- http calls ---

export class HttpCallResult {
  constructor(public status: WasmResult, public token: u32) {}
}

/** httpCall's result, one object reused: read at once, before the next call. */
const CALL_RESULT = new HttpCallResult(WasmResult.Ok, 0);

/** An empty header map in the wire format (a zero count): a call's trailers. */
const NO_PAIRS = memory.data(4);

/**
 * Dispatches a call to the cluster named by `cluster` (its UTF-8 bytes), with `headerPairs` (a
 * header map in the wire format) and the body [bodyPtr, bodyPtr+bodySize) (the host copies both
 * before returning). The result is valid until the next httpCall.
 */
export function httpCall(cluster: ArrayBuffer, headerPairs: ArrayBuffer, bodyPtr: usize, bodySize: i32, timeoutMs: u32): HttpCallResult {
  store<u32>(RETURN_WORD, 0);
  const status = imports.proxy_http_call(
    changetype<usize>(cluster), cluster.byteLength,
    changetype<usize>(headerPairs), headerPairs.byteLength,
    bodyPtr, bodySize,
    NO_PAIRS, 4,
    timeoutMs, RETURN_WORD);
  const result = CALL_RESULT;
  result.status = status;
  result.token = load<u32>(RETURN_WORD);
  return result;
}

// --- metrics ---

/** Defines a metric; returns its id, or 0 when the host refused it (0 is never a valid id in Envoy). */
export function defineMetric(type: MetricType, name: string): u32 {
  const bytes = String.UTF8.encode(name);
  store<u32>(RETURN_WORD, 0);
  if (imports.proxy_define_metric(type, changetype<usize>(bytes), bytes.byteLength, RETURN_WORD) != WasmResult.Ok) {
    return 0;
  }
  return load<u32>(RETURN_WORD);
}

export function incrementMetric(id: u32, offset: i64): void {
  if (id != 0) imports.proxy_increment_metric(id, offset);
}

// --- shared data and foreign functions ---

/** A shared-data value and its compare-and-swap token; `value` is null when the key has none. */
export class SharedValue {
  constructor(public value: ArrayBuffer | null, public cas: u32) {}
}

export function getSharedData(key: ArrayBuffer): SharedValue {
  intoNewBuffer();
  store<u32>(RETURN_WORD, 0);
  const status = imports.proxy_get_shared_data(changetype<usize>(key), key.byteLength, RETURN_PTR, RETURN_SIZE, RETURN_WORD);
  resetTargets();
  if (status != WasmResult.Ok) return new SharedValue(null, 0);
  const cas = load<u32>(RETURN_WORD);
  return new SharedValue(takeBuffer(), cas);
}

/** Writes `value` if the key's token is still `cas` (0: whatever it is); CasMismatch when another wrote first. */
export function setSharedData(key: ArrayBuffer, value: ArrayBuffer, cas: u32): WasmResult {
  return <WasmResult>imports.proxy_set_shared_data(changetype<usize>(key), key.byteLength, changetype<usize>(value), value.byteLength, cas);
}

/** Calls a host's foreign function with no arguments (e.g. Envoy's "clear_route_cache"). */
export function callForeignFunction(name: ArrayBuffer): WasmResult {
  clearReturn();
  const status = imports.proxy_call_foreign_function(changetype<usize>(name), name.byteLength, 0, 0, RETURN_PTR, RETURN_SIZE);
  const ptr = load<usize>(RETURN_PTR);
  if (ptr != 0) heap.free(ptr);
  return <WasmResult>status;
}

/** Wall-clock time in ms since the Unix epoch (for HTTP dates; deadlines use monotonicMs). */
export function wallClockMs(): u64 {
  store<u64>(RETURN_WORD, 0);
  imports.proxy_get_current_time_nanoseconds(RETURN_WORD);
  return load<u64>(RETURN_WORD) / 1_000_000;
}
