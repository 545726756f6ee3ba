// Byte strings: one UTF-16 code unit per byte (0..255). Header names and values are octets on the
// wire; keeping them as byte strings round-trips any byte exactly, with no UTF-8 validation cost.

/** Reads `length` bytes at `ptr` into a byte string. */
export function byteStringFromMemory(ptr: usize, length: usize): string {
  if (length == 0) return "";
  const out = changetype<string>(__new(length << 1, idof<string>()));
  const dst = changetype<usize>(out);
  let i: usize = 0;
  // Four bytes at a time, each widened to its UTF-16 unit; then the rest one by one.
  for (; i + 4 <= length; i += 4) {
    const b = <u64>load<u32>(ptr + i);
    store<u64>(dst + (i << 1), (b & 0xff) | ((b & 0xff00) << 8) | ((b & 0xff0000) << 16) | ((b & 0xff000000) << 24));
  }
  for (; i < length; i++) {
    store<u16>(dst + (i << 1), load<u8>(ptr + i));
  }
  return out;
}

export function byteStringFromBuffer(buffer: ArrayBuffer): string {
  return byteStringFromMemory(changetype<usize>(buffer), buffer.byteLength);
}

/** Writes a byte string's bytes at `ptr`; the caller reserved `s.length` bytes there. */
export function writeByteString(s: string, ptr: usize): void {
  const src = changetype<usize>(s);
  const length = <usize>s.length;
  let i: usize = 0;
  // Four UTF-16 units at a time, each cut to its low byte; then the rest one by one.
  for (; i + 4 <= length; i += 4) {
    const w = load<u64>(src + (i << 1));
    store<u32>(ptr + i, (<u32>w & 0xff) | (<u32>(w >> 8) & 0xff00) | (<u32>(w >> 16) & 0xff0000) | (<u32>(w >> 24) & 0xff000000));
  }
  for (; i < length; i++) {
    store<u8>(ptr + i, <u8>load<u16>(src + (i << 1)));
  }
}

export function byteStringToBuffer(s: string): ArrayBuffer {
  const out = new ArrayBuffer(s.length);
  writeByteString(s, changetype<usize>(out));
  return out;
}

/** A text string (from configuration) as the byte string of its UTF-8 encoding. */
export function utf8ByteString(text: string): string {
  return byteStringFromBuffer(String.UTF8.encode(text));
}

/**
 * ASCII lower case; other characters (and bytes of a byte string) unchanged. By hand rather than
 * String#toLowerCase, which would also fold Latin-1 bytes and pulls in Unicode tables (about 6 KB).
 */
export function asciiLower(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n && !isAsciiUpper(s.charCodeAt(i))) i++;
  if (i == n) return s;
  const out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(s), <usize>i << 1);
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    store<u16>(changetype<usize>(out) + (<usize>i << 1), isAsciiUpper(c) ? c + 32 : c);
  }
  return out;
}

function isAsciiUpper(c: i32): bool {
  return c >= 65 && c <= 90;
}

/** A byte string as a JSON string literal (quotes, backslashes and control bytes escaped). */
export function jsonQuote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) out += "\\" + String.fromCharCode(c);
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "1") + "0123456789abcdef".charAt(c & 15);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

/**
 * The offset of the first byte of [base, base+length) that is not part of well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF); -1 when it all is.
 */
export function firstInvalidUtf8(base: usize, length: i32): i32 {
  let i = 0;
  while (i < length) {
    const c = <u32>load<u8>(base + i);
    if (c < 0x80) {
      i++;
      continue;
    }
    let size = 0;
    let min: u32 = 0;
    let cp: u32 = 0;
    if (c >= 0xc2 && c <= 0xdf) { size = 2; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { size = 3; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { size = 4; min = 0x10000; cp = c & 0x07; }
    else return i;
    if (i + size > length) return i;
    for (let k = 1; k < size; k++) {
      const d = <u32>load<u8>(base + i + k);
      if ((d & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += size;
  }
  return -1;
}

/** An HTTP status code from its bytes: three ASCII digits, else 0. */
export function statusCodeAt(ptr: usize, length: usize): i32 {
  if (length != 3) return 0;
  let code = 0;
  for (let i: usize = 0; i < 3; i++) {
    const c = <i32>load<u8>(ptr + i);
    if (c < 0x30 || c > 0x39) return 0;
    code = code * 10 + (c - 0x30);
  }
  return code;
}
