// Byte strings: one UTF-16 code unit per byte (0..255). Header names and values are octets on the
// wire; keeping them as byte strings round-trips any byte exactly, with no UTF-8 validation cost.

/** Reads `length` bytes at `ptr` into a byte string. */
export function byteStringFromMemory(ptr: usize, length: usize): string {
  if (length == 0) return "";
  const out = changetype<string>(__new(length << 1, idof<string>()));
  const dst = changetype<usize>(out);
  for (let i: usize = 0; i < length; i++) {
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
  for (let i: usize = 0; i < length; i++) {
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

/** ASCII lower case; other bytes unchanged. */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
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
