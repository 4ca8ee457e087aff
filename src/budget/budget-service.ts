import { periodContaining } from "../domain/billing-period.ts";
import {
  availableOf,
  type BillingMode,
  type Budget,
  type BudgetRefusal,
  bindingLimit,
  decideReservation,
  refusalOf,
  type SpendLimit,
  spendLimits,
} from "../domain/budget.ts";
import { type Dec, ZERO } from "../domain/decimal.ts";
import type { BudgetReserver } from "./budget-reserver.ts";

/** The account fields budgets need (from the accounts table and `PUT /v1/accounts/{id}/budget`). */
export interface BudgetAccount {
  id: string;
  /** IANA zone whose calendar months are the budget's months */
  billingTimezone: string;
  billingMode: BillingMode;
  budget: Budget | null;
}

/** The budget view of an account (its months are calendar months in its billing timezone). */
export function budgetAccountOf(account: {
  id: string;
  billingTimezone?: string;
  billingMode?: BillingMode;
  budget?: Budget | null;
}): BudgetAccount {
  return {
    id: account.id,
    billingTimezone: account.billingTimezone ?? "UTC",
    billingMode: account.billingMode ?? "postpaid",
    budget: account.budget ?? null,
  };
}

/** What the store must provide: committed spend only (never in-flight requests). */
export interface SpendReader {
  /** Exact cost of the account's committed events timestamped in [start, end) (from rollups). */
  costBetween(accountId: string, start: number, end: number): Promise<Dec>;
  /** Prepaid accounts: the sum of all payments, and the cost of every event ever. */
  credit(accountId: string): Promise<{ payments: Dec; cost: Dec }>;
}

/**
 * Whether the account has any limit on spending. When it has none, the gateway need not count the
 * request's tokens at all (a tokenizer pass costs more than the rest of admission).
 */
export function hasSpendLimit(account: BudgetAccount): boolean {
  return account.budget !== null || account.billingMode === "prepaid";
}

export interface BudgetHold {
  holdId: string;
  accountId: string;
  amount: Dec;
}

export type BudgetAdmission =
  /** hold is null when the account has no limit (nothing reserved, nothing read) */
  | { ok: true; hold: BudgetHold | null; overBudget: SpendLimit[] }
  /** answer 402 with this data */
  | { ok: false; refusal: BudgetRefusal };

export interface LimitPosition extends SpendLimit {
  held: Dec;
  available: Dec;
}

export type BudgetCheck =
  | { allowed: true; overBudget: SpendLimit[]; limits: LimitPosition[] }
  | { allowed: false; refusal: BudgetRefusal; limits: LimitPosition[] };

export interface BudgetServiceOptions {
  /** Hold lifetime when the caller gives none: a crashed instance's holds are freed after it. */
  defaultTtlMs?: number;
  /** Settling and releasing run after the answer is sent: their failures are reported here. */
  onError?: (err: unknown) => void;
}

/**
 * Budget admission for the gateway and `POST /v1/limits/check`. The life of a request:
 * `reserve` (402 when it does not fit a hard limit) -> the request runs -> `finish`, which settles
 * the hold to the real cost, commits the usage event, then releases the hold, in that order
 * (docs/decisions/0012-budgets.md): the cost is counted by the hold until the event is committed,
 * and by the store's spend once it is, never by neither.
 */
export class BudgetService {
  private readonly defaultTtlMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly reserver: BudgetReserver,
    private readonly spend: SpendReader,
    private readonly now: () => number = Date.now,
    options: BudgetServiceOptions = {},
  ) {
    this.defaultTtlMs = options.defaultTtlMs ?? 10 * 60_000;
    this.onError = options.onError ?? ((err) => console.error("budget: settling a hold failed", err));
  }

  /** Reserves `amount` (domain `reservationOf`) against every limit of the account, atomically. */
  async reserve(account: BudgetAccount, amount: Dec, ttlMs = this.defaultTtlMs): Promise<BudgetAdmission> {
    if (!hasSpendLimit(account)) return { ok: true, hold: null, overBudget: [] };
    // the mark comes before the read: holds released after it are still counted (see BudgetReserver)
    const spentAsOf = await this.reserver.mark();
    const limits = await this.limitsOf(account);
    const binding = bindingLimit(limits);
    const outcome = await this.reserver.reserve(account.id, amount, {
      limit: binding ? binding.limit : null,
      spentSoFar: binding ? binding.spent : ZERO,
      spentAsOf,
      ttlMs,
    });
    if (!outcome.ok) return { ok: false, refusal: refusalOf(binding as SpendLimit, outcome.held, amount) };
    const decision = decideReservation(limits, outcome.held, amount);
    const overBudget = decision.admit ? decision.overBudget : [];
    return { ok: true, hold: { holdId: outcome.holdId, accountId: account.id, amount }, overBudget };
  }

  /** Keeps a long request's hold alive (a stream outliving the ttl). */
  async renew(hold: BudgetHold, ttlMs: number): Promise<boolean> {
    return this.reserver.renew(hold.holdId, ttlMs);
  }

  /**
   * After the request: the hold shrinks to `actualCost` at once, `commit` writes the usage event,
   * and only once it is committed is the hold released. A failed commit leaves the hold to expire:
   * until then it keeps counting a cost that the store may yet record (a retried write).
   */
  async finish(hold: BudgetHold | null, actualCost: Dec, commit: () => Promise<void>): Promise<void> {
    if (hold) await this.quietly(() => this.reserver.settle(hold.holdId, actualCost));
    await commit();
    if (hold) await this.quietly(() => this.reserver.release(hold.holdId));
  }

  /**
   * `POST /v1/limits/check`: would a request of `amount` (0: any request at all) fit now? Reserves
   * nothing; a hard limit with nothing left answers not allowed.
   */
  async check(account: BudgetAccount, amount: Dec = ZERO): Promise<BudgetCheck> {
    const limits = await this.positions(account);
    const held = limits.length > 0 ? limits[0].held : ZERO;
    const decision = decideReservation(limits, held, amount);
    if (decision.admit) return { allowed: true, overBudget: decision.overBudget, limits };
    return { allowed: false, refusal: decision.refusal, limits };
  }

  /** Every limit of the account with its spend, the running holds and what is left. */
  async positions(account: BudgetAccount): Promise<LimitPosition[]> {
    if (!hasSpendLimit(account)) return [];
    const [limits, held] = await Promise.all([this.limitsOf(account), this.reserver.held(account.id)]);
    // Object.assign, not `{ ...l, held }`: see decision 0021, "Spreads"
    return limits.map((l) => Object.assign({}, l, { held, available: availableOf(l.limit, l.spent, held) }));
  }

  private async limitsOf(account: BudgetAccount): Promise<SpendLimit[]> {
    const period = periodContaining(this.now(), account.billingTimezone);
    const [monthCost, credit] = await Promise.all([
      account.budget ? this.spend.costBetween(account.id, period.start, period.end) : ZERO,
      account.billingMode === "prepaid" ? this.spend.credit(account.id) : { payments: ZERO, cost: ZERO },
    ]);
    return spendLimits({
      budget: account.budget,
      billingMode: account.billingMode,
      monthCost,
      paymentsTotal: credit.payments,
      totalCost: credit.cost,
    });
  }

  private async quietly(fn: () => Promise<boolean>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.onError(err);
    }
  }
}
