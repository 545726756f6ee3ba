// firstPacket "content": which Server-Sent Events of a streamed answer carry content. Pure.
//
// A model service may open its stream at once with events that say nothing yet: keep-alive comments,
// Anthropic's `ping`, `message_start` and `content_block_start`, OpenAI Responses' `response.created`,
// `response.in_progress` and the `.added` events that announce an output, an OpenAI chat chunk whose
// deltas only name the role (or an Azure OpenAI chunk with no choices, its prompt filter results).
// They do not end the wait for the first packet. An error event before any content (`event: error`,
// Anthropic's `{"type":"error",...}`, Responses' `response.failed`, a `data: {"error": {...}}` chunk)
// is a failure. Anything else is content, and so is whatever is not SSE at all: a stream this file
// does not know is never held for its shape.

import { Scanner, stringEquals } from "./json_scan";

export const enum FirstContent {
  /** Only events without content so far (or an event not complete yet): the first packet is still awaited. */
  Waiting = 0,
  /** Content, the stream's end (`[DONE]`), or something this file does not know: the first packet. */
  Content = 1,
  /** An error event came before any content: the answer failed. */
  Error = 2,
}

/**
 * The most bytes held while the first content is awaited. Past it the held bytes count as the first
 * packet (they flow, as with firstPacket "byte"): neither Envoy's buffer nor the VM's copy of one
 * event grows without bound, whatever a model service sends before its first token.
 */
export const MAX_WAITING_BYTES: i32 = 64 * 1024;

export class ContentScan {
  verdict: FirstContent = FirstContent.Waiting;
  /** Bytes of complete events, all without content: the next scan may start after them. */
  consumed: i32 = 0;
}

/** Event names that carry no content. */
const METADATA_EVENTS: string[] = [
  "ping", "message_start", "content_block_start",
  "response.created", "response.in_progress", "response.queued", "response.output_item.added", "response.content_part.added",
];
/** Event names (and JSON `type`s) of a failed answer. */
const ERROR_EVENTS: string[] = ["error", "response.failed"];

const LF: u32 = 0x0a;
const CR: u32 = 0x0d;
const COLON: u32 = 0x3a;

function byteAt(base: usize, i: i32): u32 {
  return <u32>load<u8>(base + <usize>i);
}

/** Whether [start, end) is the ASCII `word`. */
function bytesAre(base: usize, start: i32, end: i32, word: string): bool {
  if (end - start != word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if (byteAt(base, start + k) != <u32>word.charCodeAt(k)) return false;
  }
  return true;
}

function bytesAreOneOf(base: usize, start: i32, end: i32, words: string[]): bool {
  for (let i = 0; i < words.length; i++) if (bytesAre(base, start, end, words[i])) return true;
  return false;
}

/** Whether the JSON string at [start, end) (quotes included) is one of `words`. */
function stringIsOneOf(base: usize, start: i32, end: i32, words: string[]): bool {
  for (let i = 0; i < words.length; i++) if (stringEquals(base, start, end, words[i])) return true;
  return false;
}

/** A line may start an SSE field this file reads (event, data, id, retry) or be a comment. */
function mayStartSseLine(c: u32): bool {
  return c == COLON || c == 0x65 || c == 0x64 || c == 0x69 || c == 0x72;
}

/**
 * Scans the held answer [base, base+length), which starts at an event's start (`alreadyConsumed`
 * bytes before it were judged already): complete events are judged in order, the first with
 * content or an error decides. An event cut by the end of what arrived so far waits for the rest.
 */
export function scanForContent(base: usize, length: i32, alreadyConsumed: i32 = 0): ContentScan {
  const out = new ContentScan();
  let pos = 0;
  let nameStart = -1, nameEnd = -1, dataStart = -1, dataEnd = -1, dataLines = 0;
  while (pos < length) {
    if (!mayStartSseLine(byteAt(base, pos)) && byteAt(base, pos) != LF && byteAt(base, pos) != CR) {
      out.verdict = FirstContent.Content;
      return out;
    }
    let end = pos;
    while (end < length && byteAt(base, end) != LF && byteAt(base, end) != CR) end++;
    // A line is complete at its end of line (a CR last may be the first half of CRLF).
    if (end >= length || (byteAt(base, end) == CR && end + 1 >= length)) break;
    const next = byteAt(base, end) == CR && byteAt(base, end + 1) == LF ? end + 2 : end + 1;
    if (end == pos) {
      // A blank line ends the event.
      const verdict = dataLines == 0 && nameStart < 0 ? FirstContent.Waiting
        : classifyEvent(base, nameStart, nameEnd, dataStart, dataEnd, dataLines);
      if (verdict != FirstContent.Waiting) {
        out.verdict = verdict;
        return out;
      }
      out.consumed = next;
      nameStart = nameEnd = dataStart = dataEnd = -1;
      dataLines = 0;
    } else if (byteAt(base, pos) != COLON) {
      let colon = pos;
      while (colon < end && byteAt(base, colon) != COLON) colon++;
      let value = colon < end ? colon + 1 : end;
      if (value < end && byteAt(base, value) == 0x20) value++;
      if (bytesAre(base, pos, colon, "event")) {
        nameStart = value;
        nameEnd = end;
      } else if (bytesAre(base, pos, colon, "data")) {
        if (dataLines == 0) {
          dataStart = value;
          dataEnd = end;
        }
        dataLines++;
      } else if (!bytesAre(base, pos, colon, "id") && !bytesAre(base, pos, colon, "retry")) {
        // Not an SSE field: not a stream of events this file knows.
        out.verdict = FirstContent.Content;
        return out;
      }
    }
    pos = next;
  }
  if (alreadyConsumed + length > MAX_WAITING_BYTES) out.verdict = FirstContent.Content;
  return out;
}

/** One complete event: its name (if any) and its first data line. */
function classifyEvent(base: usize, nameStart: i32, nameEnd: i32, dataStart: i32, dataEnd: i32, dataLines: i32): FirstContent {
  if (nameStart >= 0) {
    if (bytesAreOneOf(base, nameStart, nameEnd, ERROR_EVENTS)) return FirstContent.Error;
    if (bytesAreOneOf(base, nameStart, nameEnd, METADATA_EVENTS)) return FirstContent.Waiting;
  }
  // A named event without data is not dispatched (SSE); several data lines are one text this file does not join.
  if (dataLines == 0) return FirstContent.Waiting;
  if (dataLines > 1) return FirstContent.Content;
  return classifyData(base, dataStart, dataEnd);
}

/** An event's data: a JSON object with an error, a metadata `type`, or chat choices without content; anything else is content. */
function classifyData(base: usize, start: i32, end: i32): FirstContent {
  const s = new Scanner(base, start, end);
  s.skipWhitespace();
  if (s.peek() != 0x7b) return FirstContent.Content;
  s.pos++;
  let choicesStart = -1, choicesEnd = -1;
  let metadata = false;
  s.skipWhitespace();
  if (s.peek() == 0x7d) return FirstContent.Content;
  while (true) {
    s.skipWhitespace();
    const keyStart = s.pos;
    if (!s.skipString()) return FirstContent.Content;
    const keyEnd = s.pos;
    s.skipWhitespace();
    if (s.peek() != COLON) return FirstContent.Content;
    s.pos++;
    s.skipWhitespace();
    const valueStart = s.pos;
    if (!s.skipValue()) return FirstContent.Content;
    const valueEnd = s.pos;
    if (stringEquals(base, keyStart, keyEnd, "type") && byteAt(base, valueStart) == 0x22) {
      if (stringIsOneOf(base, valueStart, valueEnd, ERROR_EVENTS)) return FirstContent.Error;
      if (stringIsOneOf(base, valueStart, valueEnd, METADATA_EVENTS)) metadata = true;
    } else if (stringEquals(base, keyStart, keyEnd, "error") && byteAt(base, valueStart) == 0x7b) {
      return FirstContent.Error;
    } else if (stringEquals(base, keyStart, keyEnd, "choices")) {
      choicesStart = valueStart;
      choicesEnd = valueEnd;
    }
    s.skipWhitespace();
    const c = s.peek();
    if (c == 0x2c) {
      s.pos++;
      continue;
    }
    if (c != 0x7d) return FirstContent.Content;
    break;
  }
  if (metadata) return FirstContent.Waiting;
  if (choicesStart >= 0 && choicesHaveNoContent(base, choicesStart, choicesEnd)) return FirstContent.Waiting;
  return FirstContent.Content;
}

/** A JSON value that says nothing: null, "", [] or {}. */
function isEmptyValue(base: usize, start: i32, end: i32): bool {
  if (bytesAre(base, start, end, "null")) return true;
  if (end - start != 2) return false;
  const a = byteAt(base, start), b = byteAt(base, start + 1);
  return (a == 0x22 && b == 0x22) || (a == 0x5b && b == 0x5d) || (a == 0x7b && b == 0x7d);
}

/**
 * An OpenAI chat chunk's `choices`: none, or each a delta naming only its role (members null or
 * empty besides), without a finish_reason. Any other shape is content.
 */
function choicesHaveNoContent(base: usize, start: i32, end: i32): bool {
  const s = new Scanner(base, start, end);
  if (s.peek() != 0x5b) return false;
  s.pos++;
  s.skipWhitespace();
  if (s.peek() == 0x5d) return true;
  while (true) {
    s.skipWhitespace();
    const choiceStart = s.pos;
    if (!s.skipValue()) return false;
    if (!choiceHasNoContent(base, choiceStart, s.pos)) return false;
    s.skipWhitespace();
    const c = s.peek();
    if (c == 0x2c) {
      s.pos++;
      continue;
    }
    return c == 0x5d;
  }
  return false;
}

/** One choice (or, `inDelta`, its delta): members whose values say nothing, a role, an index. */
function choiceHasNoContent(base: usize, start: i32, end: i32, inDelta: bool = false): bool {
  const s = new Scanner(base, start, end);
  if (s.peek() != 0x7b) return false;
  s.pos++;
  s.skipWhitespace();
  if (s.peek() == 0x7d) return true;
  while (true) {
    s.skipWhitespace();
    const keyStart = s.pos;
    if (!s.skipString()) return false;
    const keyEnd = s.pos;
    s.skipWhitespace();
    if (s.peek() != COLON) return false;
    s.pos++;
    s.skipWhitespace();
    const valueStart = s.pos;
    if (!s.skipValue()) return false;
    const valueEnd = s.pos;
    if (inDelta) {
      if (!stringEquals(base, keyStart, keyEnd, "role") && !isEmptyValue(base, valueStart, valueEnd)) return false;
    } else if (stringEquals(base, keyStart, keyEnd, "delta")) {
      if (!choiceHasNoContent(base, valueStart, valueEnd, true)) return false;
    } else if (stringEquals(base, keyStart, keyEnd, "finish_reason")) {
      if (!bytesAre(base, valueStart, valueEnd, "null")) return false;
    }
    // index, logprobs, Azure's content_filter_results: not content.
    s.skipWhitespace();
    const c = s.peek();
    if (c == 0x2c) {
      s.pos++;
      continue;
    }
    return c == 0x7d;
  }
  return false;
}
