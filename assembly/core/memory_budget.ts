// The VM's memory budget: every byte the module allocates for in-flight requests (request copies
// with their spare capacity, model-override copies, kept backup answers, header copies, chunks read
// from the host) is taken from one per-VM budget before it is allocated, and given back when it is
// freed. Past the budget a request passes through without fallback instead of growing the VM until
// an allocation traps and kills it. Pure.

/** One VM's budget (one VM per Envoy worker; vm_budget.ts holds the one every root context in it shares). */
export class MemoryBudget {
  /** Bytes taken and not given back. */
  used: i64 = 0;
  /** The most `used` has been (for operators and tests). */
  peak: i64 = 0;

  constructor(public limit: i64) {}

  /** Takes `size` bytes; false (and nothing taken) when that would pass the limit. */
  tryTake(size: i64): bool {
    if (size <= 0) return true;
    if (this.used + size > this.limit) return false;
    this.used += size;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  /** Counts `size` bytes the host keeps for the module whatever the limit: takes fail until they are given back. */
  hold(size: i64): void {
    this.used += size;
    if (this.used > this.peak) this.peak = this.used;
  }

  give(size: i64): void {
    this.used -= size;
  }
}

/**
 * What one stream holds of its VM's budget. Taken piece by piece, given back piece by piece as
 * copies are freed, and all at once (`releaseAll`) when the stream ends: the one teardown path.
 */
export class BudgetShare {
  held: i64 = 0;

  constructor(private budget: MemoryBudget) {}

  tryTake(size: i64): bool {
    if (!this.budget.tryTake(size)) return false;
    this.held += size;
    return true;
  }

  give(size: i64): void {
    const n = size < this.held ? size : this.held;
    this.budget.give(n);
    this.held -= n;
  }

  releaseAll(): void {
    this.budget.give(this.held);
    this.held = 0;
  }
}

/**
 * The limit of a VM's budget when several plugin configurations share the VM (the same vm_id: each
 * has its own root context, and each of ai-fallback's may set maxKeptBytesPerWorker): the smallest
 * any of them sets, else the default. The budget guards the VM, and they share it.
 */
export class BudgetLimits {
  private byRoot: Map<u32, i64> = new Map<u32, i64>();

  constructor(private defaultLimit: i64) {}

  /** A root context's configured limit (a reconfiguration replaces it). */
  set(rootId: u32, limit: i64): void {
    this.byRoot.set(rootId, limit);
  }

  /** A root context that is gone no longer counts. */
  forget(rootId: u32): void {
    if (this.byRoot.has(rootId)) this.byRoot.delete(rootId);
  }

  get current(): i64 {
    const limits = this.byRoot.values();
    if (limits.length == 0) return this.defaultLimit;
    let smallest = limits[0];
    for (let i = 1; i < limits.length; i++) if (limits[i] < smallest) smallest = limits[i];
    return smallest;
  }
}
