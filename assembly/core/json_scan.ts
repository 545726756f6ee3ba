// A validating JSON scanner over raw bytes, for request bodies: it finds the byte ranges of the
// top-level members without building a tree or decoding strings. Iterative (an explicit stack of
// open containers), so a deeply nested body cannot overflow the wasm stack. Pure.

const MAX_DEPTH = 1024;

// Eight bytes at a time (SIMD is off): a word has a byte equal to X when (w ^ X...) has a zero byte,
// and a byte below 0x20 when (w - 0x20...) & ~w has its high bit; the lowest flagged byte of these
// classic tests is exact (only bytes above it can be flagged falsely), so a scan jumps straight to it.
export const ONES: u64 = 0x0101010101010101;
export const HIGH_BITS: u64 = 0x8080808080808080;
export const QUOTES: u64 = 0x2222222222222222;
export const BACKSLASHES: u64 = 0x5c5c5c5c5c5c5c5c;
const CONTROL_LIMITS: u64 = 0x2020202020202020;

/** A byte range [start, end) relative to the scanned buffer. */
export class Span {
  constructor(public start: i32, public end: i32) {}
}

/** What a request body's top level holds, as far as fallback needs it. */
export class TopLevel {
  /** The whole body is one valid JSON value. */
  valid: bool = false;
  /** ... and that value is an object. */
  isObject: bool = false;
  /** Value ranges of every top-level "model" member (duplicates included). */
  modelValues: Span[] = [];
  /** The last top-level "stream" member is the literal true. */
  streamTrue: bool = false;
  /** Spans of an earlier scan, reused by the next (scanTopLevel with `into`). */
  private spareSpans: Span[] = [];

  /** Cleared for a new scan; its lists and spans are kept for reuse. */
  reset(): TopLevel {
    this.valid = false;
    this.isObject = false;
    this.streamTrue = false;
    const values = this.modelValues;
    for (let i = 0; i < values.length; i++) this.spareSpans.push(values[i]);
    values.length = 0;
    return this;
  }

  addModelValue(start: i32, end: i32): void {
    const spare = this.spareSpans;
    if (spare.length == 0) {
      this.modelValues.push(new Span(start, end));
      return;
    }
    const span = spare.pop();
    span.start = start;
    span.end = end;
    this.modelValues.push(span);
  }
}

// Inlined (@inline): asked of nearly every byte between values.
@inline export function isWhitespace(c: u32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

function isDigit(c: u32): bool {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>c - 0x30;
  if (c >= 0x61 && c <= 0x66) return <i32>c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return <i32>c - 0x41 + 10;
  return -1;
}

/** A cursor over JSON bytes that skips values (first_content.ts walks SSE events' members with it). */
export class Scanner {
  /** Open containers: the byte ('}' or ']') that closes each. Reused by every skipValue. */
  private closers: u32[] = [];

  constructor(public base: usize, public pos: i32, public end: i32) {}

  // Inlined (@inline): called around every value of every body scan.
  @inline peek(): u32 {
    return this.pos < this.end ? <u32>load<u8>(this.base + this.pos) : 0xffffffff;
  }

  @inline skipWhitespace(): void {
    while (this.pos < this.end && isWhitespace(load<u8>(this.base + this.pos))) this.pos++;
  }

  /** Skips a string starting at its opening quote; false when malformed. */
  skipString(): bool {
    if (this.peek() != 0x22) return false;
    // On locals (the hot loop of every body scan), stored back on the way out.
    const base = this.base;
    const end = this.end;
    let pos = this.pos + 1;
    let ok = false;
    while (pos < end) {
      // Plain text (no quote, backslash or control byte) a word at a time; see stringEnd.
      if (pos + 8 <= end) {
        const w = load<u64>(base + <usize>pos);
        const q = w ^ QUOTES;
        const b = w ^ BACKSLASHES;
        const flags = (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - CONTROL_LIMITS) & ~w)) & HIGH_BITS;
        if (flags == 0) {
          pos += 8;
          continue;
        }
        pos += <i32>(ctz(flags) >> 3);
      }
      const c = <u32>load<u8>(base + pos);
      if (c == 0x22) {
        pos++;
        ok = true;
        break;
      }
      if (c < 0x20) break;
      if (c == 0x5c) {
        if (pos + 1 >= end) break;
        const e = <u32>load<u8>(base + pos + 1);
        if (e == 0x75) {
          if (pos + 6 > end) break;
          let hex = true;
          for (let k = 2; k < 6; k++) {
            if (hexValue(load<u8>(base + pos + k)) < 0) hex = false;
          }
          if (!hex) break;
          pos += 6;
          continue;
        }
        if (e != 0x22 && e != 0x5c && e != 0x2f && e != 0x62 && e != 0x66 &&
            e != 0x6e && e != 0x72 && e != 0x74) break;
        pos += 2;
        continue;
      }
      pos++;
    }
    this.pos = pos;
    return ok;
  }

  skipDigits(): bool {
    const start = this.pos;
    while (this.pos < this.end && isDigit(load<u8>(this.base + this.pos))) this.pos++;
    return this.pos > start;
  }

  skipNumber(): bool {
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) {
      this.pos++;
    } else if (!this.skipDigits()) {
      return false;
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!this.skipDigits()) return false;
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!this.skipDigits()) return false;
    }
    return true;
  }

  skipLiteral(word: string): bool {
    const n = word.length;
    if (this.pos + n > this.end) return false;
    for (let i = 0; i < n; i++) {
      if (<u32>load<u8>(this.base + this.pos + i) != <u32>word.charCodeAt(i)) return false;
    }
    this.pos += n;
    return true;
  }

  /** Skips one scalar value (not an object or array); false when malformed. */
  skipScalar(): bool {
    const c = this.peek();
    if (c == 0x22) return this.skipString();
    if (c == 0x74) return this.skipLiteral("true");
    if (c == 0x66) return this.skipLiteral("false");
    if (c == 0x6e) return this.skipLiteral("null");
    return this.skipNumber();
  }

  /** Skips one complete value of any kind, iteratively. */
  skipValue(): bool {
    // Depth beyond MAX_DEPTH is refused.
    const closers = this.closers;
    closers.length = 0;
    let expectValue = true;
    while (true) {
      this.skipWhitespace();
      if (expectValue) {
        const c = this.peek();
        if (c == 0x7b || c == 0x5b) {
          if (closers.length >= MAX_DEPTH) return false;
          this.pos++;
          this.skipWhitespace();
          const closer: u32 = c == 0x7b ? 0x7d : 0x5d;
          if (this.peek() == closer) {
            this.pos++;
            expectValue = false;
            if (closers.length == 0) return true;
            continue;
          }
          closers.push(closer);
          if (closer == 0x7d && !this.skipMemberName()) return false;
          continue;
        }
        if (!this.skipScalar()) return false;
        if (closers.length == 0) return true;
        expectValue = false;
        continue;
      }
      // After a value inside a container: ',' or the closer.
      const c = this.peek();
      const closer = closers[closers.length - 1];
      if (c == 0x2c) {
        this.pos++;
        if (closer == 0x7d && !this.skipMemberName()) return false;
        expectValue = true;
        continue;
      }
      if (c != closer) return false;
      this.pos++;
      closers.pop();
      if (closers.length == 0) return true;
    }
    return false;
  }

  /** Skips `"name" :` inside an object; false when malformed. */
  skipMemberName(): bool {
    this.skipWhitespace();
    if (!this.skipString()) return false;
    this.skipWhitespace();
    if (this.peek() != 0x3a) return false;
    this.pos++;
    return true;
  }
}

/**
 * Whether the JSON string at [start, end) (quotes included) decodes to `ascii`, an ASCII word.
 * Escapes count: "mod\u0065l" is "model".
 */
export function stringEquals(base: usize, start: i32, end: i32, ascii: string): bool {
  let i = start + 1;
  const last = end - 1;
  let k = 0;
  while (i < last) {
    let c = <i32>load<u8>(base + i);
    if (c == 0x5c) {
      const e = <i32>load<u8>(base + i + 1);
      if (e == 0x75) {
        c = (hexValue(load<u8>(base + i + 2)) << 12) | (hexValue(load<u8>(base + i + 3)) << 8) |
          (hexValue(load<u8>(base + i + 4)) << 4) | hexValue(load<u8>(base + i + 5));
        i += 6;
      } else {
        c = e == 0x62 ? 8 : e == 0x66 ? 12 : e == 0x6e ? 10 : e == 0x72 ? 13 : e == 0x74 ? 9 : e;
        i += 2;
      }
    } else {
      i++;
    }
    if (k >= ascii.length || c != ascii.charCodeAt(k)) return false;
    k++;
  }
  return k == ascii.length;
}

/** The body starts with a UTF-8 byte order mark. */
export function startsWithBom(base: usize, length: i32): bool {
  return length >= 3 && load<u8>(base) == 0xef && load<u8>(base + 1) == 0xbb && load<u8>(base + 2) == 0xbf;
}

// One scanner for every whole-body scan (scanTopLevel): its containers' stack is reused too, so a
// scan allocates only its result. A scan runs to its end before the next starts (wasm is single-threaded).
const BODY_SCANNER = new Scanner(0, 0, 0);

/**
 * Scans a whole body: is it JSON, and where are its top-level "model" and "stream" members. `into`:
 * an earlier result to reuse (reset; its spans change), else a new one.
 */
export function scanTopLevel(base: usize, length: i32, into: TopLevel | null = null): TopLevel {
  const out = into !== null ? into.reset() : new TopLevel();
  // A UTF-8 byte order mark before the JSON (some clients send one) is kept, and the scan starts after it.
  const s = BODY_SCANNER;
  s.base = base;
  s.pos = startsWithBom(base, length) ? 3 : 0;
  s.end = length;
  s.skipWhitespace();
  if (s.peek() != 0x7b) {
    // Not an object: still report whether it is valid JSON at all.
    if (s.skipValue()) {
      s.skipWhitespace();
      out.valid = s.pos == s.end;
    }
    return out;
  }
  s.pos++;
  s.skipWhitespace();
  if (s.peek() == 0x7d) {
    s.pos++;
  } else {
    while (true) {
      s.skipWhitespace();
      const keyStart = s.pos;
      if (!s.skipString()) return out;
      const keyEnd = s.pos;
      s.skipWhitespace();
      if (s.peek() != 0x3a) return out;
      s.pos++;
      s.skipWhitespace();
      const valueStart = s.pos;
      if (!s.skipValue()) return out;
      const valueEnd = s.pos;
      if (stringEquals(base, keyStart, keyEnd, "model")) {
        out.addModelValue(valueStart, valueEnd);
      } else if (stringEquals(base, keyStart, keyEnd, "stream")) {
        out.streamTrue = valueEnd - valueStart == 4 && load<u8>(base + valueStart) == 0x74;
      }
      s.skipWhitespace();
      const c = s.peek();
      if (c == 0x2c) {
        s.pos++;
        continue;
      }
      if (c != 0x7d) return out;
      s.pos++;
      break;
    }
  }
  s.skipWhitespace();
  out.valid = s.pos == s.end;
  out.isObject = out.valid;
  return out;
}

/** -1 when [base, base+length) is exactly one JSON value (whitespace around it allowed), else the byte offset where it breaks. */
export function firstJsonError(base: usize, length: i32): i32 {
  const s = new Scanner(base, 0, length);
  s.skipWhitespace();
  if (!s.skipValue()) return s.pos;
  s.skipWhitespace();
  return s.pos == s.end ? -1 : s.pos;
}
