// The checks the configuration's readers share: what a header name, a URI part, a JSON number may be,
// and an error's text kept to one log line. Pure.
import { JSON } from "./json_value";
import { StatusSet } from "../status_set";

// Headers a backup may not set: the call's pseudo-headers and framing belong to the filter.
export function isReservedHeader(lowerName: string): bool {
  return lowerName.startsWith(":") || lowerName == "content-length" || lowerName == "transfer-encoding" ||
    lowerName == "host";
}

/** The first byte after leading JSON whitespace is `{`. */
export function startsWithObject(bytes: ArrayBuffer): bool {
  const base = changetype<usize>(bytes);
  for (let i = 0; i < bytes.byteLength; i++) {
    const c = load<u8>(base + i);
    if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) continue;
    return c == 0x7b;
  }
  return false;
}

/** `s` with control characters written as \u00XX: an error quotes configured values, and it must stay one log line. */
export function escapeControls(s: string): string {
  if (!hasControlCharacter(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c < 0x20 || c == 0x7f ? "\\u00" + (c < 0x10 ? "0" : c < 0x20 ? "1" : "7") + "0123456789abcdef".charAt(c & 15) : s.charAt(i);
  }
  return out;
}

/** Control characters would make invalid header values (and cluster names). */
export function hasControlCharacter(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

/** RFC 3986 unreserved and sub-delims characters (allowed in both a path and an authority). */
export function isUnreservedOrSubDelim(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e || c == 0x21 || c == 0x24 || (c >= 0x26 && c <= 0x2c) ||
    c == 0x3b || c == 0x3d;
}

export function isHexDigit(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * The index of the first character of `s` that may not appear in a request target (path and query,
 * RFC 3986: pchar, "/", "?", and "%" only before two hex digits) or, with `authority`, in a
 * host[:port] ("[", "]" and ":" for IP literals and the port; no "/", "?" or "@"); -1 when none.
 */
export function firstInvalidUriChar(s: string, authority: bool): i32 {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isUnreservedOrSubDelim(c) || c == 0x3a) continue;
    if (c == 0x25 && i + 2 < s.length && isHexDigit(s.charCodeAt(i + 1)) && isHexDigit(s.charCodeAt(i + 2))) continue;
    if (authority ? (c == 0x5b || c == 0x5d) : (c == 0x2f || c == 0x3f || c == 0x40)) continue;
    return i;
  }
  return -1;
}

export function describeChar(s: string, at: i32): string {
  const c = s.charCodeAt(at);
  return c == 0x20 ? "a space" : "\"" + s.charAt(at) + "\"";
}

export function isWhitespace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/** An HTTP header name: RFC 9110 token characters (compared lower case). */
export function isHeaderName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x21 || (c >= 0x23 && c <= 0x27) ||
      c == 0x2a || c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}

export function isNumber(v: JSON.Value): bool {
  return v.type >= JSON.Types.U8 && v.type <= JSON.Types.F64;
}

/** Adds one status item (a code 400..599, or its text; with `withClasses` also "4xx"/"5xx"); false when it is none. */
export function addStatusItem(set: StatusSet, item: JSON.Value, withClasses: bool): bool {
  if (isNumber(item)) {
    const f = item.get<f64>();
    if (f != Math.floor(f) || f < 400 || f > 599) return false;
    set.add(<i32>f);
    return true;
  }
  if (item.type != JSON.Types.String) return false;
  const text = item.get<string>();
  // A class's second character is 'x' or 'X'.
  if (!withClasses && (text.length != 3 || text.charCodeAt(1) == 0x78 || text.charCodeAt(1) == 0x58)) return false;
  return set.addText(text);
}
