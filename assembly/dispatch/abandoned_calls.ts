// Backup calls whose stream ended first (the client left mid-fallback). The ABI cannot cancel a
// call: Envoy carries it on to the backup's answer or the call's timeout, holding its connection,
// its copy of the request and about 7 KiB of its own per call (measured in Envoy 1.40). What each
// holds is counted in the VM's budget until its answer comes, so clients that leave mid-fallback
// cannot pile up calls past the budget: once it is spent, new fallbacks are refused (over_budget).
import { showKeptBytes, vmBudget } from "../host/vm_budget";

/** Envoy's own memory per call in flight, beyond the request's bytes (about 6.7 KiB measured), rounded up. */
export const ENVOY_BYTES_PER_CALL: i64 = 8 * 1024;

const held = new Map<u64, i64>();

/** The call `key` outlives its stream; it holds `requestBytes` (its headers and body) in Envoy. */
export function holdAbandonedCall(key: u64, requestBytes: i64): void {
  const bytes = requestBytes + ENVOY_BYTES_PER_CALL;
  vmBudget.hold(bytes);
  held.set(key, bytes);
}

/** Abandoned calls still in flight on this worker. */
export function abandonedCalls(): i32 {
  return held.size;
}

/** The abandoned call `key` got its answer: what it held goes back (main.ts hands this to the registry). */
export function abandonedCallAnswered(key: u64): void {
  if (!held.has(key)) return;
  vmBudget.give(held.get(key));
  held.delete(key);
  showKeptBytes();
}
