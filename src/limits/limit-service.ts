import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { type BudgetService, budgetAccountOf, hasSpendLimit } from "../budget/budget-service.ts";
import type { BudgetRefusal } from "../domain/budget.ts";
import { DomainError } from "../domain/errors.ts";
import { type LimitStatus, limitStatus, type RateLimits, UNLIMITED_LIMITS } from "../domain/rate-limits.ts";
import type { ModelCatalog } from "../ingest/model-catalog.ts";
import { entitlementAt, readAccountPlan } from "../manage/account-plan.ts";
import type { Plan, Store } from "../store/store.ts";
import type { RateLimiter } from "./rate-limiter.ts";

export type CheckReason =
  | "rate_limited"
  | "not_licensed"
  | "plan_blocked"
  | "unknown_model"
  | "account_disabled"
  | "budget_exceeded"
  | "insufficient_credit";

export interface CheckInput {
  model_id?: string;
  /** the root key names the account; an account key checks its own */
  account_id?: string;
}

/** A refusal is an answer, not an error: gateways read `allowed` as data. */
export interface CheckResult {
  accountId: string;
  allowed: boolean;
  reason: CheckReason | null;
  status: LimitStatus;
  /** the spending limit that refused (budget or prepaid credit), with its numbers */
  budget?: BudgetRefusal;
}

/** The account's limits: its current plan's, unlimited when it has none. */
export function limitsOfPlan(plan: Plan | null): RateLimits {
  return plan ? { perMinute: plan.requestsPerMinute, perDay: plan.requestsPerDay } : UNLIMITED_LIMITS;
}

/** Admission: the live rate windows of an account and `POST /v1/limits/check`. */
export class LimitService {
  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    private readonly limiter: RateLimiter,
    private readonly now: () => number,
    /** monthly budgets and prepaid credit (a hard limit with nothing left refuses) */
    private readonly budget: BudgetService | null = null,
  ) {}

  /** The account's windows now, consuming nothing. */
  async status(accountId: string, plan: Plan | null): Promise<LimitStatus> {
    const used = await this.limiter.peek(accountId);
    return limitStatus(limitsOfPlan(plan), used, this.now());
  }

  /**
   * May the account make one more request (of `model_id`) now? Entitlement first (license in force
   * and the plan's allow and block lists), then both rate windows; one request is consumed only
   * when the answer is yes.
   */
  async check(p: Principal, input: CheckInput): Promise<CheckResult> {
    const accountId = this.accountOf(p, input.account_id);
    const at = this.now();
    const { account, plan } = await readAccountPlan(this.store, accountId, at);
    if (!account) throw DomainError.notFound("account");
    if (!account.isEnabled) return this.refused(accountId, plan, "account_disabled");
    if (input.model_id !== undefined) {
      if (!(await this.catalog.get(input.model_id))) return this.refused(accountId, plan, "unknown_model");
      const entitlement = await entitlementAt(this.store, accountId, plan, input.model_id, at);
      if (!entitlement.allowed) return this.refused(accountId, plan, entitlement.reason);
    }
    // a hard spending limit with nothing left refuses before a request is counted
    const spending = budgetAccountOf(account);
    if (this.budget && hasSpendLimit(spending)) {
      const b = await this.budget.check(spending);
      if (!b.allowed) {
        // set on the new result, not spread into a copy (decision 0021, "Spreads")
        const refused: CheckResult = await this.refused(accountId, plan, b.refusal.code);
        refused.budget = b.refusal;
        return refused;
      }
    }
    const limits = limitsOfPlan(plan);
    const { allowed, used } = await this.limiter.consume(accountId, limits);
    return {
      accountId,
      allowed,
      reason: allowed ? null : "rate_limited",
      status: limitStatus(limits, used, this.now()),
    };
  }

  private async refused(accountId: string, plan: Plan | null, reason: CheckReason): Promise<CheckResult> {
    return { accountId, allowed: false, reason, status: await this.status(accountId, plan) };
  }

  private accountOf(p: Principal, named: string | undefined): string {
    if (p.kind === "user") {
      authorize(p, "create", "rate_limit", { accountId: named ?? p.accountId });
      return p.accountId;
    }
    if (named === undefined)
      throw DomainError.validation(["body", "account_id"], "Field required with the root key");
    return named;
  }
}
