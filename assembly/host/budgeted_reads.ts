// Reads from the host into memory taken from a stream's budget share (memory_budget.ts): a request
// body's copy as it streams past, and a held response body checked for keep-alives. Shared by the
// filter (dispatch/fallback_stream.ts) and the primary guard (upstream/guard_stream.ts).
import { BufferType, MapType } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { BudgetShare } from "../core/memory_budget";
import { isFirstPacket } from "../core/sse";
import { FirstContent, MAX_WAITING_BYTES, scanForContent } from "../core/first_content";
import { FirstPacket } from "../core/config/config";
import { ERROR_BODY_READ_BYTES, errorMeanings } from "../core/error_meaning";

/**
 * Appends the current request body chunk to `sink` (the host writes it straight into the free
 * space). When the copy must grow, the budget is asked first for the new allocation, which exists
 * beside the old one while the bytes move. False, with nothing appended, when that does not fit.
 */
export function appendRequestChunk(sink: ByteSink, share: BudgetShare, size: u32): bool {
  const before = sink.capacity;
  const after = sink.capacityFor(<i32>size);
  if (after == before) {
    host.appendBufferBytes(BufferType.HttpRequestBody, 0, size, sink);
    return true;
  }
  if (!share.tryTake(after)) return false;
  host.appendBufferBytes(BufferType.HttpRequestBody, 0, size, sink);
  share.give(before);
  return true;
}

export const enum HeldBody {
  /** A line that is neither an SSE comment nor blank: the first packet. */
  FirstPacket = 0,
  /** Only keep-alives so far. */
  KeepAlivesOnly = 1,
  /** No room in the budget to read it (the caller decides, and says so). */
  OverBudget = 2,
  /** firstPacket "content": an error event came before any content. */
  Error = 3,
}

/**
 * What the held response body (`size` bytes: Envoy's buffer accumulates the held chunks, so it is
 * read whole each time) holds so far. The copy is budgeted and freed at once.
 */
export function checkHeldResponseBody(share: BudgetShare, size: u32): HeldBody {
  if (!share.tryTake(size)) return HeldBody.OverBudget;
  const held = new ByteSink();
  host.takeBufferBytes(BufferType.HttpResponseBody, 0, size, held);
  const first = isFirstPacket(held.ptr, held.length);
  held.clear();
  share.give(size);
  return first ? HeldBody.FirstPacket : HeldBody.KeepAlivesOnly;
}

/** firstPacket "content": where the next read of a held body starts (the events before it had no content). */
export class ContentCursor {
  consumed: u32 = 0;
}

/**
 * firstPacket "content": what the held response body (`size` bytes, all held so far) holds. Only
 * what follows the events already judged is read (a budgeted copy, freed at once), and never more
 * than MAX_WAITING_BYTES: past it the held body counts as the first packet.
 */
export function checkHeldForContent(share: BudgetShare, size: u32, cursor: ContentCursor): HeldBody {
  if (size > <u32>MAX_WAITING_BYTES || cursor.consumed > size) return HeldBody.FirstPacket;
  const fresh = size - cursor.consumed;
  if (!share.tryTake(fresh)) return HeldBody.OverBudget;
  const held = new ByteSink();
  host.takeBufferBytes(BufferType.HttpResponseBody, cursor.consumed, fresh, held);
  const scan = scanForContent(held.ptr, held.length, <i32>cursor.consumed);
  held.clear();
  share.give(fresh);
  if (scan.verdict == FirstContent.Error) return HeldBody.Error;
  if (scan.verdict == FirstContent.Content) return HeldBody.FirstPacket;
  cursor.consumed += <u32>scan.consumed;
  return HeldBody.KeepAlivesOnly;
}

/**
 * A held body judged as `mode` says ("event": keep-alives or not; "content": events without content,
 * content or an error; `cursor` is needed for "content" only).
 */
export function judgeHeldBody(share: BudgetShare, size: u32, mode: FirstPacket, cursor: ContentCursor | null): HeldBody {
  return mode == FirstPacket.Content ? checkHeldForContent(share, size, cursor!) : checkHeldResponseBody(share, size);
}

/** What a held body was not checked for, in the over-budget log line. */
export function checkedFor(mode: FirstPacket): string {
  return mode == FirstPacket.Content ? "content" : "keep-alives";
}

/**
 * What a held error body (`size` bytes so far) means: its first ERROR_BODY_READ_BYTES read for
 * their error codes (error_meaning.ts). The copy is budgeted and freed at once; without room for it,
 * none (the status alone decides). Read on the error path only.
 */
export function heldErrorMeanings(share: BudgetShare, size: u32): string[] {
  const n = size < <u32>ERROR_BODY_READ_BYTES ? size : <u32>ERROR_BODY_READ_BYTES;
  if (n == 0 || !share.tryTake(n)) return [];
  const held = new ByteSink();
  host.takeBufferBytes(BufferType.HttpResponseBody, 0, n, held);
  const meanings = errorMeanings(held.ptr, held.length);
  held.clear();
  share.give(n);
  return meanings;
}

/** Whether the response headers announce a body over `bytes` (content-length); asked on errors only. */
export function responseAnnouncesOver(bytes: i32): bool {
  const length = host.getHeader(MapType.HttpResponseHeaders, "content-length");
  return length !== null && (length.length > 9 || I32.parseInt(length) > bytes);
}
