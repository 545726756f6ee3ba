// The request path's check for a streaming request: whether a JSON object body's last top-level
// "stream" member is `true`, without validating the body (json_scan.ts validates; this only tracks
// strings and nesting). Pure.
import { BACKSLASHES, HIGH_BITS, ONES, QUOTES, isWhitespace, scanTopLevel, startsWithBom } from "./json_scan";

/**
 * Whether the last top-level "stream" member of a JSON object body is `true`, found without
 * validating the body: strings and nesting are only tracked, so this runs several times faster than
 * scanTopLevel on the request path. For a valid body it agrees with scanTopLevel(...).streamTrue; a
 * key written with escapes is handed to the full scan.
 *
 * The body is read from its end (lastStreamMember): clients put `stream` among the last members, so
 * usually only the body's tail is read. A body whose end does not read as an object's (cut short,
 * or an array) is read from its start instead, as before.
 */
export function isStreamingRequest(base: usize, length: i32): bool {
  const last = lastStreamMember(base, length);
  if (last == BACKWARD_UNSURE) return streamMemberFromStart(base, length);
  return last == BACKWARD_TRUE;
}

const BACKWARD_FALSE: i32 = 0;
const BACKWARD_TRUE: i32 = 1;
/** The end does not read as a JSON object's, or a key has escapes: the caller reads from the start. */
const BACKWARD_UNSURE: i32 = -1;
const LOW_BITS: u64 = 0x7f7f7f7f7f7f7f7f;

/**
 * The last top-level "stream" member, read from the body's end. In JSON a quote inside a string is
 * escaped, so a quote byte delimits a string exactly when an even number of backslashes precede it:
 * strings can be skipped backwards as well as forwards. At depth 1, a ':' says the next string back is
 * a key, and its value lies between that ':' and the ',' or '}' after it; the first "stream" key met
 * is the last in the body, the one that counts.
 */
function lastStreamMember(base: usize, length: i32): i32 {
  let i = length - 1;
  while (i >= 0 && isWhitespace(load<u8>(base + <usize>i))) i--;
  if (i < 0 || load<u8>(base + <usize>i) != 0x7d) return BACKWARD_UNSURE;
  let depth = 1;
  let keyNext = false;
  let valueStart = 0;
  i--;
  while (i >= 0) {
    const c = load<u8>(base + <usize>i);
    if (c == 0x22) {
      const close = i;
      const open = stringStart(base, close);
      if (open < 0) return BACKWARD_UNSURE;
      i = open - 1;
      if (!keyNext) continue;
      keyNext = false;
      if (hasBackslash(base, open, close)) return BACKWARD_UNSURE;
      if (close - open == 7 && isWordAt(base + open + 1, "stream")) {
        let v = valueStart;
        while (v < length && isWhitespace(load<u8>(base + <usize>v))) v++;
        return v + 4 <= length && isWordAt(base + v, "true") ? BACKWARD_TRUE : BACKWARD_FALSE;
      }
      continue;
    }
    if (c == 0x7d || c == 0x5d) {
      depth++;
    } else if (c == 0x7b || c == 0x5b) {
      depth--;
      if (depth == 0) return c == 0x7b && !keyNext && onlyLeadingSpace(base, i) ? BACKWARD_FALSE : BACKWARD_UNSURE;
    } else if (c == 0x3a && depth == 1) {
      if (keyNext) return BACKWARD_UNSURE;
      keyNext = true;
      valueStart = i + 1;
    }
    i--;
  }
  return BACKWARD_UNSURE;
}

/** Whether only whitespace (after a UTF-8 byte order mark, if any) comes before `end`. */
function onlyLeadingSpace(base: usize, end: i32): bool {
  let k = startsWithBom(base, end) ? 3 : 0;
  while (k < end && isWhitespace(load<u8>(base + <usize>k))) k++;
  return k == end;
}

/**
 * The opening quote of the string whose closing quote is at `close`: the nearest quote before it
 * with an even number of backslashes before it; -1 when none. Message texts are the bulk of a chat
 * request: eight bytes at a time, looking for quotes only (an escape in the text does not stop it).
 */
function stringStart(base: usize, close: i32): i32 {
  let i = close;
  while (true) {
    const q = quoteBefore(base, i);
    if (q < 0) return -1;
    let k = q - 1;
    while (k >= 0 && load<u8>(base + <usize>k) == 0x5c) k--;
    if (((q - 1 - k) & 1) == 0) return q;
    i = k + 1;
  }
  return -1;
}

/** The index of the last quote before `i`, or -1. Exact per byte (no borrow crosses bytes), so the highest flag is a quote. */
function quoteBefore(base: usize, i: i32): i32 {
  while (i >= 8) {
    const x = load<u64>(base + <usize>(i - 8)) ^ QUOTES;
    const flags = ~(((x & LOW_BITS) + LOW_BITS) | x | LOW_BITS);
    if (flags != 0) return i - 8 + <i32>((63 - clz(flags)) >> 3);
    i -= 8;
  }
  while (i > 0) {
    i--;
    if (load<u8>(base + <usize>i) == 0x22) return i;
  }
  return -1;
}

/** isStreamingRequest read from the body's start: for bodies whose end does not read as an object's. */
function streamMemberFromStart(base: usize, length: i32): bool {
  let depth = 0;
  let expectKey = false;
  let streaming = false;
  let i = 0;
  while (i < length) {
    const c = load<u8>(base + i);
    if (c == 0x22) {
      const start = i;
      i = stringEnd(base, i + 1, length) + 1;
      if (depth == 1 && expectKey) {
        expectKey = false;
        if (hasBackslash(base, start, i < length ? i : length)) return scanTopLevel(base, length).streamTrue;
        if (i - start == 8 && isWordAt(base + start + 1, "stream")) {
          let v = i;
          while (v < length && (isWhitespace(load<u8>(base + v)) || load<u8>(base + v) == 0x3a)) v++;
          streaming = v + 4 <= length && isWordAt(base + v, "true");
        }
      }
      continue;
    }
    if (c == 0x7b || c == 0x5b) {
      depth++;
      expectKey = c == 0x7b && depth == 1;
    } else if (c == 0x7d || c == 0x5d) {
      depth--;
    } else if (c == 0x2c && depth == 1) {
      expectKey = true;
    }
    i++;
  }
  return streaming;
}


/**
 * Where the string whose contents start at `i` ends: the index of its closing quote, or `length`
 * when it has none. Message texts are the bulk of a chat request, so runs of eight bytes without a
 * quote or backslash are skipped a word at a time.
 */
function stringEnd(base: usize, i: i32, length: i32): i32 {
  while (i < length) {
    if (i + 8 <= length) {
      const w = load<u64>(base + <usize>i);
      const q = w ^ QUOTES;
      const b = w ^ BACKSLASHES;
      const flags = (((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGH_BITS;
      if (flags == 0) {
        i += 8;
        continue;
      }
      i += <i32>(ctz(flags) >> 3);
    }
    const d = load<u8>(base + <usize>i);
    if (d == 0x22) return i;
    i += d == 0x5c ? 2 : 1;
  }
  return length;
}

function hasBackslash(base: usize, start: i32, end: i32): bool {
  for (let k = start; k < end; k++) {
    if (load<u8>(base + <usize>k) == 0x5c) return true;
  }
  return false;
}

function isWordAt(ptr: usize, word: string): bool {
  for (let k = 0; k < word.length; k++) {
    if (<u32>load<u8>(ptr + k) != <u32>word.charCodeAt(k)) return false;
  }
  return true;
}
