// Byte-exact replacement of the top-level "model" value of a JSON request body. Every other byte
// stays as the client sent it (no re-serialisation). Pure.
import { Span, TopLevel, scanTopLevel } from "./json_scan";

export const enum RewriteOutcome {
  /** The body now carries the override model. */
  Rewritten = 0,
  /** The body is not a JSON object: sent as it is. */
  NotJsonObject = 1,
  /** A JSON object without a top-level "model": sent as it is. */
  NoModel = 2,
}

export class RewriteResult {
  constructor(public outcome: RewriteOutcome, public body: ArrayBuffer) {}
}

/**
 * The JSON string literal (quotes included, UTF-8) for a model name. Computed once per backup at
 * configuration time.
 */
export function jsonStringLiteral(text: string): ArrayBuffer {
  const utf8 = Uint8Array.wrap(String.UTF8.encode(text));
  // Measure, then write once.
  let size = 2;
  for (let i = 0; i < utf8.length; i++) {
    const c = utf8[i];
    size += c == 0x22 || c == 0x5c ? 2 : c < 0x20 ? 6 : 1;
  }
  const out = new Uint8Array(size);
  let at = 0;
  out[at++] = 0x22;
  for (let i = 0; i < utf8.length; i++) {
    const c = utf8[i];
    if (c == 0x22 || c == 0x5c) {
      out[at++] = 0x5c;
      out[at++] = c;
    } else if (c < 0x20) {
      out[at++] = 0x5c;
      out[at++] = 0x75;
      out[at++] = 0x30;
      out[at++] = 0x30;
      out[at++] = c < 0x10 ? 0x30 : 0x31;
      const low = c & 0x0f;
      out[at++] = <u8>(low < 10 ? 0x30 + low : 0x61 + low - 10);
    } else {
      out[at++] = c;
    }
  }
  out[at++] = 0x22;
  return out.buffer;
}

/** Where the top-level "model" values of a body are, and the size of the body once they are replaced. */
export class RewritePlan {
  constructor(public outcome: RewriteOutcome, public size: i32, public spans: Span[]) {}
}

// One plan and one scan result, reused by every planRewrite: a rewrite is planned and written at
// once (wasm is single-threaded, and no caller keeps a plan), so a fallback's dispatch allocates none.
const PLAN_SCAN = new TopLevel();
const NO_SPANS: Span[] = [];
const PLAN = new RewritePlan(RewriteOutcome.NoModel, 0, NO_SPANS);

function planned(outcome: RewriteOutcome, size: i32, spans: Span[]): RewritePlan {
  const plan = PLAN;
  plan.outcome = outcome;
  plan.size = size;
  plan.spans = spans;
  return plan;
}

/**
 * Measures the rewrite of the body at [body, body+length) with a literal of `literalLength` bytes.
 * The plan is valid until the next planRewrite (write it at once).
 */
export function planRewrite(body: usize, length: i32, literalLength: i32): RewritePlan {
  const scan: TopLevel = scanTopLevel(body, length, PLAN_SCAN);
  if (!scan.isObject) return planned(RewriteOutcome.NotJsonObject, length, NO_SPANS);
  const spans = scan.modelValues;
  if (spans.length == 0) return planned(RewriteOutcome.NoModel, length, spans);
  let size = length;
  for (let i = 0; i < spans.length; i++) size += literalLength - (spans[i].end - spans[i].start);
  return planned(RewriteOutcome.Rewritten, size, spans);
}

/** Writes the rewritten body (plan.size bytes) to `dst`: every span replaced by the literal. */
export function writeRewrite(plan: RewritePlan, body: usize, length: i32, modelLiteral: ArrayBuffer, dst: usize): void {
  const literal = changetype<usize>(modelLiteral);
  let from = 0;
  let at: usize = 0;
  for (let i = 0; i < plan.spans.length; i++) {
    const span = plan.spans[i];
    memory.copy(dst + at, body + from, span.start - from);
    at += span.start - from;
    memory.copy(dst + at, literal, modelLiteral.byteLength);
    at += modelLiteral.byteLength;
    from = span.end;
  }
  memory.copy(dst + at, body + from, length - from);
}

/** Replaces every top-level "model" value of `body` with `modelLiteral` (a JSON string literal). */
export function rewriteModel(body: ArrayBuffer, modelLiteral: ArrayBuffer): RewriteResult {
  const base = changetype<usize>(body);
  const plan = planRewrite(base, body.byteLength, modelLiteral.byteLength);
  if (plan.outcome != RewriteOutcome.Rewritten) return new RewriteResult(plan.outcome, body);
  const out = new ArrayBuffer(plan.size);
  writeRewrite(plan, base, body.byteLength, modelLiteral, changetype<usize>(out));
  return new RewriteResult(RewriteOutcome.Rewritten, out);
}
