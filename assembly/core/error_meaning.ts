// What a model service's error answer means: the codes and types its JSON error body carries, in the
// providers' own words, for neverTrigger / alwaysTrigger (policy.ts). Pure.
//
// Shapes read (each provider's public API reference):
//   OpenAI        {"error": {"message": ..., "type": "invalid_request_error", "param": ..., "code": "context_length_exceeded"}}
//   Azure OpenAI  {"error": {"code": "content_filter", ..., "innererror": {"code": "ResponsibleAIPolicyViolation", ...}}}
//   Anthropic     {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: ..."}}
//   Gemini        {"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}
// The body is read from its start up to a bound, and may be cut there, or not be JSON at all: the
// scan keeps what it found before the cut or the first byte it cannot read, and finds nothing in a
// body that does not start with an object (then the status alone decides).

/** The most of an error body read for its meaning: provider errors are a few hundred bytes. */
export const ERROR_BODY_READ_BYTES: i32 = 8 * 1024;

/**
 * How long a held error waits for its body (dispatch mode): an error's body comes with its headers
 * or just after them. Past this (a stalled body, or an Envoy that shows no body to a filter paused
 * at the headers) the status alone decides.
 */
export const ERROR_BODY_WAIT_MS: u64 = 1000;

/**
 * Anthropic answers a prompt over the model's context with a generic `invalid_request_error` whose
 * message starts so (its "prompt is too long" error): it is given OpenAI's code for the same
 * failure, so that one entry of alwaysTrigger / neverTrigger covers both.
 */
export const PROMPT_TOO_LONG_MESSAGE = "prompt is too long";
export const CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded";

/** Where a meaning sits: the string members of the top-level "error" object (and Azure's innererror). */
const MEANING_PATHS = ["error.code", "error.type", "error.status", "error.innererror.code"];
const MESSAGE_PATH = "error.message";
/** Containers deeper than error.innererror hold no meaning: their path is not built. */
const MAX_TRACKED_DEPTH = 3;
/** A longer string is no code (a message, a base64 blob): only its start is kept. */
const MAX_KEPT_CHARS = 128;
const UNTRACKED = "#";

function isWhitespace(c: u32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

function isDelimiter(c: u32): bool {
  return c == 0x2c || c == 0x7d || c == 0x5d || isWhitespace(c);
}

class ScannedString {
  constructor(public text: string, public end: i32) {}
}

/** The string whose opening quote is at `start`, its first MAX_KEPT_CHARS characters; null when cut. */
function scanString(base: usize, start: i32, length: i32): ScannedString | null {
  let pos = start + 1;
  let text = "";
  while (pos < length) {
    let c = <u32>load<u8>(base + pos);
    if (c == 0x22) return new ScannedString(text, pos + 1);
    if (c == 0x5c) {
      if (pos + 1 >= length) return null;
      const e = <u32>load<u8>(base + pos + 1);
      // Codes are plain ASCII; an escape is kept as the character it stands for when simple, else skipped.
      c = e == 0x6e ? 0x0a : e == 0x74 ? 0x09 : e == 0x75 ? 0 : e;
      pos += e == 0x75 ? 6 : 2;
      if (c != 0 && text.length < MAX_KEPT_CHARS) text += String.fromCharCode(c);
      continue;
    }
    if (text.length < MAX_KEPT_CHARS) text += String.fromCharCode(c);
    pos++;
  }
  return null;
}

/**
 * The meanings an error body (`length` bytes at `base`) carries, in the order found, each once:
 * its error's code, type, status and inner code, and CONTEXT_LENGTH_EXCEEDED for Anthropic's
 * "prompt is too long". Empty for a body that is not a JSON object with an "error" object.
 */
export function errorMeanings(base: usize, length: i32): string[] {
  const found = new Array<string>();
  // The path of each open container ("" = the top level, UNTRACKED = no meaning inside).
  const paths = new Array<string>();
  const objects = new Array<bool>();
  let key: string | null = null;
  let expectKey = false;
  let promptTooLong = false;
  let pos = 0;
  while (pos < length) {
    const c = <u32>load<u8>(base + pos);
    if (isWhitespace(c)) {
      pos++;
      continue;
    }
    const depth = paths.length;
    if (depth == 0 && c != 0x7b) break; // not an object (or its end): nothing more to learn
    if (c == 0x7b || c == 0x5b) {
      let path = UNTRACKED;
      if (depth == 0) path = "";
      else if (c == 0x7b && key !== null && depth < MAX_TRACKED_DEPTH && paths[depth - 1] != UNTRACKED) {
        const parent = paths[depth - 1];
        path = parent.length == 0 ? key : parent + "." + key;
      }
      paths.push(path);
      objects.push(c == 0x7b);
      expectKey = c == 0x7b;
      key = null;
      pos++;
      continue;
    }
    if (c == 0x7d || c == 0x5d) {
      paths.pop();
      objects.pop();
      if (paths.length == 0) break;
      expectKey = false;
      key = null;
      pos++;
      continue;
    }
    if (c == 0x2c) {
      expectKey = objects[depth - 1];
      key = null;
      pos++;
      continue;
    }
    if (c == 0x3a) {
      expectKey = false;
      pos++;
      continue;
    }
    if (c == 0x22) {
      const s = scanString(base, pos, length);
      if (s === null) break;
      pos = s.end;
      if (expectKey) {
        key = s.text;
        continue;
      }
      const parent = paths[depth - 1];
      if (key !== null && parent != UNTRACKED && objects[depth - 1]) {
        const path = parent.length == 0 ? key : parent + "." + key;
        if (MEANING_PATHS.includes(path)) addOnce(found, s.text);
        else if (path == MESSAGE_PATH && s.text.startsWith(PROMPT_TOO_LONG_MESSAGE)) promptTooLong = true;
      }
      key = null;
      continue;
    }
    // A number, true, false or null: skipped to its end.
    while (pos < length && !isDelimiter(<u32>load<u8>(base + pos))) pos++;
    key = null;
  }
  if (promptTooLong) addOnce(found, CONTEXT_LENGTH_EXCEEDED);
  return found;
}

function addOnce(list: string[], s: string): void {
  if (s.length > 0 && !list.includes(s)) list.push(s);
}
