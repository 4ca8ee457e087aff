import type { Dec } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import type { BudgetReserver, ReserveOptions, ReserveOutcome } from "./budget-reserver.ts";
import { MemoryBudgetReserver } from "./memory-budget-reserver.ts";
import type { RedisBudgetReserver } from "./redis-budget-reserver.ts";

export interface BudgetFallbackHooks {
  /** Redis was lost: this instance's own holds from now on (log it, count it in /metrics) */
  onFallback?: (err: unknown) => void;
  /** Redis answers again: shared holds from now on */
  onRecover?: () => void;
}

/**
 * Redis's holds while Redis answers; this process's own holds at once when it does not (DESIGN: a
 * lost Redis falls back to per-instance counters). During an outage each instance enforces the
 * budget on its own requests only, so instances together may overrun it by what they hold in
 * flight; the committed spend still comes from the store, so nothing committed is forgotten.
 * A hold lives where it was made: settle, renew and release go to the same side (a Redis hold
 * that cannot be settled during the outage expires there by itself).
 */
export class FallbackBudgetReserver implements BudgetReserver {
  private readonly memory: MemoryBudgetReserver;
  /** holds made in this process during an outage */
  private readonly local = new Set<string>();
  private up = true;

  constructor(
    private readonly redis: RedisBudgetReserver,
    now: () => number = Date.now,
    private readonly hooks: BudgetFallbackHooks = {},
  ) {
    this.memory = new MemoryBudgetReserver(now);
    redis.onReady(() => {
      if (this.up) return;
      this.up = true;
      this.hooks.onRecover?.();
    });
  }

  /** Which holds answer now. */
  get backend(): "redis" | "memory" {
    return this.up ? "redis" : "memory";
  }

  mark(): Promise<number> {
    return this.either(
      () => this.redis.mark(),
      () => this.memory.mark(),
    );
  }

  reserve(accountId: string, amount: Dec, options: ReserveOptions): Promise<ReserveOutcome> {
    return this.either(
      () => this.redis.reserve(accountId, amount, options),
      async () => {
        const outcome = await this.memory.reserve(accountId, amount, options);
        if (outcome.ok) this.local.add(outcome.holdId);
        return outcome;
      },
    );
  }

  async settle(holdId: string, actualCost: Dec): Promise<boolean> {
    if (!this.local.has(holdId)) return this.redis.settle(holdId, actualCost);
    const settled = await this.memory.settle(holdId, actualCost);
    if (!settled) this.local.delete(holdId); // expired: nothing left to route
    return settled;
  }

  renew(holdId: string, ttlMs: number): Promise<boolean> {
    if (this.local.has(holdId)) return this.memory.renew(holdId, ttlMs);
    return this.redis.renew(holdId, ttlMs);
  }

  async release(holdId: string): Promise<boolean> {
    if (!this.local.has(holdId)) return this.redis.release(holdId);
    // the memory side keeps it for older snapshots; this process needs no route to it any more
    this.local.delete(holdId);
    return this.memory.release(holdId);
  }

  async held(accountId: string): Promise<Dec> {
    const mine = await this.memory.held(accountId);
    if (!this.up) return mine;
    try {
      return (await this.redis.held(accountId)) + mine;
    } catch (err) {
      this.fallBack(err);
      return mine;
    }
  }

  async close(): Promise<void> {
    this.up = false;
    await this.memory.close();
    await this.redis.close();
  }

  private async either<T>(shared: () => Promise<T>, own: () => Promise<T>): Promise<T> {
    if (this.up) {
      try {
        return await shared();
      } catch (err) {
        if (!(err instanceof DomainError && err.code === "UNAVAILABLE")) throw err;
        this.fallBack(err);
      }
    }
    return own();
  }

  private fallBack(err: unknown): void {
    if (!this.up) return;
    this.up = false;
    this.hooks.onFallback?.(err);
  }
}
