// A backup attempt's request body with its top-level model rewritten for the backup's override
// (streamed mode), within the VM's one memory budget.
import { BufferType } from "../abi/enums";
import { setBufferBytes, takeBufferBytes } from "../abi/hostcalls";
import { ByteSink } from "../core/byte_sink";
import { BudgetShare } from "../core/memory_budget";
import { RewriteOutcome, planRewrite, writeRewrite } from "../core/model_rewrite";
import { vmBudget } from "../host/vm_budget";

/** rewriteBody's outcome when the VM's budget could not hold the body and its rewrite. */
export const BODY_OVER_BUDGET: i32 = -1;

/**
 * Rewrites the buffered request body's top-level model (`size` bytes) with `literal`. The body's
 * copy and its rewrite are taken from the VM's one budget and freed before this returns.
 */
export function rewriteBody(size: u32, literal: ArrayBuffer): i32 {
  const share = new BudgetShare(vmBudget);
  if (!share.tryTake(size)) return BODY_OVER_BUDGET;
  const body = new ByteSink();
  takeBufferBytes(BufferType.HttpRequestBody, 0, size, body);
  const plan = planRewrite(body.ptr, body.length, literal.byteLength);
  let outcome: i32 = plan.outcome;
  if (plan.outcome == RewriteOutcome.Rewritten) {
    if (share.tryTake(plan.size)) {
      const out = new ByteSink();
      out.resize(plan.size);
      writeRewrite(plan, body.ptr, body.length, literal, out.ptr);
      setBufferBytes(BufferType.HttpRequestBody, 0, size, out.ptr, plan.size);
      out.clear();
    } else {
      outcome = BODY_OVER_BUDGET;
    }
  }
  body.clear();
  share.releaseAll();
  return outcome;
}

/** The attempt result of a backup skipped because the VM's budget could not hold its body's rewrite (as in the dispatch mode). */
export const RESULT_OVER_BUDGET = "over_budget";
