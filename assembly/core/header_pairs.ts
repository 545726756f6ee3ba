// The ABI's header-map wire format: u32 count, then (u32 name size, u32 value size) per pair,
// then each name and value followed by a NUL byte. Little-endian, as wasm memory is.
import { byteStringFromMemory, statusCodeAt, writeByteString } from "./bytes";
import { headerNameAt, sharedByteString } from "./header_names";
import { Header } from "./headers";

export function serializeHeaders(headers: Header[]): ArrayBuffer {
  let size = 4;
  for (let i = 0; i < headers.length; i++) {
    size += 8 + headers[i].name.length + headers[i].value.length + 2;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, headers.length);
  const sizes = base + 4;
  const data = base + 4 + 8 * <usize>headers.length;
  writePairs(headers, sizes, data);
  return out;
}

/**
 * A response header map in the wire format: `:status`, then `headers`; the status is written as
 * digits in place (no string, no list of its own).
 */
export function serializeResponseHeaders(status: i32, headers: Header[]): ArrayBuffer {
  const statusDigits = decimalDigits(status);
  const count = headers.length + 1;
  let size = 4 + 8 * count + (STATUS.length + statusDigits + 2);
  for (let i = 0; i < headers.length; i++) size += headers[i].name.length + headers[i].value.length + 2;
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, count);
  let sizes = base + 4;
  let data = base + 4 + 8 * <usize>count;
  store<u32>(sizes, STATUS.length);
  store<u32>(sizes + 4, statusDigits);
  sizes += 8;
  writeByteString(STATUS, data);
  data += STATUS.length;
  store<u8>(data++, 0);
  let n = status;
  for (let i = statusDigits - 1; i >= 0; i--) {
    store<u8>(data + <usize>i, 0x30 + n % 10);
    n /= 10;
  }
  data += statusDigits;
  store<u8>(data++, 0);
  writePairs(headers, sizes, data);
  return out;
}

const STATUS = ":status";

/** Writes each header's two sizes from `sizes` on and its NUL-ended name and value from `data` on. */
function writePairs(headers: Header[], sizes: usize, data: usize): void {
  for (let i = 0; i < headers.length; i++) {
    data = writePair(sizes, data, headers[i].name, headers[i].value);
    sizes += 8;
  }
}

/** Writes one pair's two sizes at `sizes` and its NUL-ended name and value at `to`; returns the end of the bytes. */
export function writePair(sizes: usize, to: usize, name: string, value: string): usize {
  store<u32>(sizes, name.length);
  store<u32>(sizes + 4, value.length);
  writeByteString(name, to);
  to += <usize>name.length;
  store<u8>(to++, 0);
  writeByteString(value, to);
  to += <usize>value.length;
  store<u8>(to++, 0);
  return to;
}

/** How many decimal digits `n` (>= 0) has. */
export function decimalDigits(n: i32): i32 {
  let digits = 1;
  while (n >= 10) {
    n /= 10;
    digits++;
  }
  return digits;
}

/** Parses the wire format; returns an empty list for a malformed buffer. */
export function deserializeHeaders(ptr: usize, size: usize): Header[] {
  const out = new Array<Header>();
  if (size < 4) return out;
  const count = <usize>load<u32>(ptr);
  if (<usize>4 + 8 * count > size) return out;
  let sizes = ptr + 4;
  let data = ptr + 4 + 8 * count;
  const end = ptr + size;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(sizes);
    const valueSize = <usize>load<u32>(sizes + 4);
    sizes += 8;
    if (data + nameSize + valueSize + 2 > end) return new Array<Header>();
    const name = headerNameAt(data, nameSize);
    data += nameSize + 1;
    const value = byteStringFromMemory(data, valueSize);
    data += valueSize + 1;
    out.push(new Header(name, value));
  }
  return out;
}

/** Whether [ptr, ptr+size) is a whole wire-format map: every pair within it (deserializeHeaders reads it whole). */
export function wellFormedPairs(ptr: usize, size: usize): bool {
  if (size < 4) return false;
  const count = <usize>load<u32>(ptr);
  if (<usize>4 + 8 * count > size) return false;
  const end = ptr + size;
  let data = ptr + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    data += <usize>load<u32>(ptr + 4 + 8 * i) + <usize>load<u32>(ptr + 8 + 8 * i) + 2;
    if (data > end) return false;
  }
  return true;
}

/** An empty header map in the wire format. */
export const NO_PAIRS: ArrayBuffer = new ArrayBuffer(4);

/**
 * One header's value (a byte string) straight from the wire format, or null: nothing else is
 * decoded or allocated. `lowerName` is lower-case ASCII.
 */
export function findSerializedHeader(ptr: usize, size: usize, lowerName: string): string | null {
  const at = findSerializedValue(ptr, size, lowerName);
  return at < 0 ? null : byteStringFromMemory(<usize>(at >>> 32), <usize>(at & 0xffffffff));
}

/**
 * findSerializedHeader for a header with few forms (`:method`): the value shared with earlier reads
 * of the same bytes (header_names.ts), so that reading it allocates nothing after the first time.
 */
export function findSerializedSharedHeader(ptr: usize, size: usize, lowerName: string): string | null {
  const at = findSerializedValue(ptr, size, lowerName);
  return at < 0 ? null : sharedByteString(<usize>(at >>> 32), <usize>(at & 0xffffffff));
}

/** A header's value as a plain decimal of 1 to 15 digits, straight from the wire format; -1 when absent or not one. */
export function serializedDecimal(ptr: usize, size: usize, lowerName: string): i64 {
  const at = findSerializedValue(ptr, size, lowerName);
  if (at < 0) return -1;
  const value = <usize>(at >>> 32);
  const length = <usize>(at & 0xffffffff);
  if (length == 0 || length > 15) return -1;
  let n: i64 = 0;
  for (let i: usize = 0; i < length; i++) {
    const c = <i32>load<u8>(value + i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/**
 * A response's `:status` as a number straight from the wire format (three digits, else 0; 0 when
 * absent), so that a filter that reads the whole map anyway needs no second host call for it.
 */
export function serializedStatus(ptr: usize, size: usize): i32 {
  const at = findSerializedValue(ptr, size, STATUS);
  return at < 0 ? 0 : statusCodeAt(<usize>(at >>> 32), <usize>(at & 0xffffffff));
}

/**
 * Where the first value of `lowerName` lies in a wire-format map, as (address << 32) | size, with
 * nothing decoded; -1 when absent or the buffer is malformed.
 */
function findSerializedValue(ptr: usize, size: usize, lowerName: string): i64 {
  if (size < 4) return -1;
  const count = <usize>load<u32>(ptr);
  if (<usize>4 + 8 * count > size) return -1;
  const end = ptr + size;
  const nameLength = <usize>lowerName.length;
  let sizes = ptr + 4;
  let data = ptr + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(sizes);
    const valueSize = <usize>load<u32>(sizes + 4);
    sizes += 8;
    if (data + nameSize + valueSize + 2 > end) return -1;
    if (nameSize == nameLength && bytesEqual(data, lowerName)) return (<i64>(data + nameSize + 1) << 32) | <i64>valueSize;
    data += nameSize + valueSize + 2;
  }
  return -1;
}

/** serializedNamesWithPrefix's answer when no name matches; never written to. */
const NO_NAMES: string[] = [];

/**
 * The names (byte strings) that start with `lowerPrefix`, straight from the wire format: only those
 * names are decoded. Empty for a malformed buffer.
 */
export function serializedNamesWithPrefix(ptr: usize, size: usize, lowerPrefix: string): string[] {
  // Usually none: the shared empty list (read only) until a name is found.
  let out = NO_NAMES;
  if (size < 4) return out;
  const count = <usize>load<u32>(ptr);
  if (<usize>4 + 8 * count > size) return out;
  const end = ptr + size;
  const prefixLength = <usize>lowerPrefix.length;
  let sizes = ptr + 4;
  let data = ptr + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(sizes);
    const valueSize = <usize>load<u32>(sizes + 4);
    sizes += 8;
    if (data + nameSize + valueSize + 2 > end) return NO_NAMES;
    if (nameSize >= prefixLength && bytesEqual(data, lowerPrefix)) {
      if (out === NO_NAMES) out = new Array<string>();
      out.push(byteStringFromMemory(data, nameSize));
    }
    data += nameSize + valueSize + 2;
  }
  return out;
}

function bytesEqual(ptr: usize, ascii: string): bool {
  for (let i = 0; i < ascii.length; i++) {
    if (<u32>load<u8>(ptr + i) != <u32>ascii.charCodeAt(i)) return false;
  }
  return true;
}
