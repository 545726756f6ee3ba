// The wording of configuration refusals that teach: the nearest known name for a misspelt field,
// the unit of a number and the number meant when a unit was written into it, and what a
// configuration that arrived as protobuf (a google.protobuf.Struct) should have been. Pure.
import { JSON } from "./json_value";
import { asciiLower } from "../bytes";

/** How a StringValue configuration is written (what a Struct, or nothing, should have been). */
export const STRING_VALUE_HINT = "give it as \"configuration\": {\"@type\": \"type.googleapis.com/google.protobuf.StringValue\", " +
  "\"value\": \"{\\\"backups\\\": [...]}\"} (the JSON as one string in value)";

/** Why an unknown field is refused: the known name it is closest to, else the whole list. */
export function unknownFieldWhy(key: string, known: string[]): string {
  const meant = nearestName(key, known);
  if (meant.length > 0) return "unknown field; did you mean " + meant + "?";
  return "unknown field (known: " + known.join(", ") + ")";
}

/**
 * The known name `key` most likely misspells: equal ignoring case, or within 1 edit (2 for names of
 * 6 characters or more; a swap of neighbours is one edit); "" when none is that close.
 */
export function nearestName(key: string, known: string[]): string {
  const lowerKey = asciiLower(key);
  let best = "";
  let bestDistance = key.length < 6 ? 2 : 3;
  for (let i = 0; i < known.length; i++) {
    const d = editDistance(lowerKey, asciiLower(known[i]));
    if (d < bestDistance) {
      bestDistance = d;
      best = known[i];
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): i32 {
  const n = a.length, m = b.length;
  if (abs(n - m) > 2) return 3;
  // One row-major table of (n + 1) x (m + 1) cells.
  const w = m + 1;
  const cells = new StaticArray<i32>((n + 1) * w);
  for (let i = 0; i <= n; i++) cells[i * w] = i;
  for (let j = 0; j <= m; j++) cells[j] = j;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const cost = a.charCodeAt(i - 1) == b.charCodeAt(j - 1) ? 0 : 1;
      let d = min(min(cells[(i - 1) * w + j] + 1, cells[i * w + j - 1] + 1), cells[(i - 1) * w + j - 1] + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) == b.charCodeAt(j - 2) && a.charCodeAt(i - 2) == b.charCodeAt(j - 1)) {
        d = min(d, cells[(i - 2) * w + j - 2] + 1);
      }
      cells[i * w + j] = d;
    }
  }
  return cells[n * w + m];
}

/** The unit of an integer field, said in its refusal. */
export const enum Unit {
  None = 0,
  Milliseconds = 1,
  Bytes = 2,
}

/** "must be an integer number of milliseconds from 1 to 2147483647, got "10s" (write 10000 for 10 s)". */
export function integerWhy(v: JSON.Value, min: i64, max: i64, unit: Unit): string {
  const kind = unit == Unit.Milliseconds ? "an integer number of milliseconds" : unit == Unit.Bytes ? "an integer number of bytes" : "an integer";
  return "must be " + kind + " from " + min.toString() + " to " + max.toString() + ", got " + v.toString() + meantNumber(v, unit);
}

/** For a string that holds a number (with a unit, e.g. "10s", "2MiB"): " (write N for ...)"; else "". */
function meantNumber(v: JSON.Value, unit: Unit): string {
  if (v.type != JSON.Types.String) return "";
  const text = v.get<string>();
  // The leading number: digits with at most one decimal point.
  let end = 0;
  let dot = false;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if (c == 0x2e && !dot) dot = true;
    else if (c < 0x30 || c > 0x39) break;
    end++;
  }
  if (end == 0 || (dot && end == 1)) return "";
  const number = text.substring(0, end);
  let from = end;
  while (from < text.length && text.charCodeAt(from) == 0x20) from++;
  const suffix = text.substring(from);
  if (suffix.length == 0) return dot ? "" : " (write " + number + " without quotes)";
  const factor = unitFactor(suffix, unit);
  if (factor == 0) return "";
  const value = decimalTimes(number, factor);
  if (value < 0) return "";
  return " (write " + value.toString() + " for " + number + " " + suffix + ")";
}

/** `number` (digits, at most one ".") times `factor` when that is a whole number up to 2147483647; else -1. */
function decimalTimes(number: string, factor: i64): i64 {
  let digits: i64 = 0;
  let scale: i64 = 1;
  let afterDot = false;
  for (let i = 0; i < number.length; i++) {
    const c = number.charCodeAt(i);
    if (c == 0x2e) {
      afterDot = true;
      continue;
    }
    if (digits > 100_000_000_000) return -1;
    digits = digits * 10 + (c - 0x30);
    if (afterDot) scale *= 10;
  }
  const product = digits * factor;
  if (product % scale != 0 || product / scale > 2147483647) return -1;
  return product / scale;
}

/** How many of the field's unit one `suffix` is (0: not a unit of this field). */
function unitFactor(suffix: string, unit: Unit): i64 {
  if (unit == Unit.Milliseconds) {
    if (suffix == "ms") return 1;
    if (suffix == "s") return 1000;
    if (suffix == "m" || suffix == "min") return 60_000;
    if (suffix == "h") return 3_600_000;
    return 0;
  }
  if (unit == Unit.Bytes) {
    if (suffix == "B") return 1;
    if (suffix == "KiB" || suffix == "Ki") return 1024;
    if (suffix == "MiB" || suffix == "Mi") return 1024 * 1024;
    if (suffix == "GiB" || suffix == "Gi") return 1024 * 1024 * 1024;
    if (suffix == "kB" || suffix == "KB") return 1000;
    if (suffix == "MB") return 1_000_000;
    if (suffix == "GB") return 1_000_000_000;
    return 0;
  }
  return 0;
}

/**
 * Whether `bytes` (not JSON) look like a serialized google.protobuf.Struct, which Envoy hands the
 * module when the configuration is a Struct: a run of field-1 entries (tag 0x0a, a length, then a
 * map entry whose key is field 1 again) that ends exactly at the end.
 */
export function looksLikeProtobufStruct(bytes: ArrayBuffer): bool {
  const base = changetype<usize>(bytes);
  const size = bytes.byteLength;
  let at = 0;
  while (at < size) {
    if (load<u8>(base + at) != 0x0a) return false;
    at++;
    let length = 0;
    let shift = 0;
    for (;;) {
      if (at >= size || shift > 28) return false;
      const b = load<u8>(base + at++);
      length |= (<i32>(b & 0x7f)) << shift;
      if ((b & 0x80) == 0) break;
      shift += 7;
    }
    if (length < 2 || at + length > size || load<u8>(base + at) != 0x0a) return false;
    at += length;
  }
  return size > 0;
}

/** A configuration that is not JSON: said plainly, and a Struct's protobuf recognised. */
export function notJsonWhy(bytes: ArrayBuffer, errorAt: i32, whatIsNested: string): string {
  if (looksLikeProtobufStruct(bytes)) {
    return "configuration: arrived as protobuf, not JSON text: it was given as a google.protobuf.Struct; " + STRING_VALUE_HINT;
  }
  return "configuration: not valid JSON" + whatIsNested + " (error at byte " + errorAt.toString() + ")";
}
