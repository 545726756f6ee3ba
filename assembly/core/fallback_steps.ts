// What the fallback state machine tells its glue: the phase a request is in, how an answer reaches the
// client, and the step to carry out next. Pure.

export const enum Phase {
  /** The request is still streaming in; its body is being copied. */
  Request = 0,
  /** The request is complete; no response yet. */
  AwaitingResponse = 1,
  /** A streaming request's 2xx headers are held until its first body packet (or the timer). */
  HoldingFirstPacket = 2,
  /** The primary response flows to the client; nothing more to decide. */
  PassThrough = 3,
  /** Backups are being tried; the primary response (if any) is held. */
  FallingBack = 4,
  /** This filter's local reply is on its way (its own callbacks must let it pass): its own error,
   *  or an answer Envoy sends straight to the client (Delivery.Direct). */
  Replying = 5,
  /** The held primary response was resumed after every backup failed. */
  Resumed = 6,
  /** The stream is finished. */
  Done = 7,
  /** An answer is being written into the response that leaves through the encoder filters
   *  (Delivery.SwapInPlace or Delivery.ThroughFilterChain). */
  Answering = 8,
  /** A model service's error is held (its headers, its body buffered) until its body says what it
   *  means (error_meaning.ts): then it falls back or passes through. */
  ReadingErrorBody = 9,
}

/**
 * How an answer (a backup's, or the last error) reaches the client. Envoy decides what is possible:
 * a held response can only take a new body in a body callback of its own, and a local reply sent
 * while the primary's headers are held goes straight to the codec, past every encoder filter.
 */
export const enum Delivery {
  /** The held primary response (an error with a body to come) becomes the answer: its status and
   *  headers are replaced, the stream continues, and its first body callback carries the answer's
   *  body. The answer leaves through the remaining encoder filters like an upstream response. */
  SwapInPlace = 0,
  /** No primary response exists: a local reply runs through the whole encoder chain, and this
   *  filter's own callbacks rewrite it to the answer (undoing local_reply_config), so the filters
   *  before this one see the answer exactly. */
  ThroughFilterChain = 1,
  /** The primary's headers are held but no body callback of it can follow (a headers-only
   *  response, or a held 2xx): a local reply, which Envoy sends straight to the client. */
  Direct = 2,
  /** The held primary error's whole body was read for its meaning and waits buffered in Envoy (no
   *  body callback of it will follow): the answer's headers and body replace the held ones, and the
   *  stream continues; the answer leaves through the remaining encoder filters, as with SwapInPlace. */
  SwapBuffered = 3,
}

export const enum Step {
  /** Let the primary's headers or body continue. */
  Continue = 0,
  /** Pause the primary's response (its headers, or its body with flow control). */
  Hold = 1,
  /** Dispatch `machine.currentBackup` with `machine.callTimeoutMs`. */
  Dispatch = 2,
  /** Send the backup's answer as the response. */
  ServeBackup = 3,
  /** Every backup failed: send the last backup error answer. */
  ServeLastError = 4,
  /** No backup served: let the held primary response continue (a held 2xx, or the only answer at hand). */
  ResumePrimary = 5,
  /** Every backup failed and no HTTP answer is at hand: send the filter's own error. */
  ReplyError = 6,
  /** Pause the primary's body and keep it in one buffer, to be read whole with the next chunk. */
  HoldBuffered = 7,
  /** Pause the primary's headers and every frame after them, unseen (Envoy buffers the body with
   *  flow control); continuing later replays the body to this filter. */
  HoldWhole = 8,
  /** Replace these response headers (this filter's own local reply) with the answer's. */
  WriteHeaders = 9,
  /** Replace this body chunk with the answer's body, and continue. */
  WriteBody = 10,
  /** Empty this body chunk (the rest of a replaced response), and continue. */
  DropChunk = 11,
  /** Let the held 2xx headers go on, unmarked: the request's final route times no first packet. */
  ReleasePrimary = 12,
  /** `hedge`: the primary's first content came before the racing backup's answer was complete: the
   *  backup's call is dropped, and the primary's held response goes on, marked with what was tried. */
  PrimaryWinsRace = 13,
  /** `retry`: the current backup failed in a way that is retried: call it again at `machine.retryAtMs`. */
  WaitRetry = 14,
}
