import { COST_PLACES, type Dec, DecimalError, formatDec, mulDec, ONE, parseDec, ZERO } from "./decimal.ts";
import { DomainError } from "./errors.ts";

/**
 * Budgets and prepaid credit. An account may have a monthly budget (hard: a request that does not
 * fit is refused with 402; soft: it is admitted and reported over budget) and may be prepaid
 * (it spends what it paid: credit = payments - cost, always hard). Before a gateway request is
 * forwarded, its largest possible cost is reserved against every limit at once; the reservation
 * is settled to the real cost afterwards. Pure: the spend, the payments and the holds are inputs.
 */

export type BudgetMode = "hard" | "soft";
export type BillingMode = "postpaid" | "prepaid";

export interface Budget {
  monthlyUsd: Dec;
  mode: BudgetMode;
}

/**
 * Reads `PUT /v1/accounts/{id}/budget`: `{monthly_usd, mode?}` sets the budget (mode defaults to
 * hard), `null` removes it (answered as null). Errors name the field.
 */
export function parseBudgetInput(input: unknown): Budget | null {
  if (input === null) return null;
  if (typeof input !== "object" || Array.isArray(input)) {
    throw DomainError.validation(["body"], "must be an object {monthly_usd, mode} or null");
  }
  const body = input as Record<string, unknown>;
  if (body.monthly_usd === undefined || body.monthly_usd === null) {
    throw DomainError.validation(["body", "monthly_usd"], "is required");
  }
  let monthlyUsd: Dec;
  try {
    monthlyUsd = parseDec(body.monthly_usd, COST_PLACES);
  } catch (err) {
    if (err instanceof DecimalError) throw DomainError.validation(["body", "monthly_usd"], err.message);
    throw err;
  }
  if (monthlyUsd < ZERO) throw DomainError.validation(["body", "monthly_usd"], "must not be negative");
  const mode = body.mode ?? "hard";
  if (mode !== "hard" && mode !== "soft") {
    throw DomainError.validation(["body", "mode"], 'must be "hard" or "soft"');
  }
  return { monthlyUsd, mode };
}

/** One limit on an account's spending, with what it has already spent against it. */
export interface SpendLimit {
  /** "budget": the monthly budget; "credit": a prepaid account's payments */
  kind: "budget" | "credit";
  mode: BudgetMode;
  limit: Dec;
  /** committed cost counted against `limit` (the month's for a budget, all time for credit) */
  spent: Dec;
}

export interface AccountSpend {
  budget: Budget | null;
  billingMode: BillingMode;
  /** cost of the account's events in the current calendar month of its billing_timezone */
  monthCost: Dec;
  /** prepaid only: every payment received, and the cost of every event ever */
  paymentsTotal: Dec;
  totalCost: Dec;
}

/** The limits in force: the monthly budget if any, and the credit of a prepaid account. */
export function spendLimits(a: AccountSpend): SpendLimit[] {
  const limits: SpendLimit[] = [];
  if (a.budget)
    limits.push({ kind: "budget", mode: a.budget.mode, limit: a.budget.monthlyUsd, spent: a.monthCost });
  if (a.billingMode === "prepaid") {
    limits.push({ kind: "credit", mode: "hard", limit: a.paymentsTotal, spent: a.totalCost });
  }
  return limits;
}

/** What is left of a limit once its spend and the reservations held are counted (may be negative). */
export function availableOf(limit: Dec, spent: Dec, held: Dec): Dec {
  return limit - spent - held;
}

/**
 * Does a reservation of `amount` fit? Only while something is left and the amount is no more than
 * what is left: a budget for exactly five requests admits the fifth (leaving 0), then nothing.
 * The Redis script applies the same rule (redis-budget-reserver.ts); both run one contract suite.
 */
export function fits(available: Dec, amount: Dec): boolean {
  return available > ZERO && amount <= available;
}

/**
 * The hard limit with the least left: the one a reservation must be checked against atomically
 * (the same holds count against every limit, so fitting the tightest one fits them all).
 */
export function bindingLimit(limits: readonly SpendLimit[]): SpendLimit | null {
  let best: SpendLimit | null = null;
  for (const l of limits) {
    if (l.mode !== "hard") continue;
    if (best === null || l.limit - l.spent < best.limit - best.spent) best = l;
  }
  return best;
}

/** The data of a 402: which limit, and the exact figures (decimal strings). */
export interface BudgetRefusal {
  code: "budget_exceeded" | "insufficient_credit";
  message: string;
  limit: string;
  spent: string;
  held: string;
  available: string;
  requested: string;
}

export type BudgetDecision =
  | { admit: true; overBudget: SpendLimit[] }
  | { admit: false; limit: SpendLimit; refusal: BudgetRefusal };

/**
 * The decision for a reservation of `amount`, given every limit and the reservations already held
 * (`held`, not including this one): refused by the first hard limit it does not fit, else admitted,
 * listing the soft limits it goes over.
 */
export function decideReservation(limits: readonly SpendLimit[], held: Dec, amount: Dec): BudgetDecision {
  const overBudget: SpendLimit[] = [];
  for (const l of limits) {
    const available = availableOf(l.limit, l.spent, held);
    if (fits(available, amount)) continue;
    if (l.mode === "hard") return { admit: false, limit: l, refusal: refusalOf(l, held, amount) };
    overBudget.push(l);
  }
  return { admit: true, overBudget };
}

export function refusalOf(l: SpendLimit, held: Dec, amount: Dec): BudgetRefusal {
  const available = availableOf(l.limit, l.spent, held);
  const shown = formatDec(available > ZERO ? available : ZERO);
  return {
    code: l.kind === "credit" ? "insufficient_credit" : "budget_exceeded",
    message:
      l.kind === "credit"
        ? `Insufficient prepaid credit: this request may cost up to ${formatDec(amount)} USD and ${shown} USD is available`
        : `Monthly budget exceeded: this request may cost up to ${formatDec(amount)} USD and ${shown} USD of the ${formatDec(l.limit)} USD budget is left`,
    limit: formatDec(l.limit),
    spent: formatDec(l.spent),
    held: formatDec(held),
    available: formatDec(available),
    requested: formatDec(amount),
  };
}

/** What a request's reservation is computed from. */
export interface ReservationInput {
  /** a tokenizer count of the request's text (messages, input, prompt) */
  inputTokens: number;
  /** the request's `max_completion_tokens` / `max_tokens`; null when it sets no bound */
  maxOutputTokens: number | null;
  /** price per input token; null when the model has none */
  inputTokenPrice: Dec | null;
  /** price per output token; null when the model has none (embeddings: output cannot cost) */
  outputTokenPrice: Dec | null;
  /** the exact cost when it is known before forwarding (speech characters, images asked for) */
  knownCost: Dec | null;
  /** the model's configured default reservation, for requests whose cost has no bound */
  defaultReservation: Dec | null;
}

export interface Reservation {
  amount: Dec;
  /**
   * known_cost: exact before forwarding; max_cost: input tokens x input price + max tokens x output
   * price; default: the model's default (never less than the input's cost); unbounded: no bound and
   * no default, so only the input's cost is held (settling still charges the real cost).
   */
  basis: "known_cost" | "max_cost" | "default" | "unbounded";
}

/** The request's largest possible cost: what is held before it is forwarded. */
export function reservationOf(r: ReservationInput): Reservation {
  checkCount(r.inputTokens, "inputTokens");
  if (r.maxOutputTokens !== null) checkCount(r.maxOutputTokens, "maxOutputTokens");
  if (r.knownCost !== null) return { amount: r.knownCost, basis: "known_cost" };
  const input = r.inputTokenPrice === null ? ZERO : tokensCost(r.inputTokens, r.inputTokenPrice);
  if (r.outputTokenPrice === null) return { amount: input, basis: "max_cost" };
  if (r.maxOutputTokens !== null) {
    return { amount: input + tokensCost(r.maxOutputTokens, r.outputTokenPrice), basis: "max_cost" };
  }
  if (r.defaultReservation !== null) {
    return { amount: r.defaultReservation > input ? r.defaultReservation : input, basis: "default" };
  }
  return { amount: input, basis: "unbounded" };
}

const tokensCost = (tokens: number, price: Dec): Dec => mulDec(BigInt(tokens) * ONE, price);

function checkCount(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a whole number >= 0`);
}
