import type { Dec } from "../domain/decimal.ts";

export interface ReserveOptions {
  /**
   * The hard limit checked atomically with adding the hold; null admits whatever is held (soft
   * budgets only: the hold is still placed so that others see it).
   */
  limit: Dec | null;
  /** committed spend against `limit` (read from the store; see `spentAsOf`) */
  spentSoFar: Dec;
  /**
   * `mark()` taken BEFORE `spentSoFar` was read. Holds released (their event committed) at or after
   * this instant are still counted, because the read may have missed their event; holds released
   * before it are not, because the read saw their event. So a cost is never counted zero times.
   */
  spentAsOf: number;
  /** how long the hold lives unless settled, released or renewed: a crashed instance's holds expire */
  ttlMs: number;
}

export type ReserveOutcome =
  /** `held`: the other reservations counted, not including this one */
  { ok: true; holdId: string; held: Dec } | { ok: false; held: Dec; available: Dec };

/**
 * Reservations of money against an account's limit, atomic across every caller that shares the
 * reserver (one process for MemoryBudgetReserver, every instance on the Redis for
 * RedisBudgetReserver). The life of a hold:
 *
 *   mark() -> read spent -> reserve() -> [request runs; renew() for long streams]
 *     -> settle(actual cost) -> the usage event is committed -> release()
 *
 * settle() shrinks the hold to the real cost at once (freeing the rest for others while the event
 * waits for its commit); release() after the commit stops it counting for snapshots of spend taken
 * from then on, and it is forgotten once no snapshot that old can be in use. A hold never
 * released expires after its ttl. See docs/decisions/0012-budgets.md.
 */
export interface BudgetReserver {
  /** An instant on the reserver's clock, no later than now; take it before reading spend. */
  mark(): Promise<number>;
  /**
   * Adds a hold of `amount` when held + amount fits `limit - spentSoFar` (domain `fits`), all in
   * one atomic step; refused otherwise, holding nothing.
   */
  reserve(accountId: string, amount: Dec, options: ReserveOptions): Promise<ReserveOutcome>;
  /** The hold now holds `actualCost` (the rest is freed); false when it is gone (expired). */
  settle(holdId: string, actualCost: Dec): Promise<boolean>;
  /** Pushes the hold's expiry to now + ttlMs (a long stream); false when it is gone. */
  renew(holdId: string, ttlMs: number): Promise<boolean>;
  /** The hold's cost is committed in the store: it leaves every later snapshot's count. */
  release(holdId: string): Promise<boolean>;
  /** The sum of the account's live holds now (reporting: `GET` budget status, the dashboard). */
  held(accountId: string): Promise<Dec>;
  close(): Promise<void>;
}

/**
 * How long a released hold is kept for snapshots taken before its release. A snapshot of spend
 * older than this at `reserve` is refused as stale (it could miss a cost released and forgotten
 * since).
 */
export const RELEASE_GRACE_MS = 60_000;

/** A reserve whose snapshot of spend is older than the release grace (a caller's bug, not a refusal). */
export class StaleSpendError extends Error {
  constructor(ageMs: number, graceMs: number) {
    super(`the spend snapshot is ${ageMs} ms old, older than the ${graceMs} ms release grace`);
    this.name = "StaleSpendError";
  }
}

/** Hold ids carry the account so that settle and release find its holds without a lookup. */
export function holdIdOf(accountId: string, unique: string): string {
  return `${accountId}/${unique}`;
}

export function accountOfHold(holdId: string): string {
  const cut = holdId.lastIndexOf("/");
  if (cut <= 0) throw new RangeError(`not a hold id: ${holdId}`);
  return holdId.slice(0, cut);
}
