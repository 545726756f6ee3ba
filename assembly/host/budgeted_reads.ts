// Reads from the host into memory taken from a stream's budget share (memory_budget.ts): a request
// body's copy as it streams past, and a held response body checked for keep-alives. Shared by the
// filter (dispatch/fallback_stream.ts) and the primary guard (upstream/guard_stream.ts).
import { BufferType } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { BudgetShare } from "../core/memory_budget";
import { isFirstPacket } from "../core/sse";

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
