import { randomUUID } from "node:crypto";
import { availableOf, fits } from "../domain/budget.ts";
import { type Dec, ZERO } from "../domain/decimal.ts";
import {
  accountOfHold,
  type BudgetReserver,
  holdIdOf,
  RELEASE_GRACE_MS,
  type ReserveOptions,
  type ReserveOutcome,
  StaleSpendError,
} from "./budget-reserver.ts";

interface Hold {
  amount: Dec;
  expiresAt: number;
  /** when its event was committed; null while the request runs */
  releasedAt: number | null;
}

/**
 * Holds in this process's memory, for a single instance (SQLite). Every method runs synchronously
 * between awaits, so check-and-hold is atomic within the process. The same rules as the Redis
 * script: expired holds are dropped first, released holds count only for older snapshots.
 */
export class MemoryBudgetReserver implements BudgetReserver {
  private readonly accounts = new Map<string, Map<string, Hold>>();
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly graceMs: number = RELEASE_GRACE_MS,
  ) {}

  async mark(): Promise<number> {
    return this.now();
  }

  async reserve(accountId: string, amount: Dec, o: ReserveOptions): Promise<ReserveOutcome> {
    const at = this.now();
    if (o.spentAsOf < at - this.graceMs) throw new StaleSpendError(at - o.spentAsOf, this.graceMs);
    this.prune(at);
    const holds = this.live(accountId, at);
    let held = ZERO;
    for (const h of holds.values()) {
      // released before the snapshot: the snapshot already counts its event
      if (h.releasedAt !== null && h.releasedAt < o.spentAsOf) continue;
      held += h.amount;
    }
    if (o.limit !== null) {
      const available = availableOf(o.limit, o.spentSoFar, held);
      if (!fits(available, amount)) return { ok: false, held, available };
    }
    const holdId = holdIdOf(accountId, randomUUID());
    holds.set(holdId, { amount, expiresAt: at + o.ttlMs, releasedAt: null });
    this.accounts.set(accountId, holds);
    return { ok: true, holdId, held };
  }

  async settle(holdId: string, actualCost: Dec): Promise<boolean> {
    const h = this.find(holdId);
    if (!h || h.releasedAt !== null) return false;
    h.amount = actualCost;
    return true;
  }

  async renew(holdId: string, ttlMs: number): Promise<boolean> {
    const h = this.find(holdId);
    if (!h || h.releasedAt !== null) return false;
    h.expiresAt = this.now() + ttlMs;
    return true;
  }

  async release(holdId: string): Promise<boolean> {
    const h = this.find(holdId);
    if (!h || h.releasedAt !== null) return false;
    const at = this.now();
    h.releasedAt = at;
    h.expiresAt = at + this.graceMs;
    return true;
  }

  async held(accountId: string): Promise<Dec> {
    let sum = ZERO;
    for (const h of this.live(accountId, this.now()).values()) if (h.releasedAt === null) sum += h.amount;
    return sum;
  }

  async close(): Promise<void> {
    this.accounts.clear();
  }

  /** Live holds across all accounts (tests: expired ones are dropped). */
  get size(): number {
    let n = 0;
    for (const holds of this.accounts.values()) n += holds.size;
    return n;
  }

  /** At most once a minute, drops every account's expired holds (accounts not seen again included). */
  private prune(at: number): void {
    if (at - this.lastPrune < 60_000) return;
    this.lastPrune = at;
    for (const accountId of [...this.accounts.keys()]) this.live(accountId, at);
  }

  /** The account's holds with expired ones dropped (an account left with none is forgotten). */
  private live(accountId: string, at: number): Map<string, Hold> {
    const holds = this.accounts.get(accountId);
    if (!holds) return new Map();
    for (const [id, h] of holds) if (h.expiresAt <= at) holds.delete(id);
    if (holds.size === 0) this.accounts.delete(accountId);
    return holds;
  }

  private find(holdId: string): Hold | undefined {
    const holds = this.live(accountOfHold(holdId), this.now());
    return holds.get(holdId);
  }
}
