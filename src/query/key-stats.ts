import { authorize } from "../auth/access.ts";
import type { Principal, UserPrincipal } from "../auth/principal.ts";
import { MODEL_KINDS, UNLIMITED } from "../domain/constants.ts";
import type { Dec } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { isMeter, meterOfLine } from "../domain/meters.ts";
import type { LimitStatus } from "../domain/rate-limits.ts";
import { DAY_MS } from "../domain/time.ts";
import type { LimitService } from "../limits/limit-service.ts";
import { readAccountPlan } from "../manage/account-plan.ts";
import type { Account, Plan, Store, Subscription } from "../store/store.ts";
import type { QueryService, UsageLine } from "./usage-query.ts";

/** The sections of key usage statistics (seed 003), in answer order. */
export const KEY_STATS_SECTIONS = [
  "account_information",
  "subscription_details",
  "billing_information",
  "rate_limits_and_restrictions",
  "usage_statistics",
  "model_specific_usage",
] as const;
export type KeyStatsSection = (typeof KEY_STATS_SECTIONS)[number];

/** validity_days of a plan that never expires. */
export const UNLIMITED_DAYS = UNLIMITED;

export interface KeyStats {
  account?: {
    username: string;
    planId: string | null;
    isEnabled: boolean;
    nodeId: string | null;
  };
  subscription?: {
    keyCreatedAt: number;
    /** null without a plan; UNLIMITED_DAYS when the plan never expires */
    validityDays: number | null;
    /** whole days left, rounded down, never below 0; UNLIMITED_DAYS when unlimited */
    daysRemaining: number;
    history: { planId: string; activatedAt: number }[];
  };
  billing?: {
    payments: Dec[];
    totalPaid: Dec;
    /** active usage in USD (other currencies are not converted) */
    cumulativeCost: Dec;
  };
  limits?: {
    status: LimitStatus;
    modelWhitelist: string[] | null;
    modelBlacklist: string[] | null;
  };
  usage?: {
    requests: { total: number; byKind: Record<string, number> };
    tokens: { total: number; prompt: number; completion: number; byKind: Record<string, number> };
    images: { total: Dec; byModel: Record<string, Dec> };
  };
  models?: Record<
    string,
    {
      requests: number;
      quantity: Dec;
      unit: string;
      tokens: number;
      costUsd: Dec;
      /** a model priced per meter: each meter's share (DESIGN.md "Meters") */
      meters?: Record<string, { quantity: Dec; costUsd: Dec }>;
    }
  >;
}

export interface KeyStatsDeps {
  store: Store;
  query: QueryService;
  limits: LimitService;
  now: () => number;
}

/**
 * "Where do I stand?" for the presenting key: its user and key, and its account's plan validity,
 * payments, live rate windows and all-time usage. Usage comes from the account rollups (a cost
 * per bucket, never a scan of events); reading consumes no request.
 */
export async function queryKeyStats(
  deps: KeyStatsDeps,
  p: Principal,
  sections: readonly KeyStatsSection[],
): Promise<KeyStats> {
  authorize(p, "read", "key_stats");
  // the policy refused the root key above; this only narrows the type
  if (p.kind !== "user") throw new DomainError("FORBIDDEN", "Key usage statistics need an account key");
  const want = new Set(sections);
  const now = deps.now();
  const { account, plan, subscription } = await readAccountPlan(deps.store, p.accountId, now);
  if (!account) throw DomainError.notFound("account");
  const out: KeyStats = {};
  const needsUsage =
    want.has("billing_information") || want.has("usage_statistics") || want.has("model_specific_usage");
  const lines = needsUsage ? await deps.query.totals({ accountId: account.id, family: "account" }) : [];

  if (want.has("account_information")) out.account = accountSection(p, account, plan);
  if (want.has("subscription_details")) {
    const subs = await deps.store.listSubscriptions(account.id);
    out.subscription = subscriptionSection(p, plan, subscription, subs, now);
  }
  if (want.has("billing_information")) {
    const payments = (await deps.store.listPayments(account.id)).map((x) => x.amountUsd);
    out.billing = {
      payments,
      totalPaid: payments.reduce((a, b) => a + b, 0n),
      cumulativeCost: lines.filter(isUsd).reduce((a, l) => a + l.cost, 0n),
    };
  }
  if (want.has("rate_limits_and_restrictions")) {
    out.limits = {
      status: await deps.limits.status(account.id, plan),
      modelWhitelist: plan?.modelWhitelist ?? null,
      modelBlacklist: plan?.modelBlacklist ?? null,
    };
  }
  if (want.has("usage_statistics")) out.usage = usageSection(lines);
  if (want.has("model_specific_usage")) {
    // the models' own units tell meter lines apart: read (once) only when a line is in a meter's unit
    const units = lines.some((l) => isMeter(l.unit))
      ? new Map((await deps.store.listModels()).map((m) => [m.id, m.unit]))
      : new Map<string, string>();
    out.models = modelSection(lines, units);
  }
  return out;
}

function accountSection(
  p: UserPrincipal,
  account: Account,
  plan: Plan | null,
): NonNullable<KeyStats["account"]> {
  return {
    username: p.username,
    // the plan in force now, not the last one subscribed to (it may have ended)
    planId: plan?.id ?? null,
    isEnabled: account.isEnabled,
    nodeId: p.nodeId,
  };
}

/**
 * Validity counts from the activation of the subscription in force: whole days left of
 * activation + validity days, rounded down, never below 0.
 */
function subscriptionSection(
  p: UserPrincipal,
  plan: Plan | null,
  current: Subscription | null,
  subs: readonly Subscription[],
  now: number,
): NonNullable<KeyStats["subscription"]> {
  const history = subs.map((s) => ({ planId: s.planId, activatedAt: s.activatedAt }));
  let daysRemaining = 0;
  if (plan?.validityDays === UNLIMITED_DAYS) daysRemaining = UNLIMITED_DAYS;
  else if (plan && current) {
    const left = Math.floor((current.activatedAt + plan.validityDays * DAY_MS - now) / DAY_MS);
    daysRemaining = Math.min(plan.validityDays, Math.max(0, left));
  }
  return { keyCreatedAt: p.keyCreatedAt, validityDays: plan?.validityDays ?? null, daysRemaining, history };
}

function usageSection(lines: UsageLine[]): NonNullable<KeyStats["usage"]> {
  const requests = { total: 0, byKind: zeros() };
  const tokens = { total: 0, prompt: 0, completion: 0, byKind: zeros() };
  const images = { total: 0n, byModel: new Map<string, Dec>() };
  for (const l of lines) {
    requests.total += l.requests;
    requests.byKind[l.kind] = (requests.byKind[l.kind] ?? 0) + l.requests;
    const t = l.tokensPrompt + l.tokensCompletion;
    tokens.total += t;
    tokens.prompt += l.tokensPrompt;
    tokens.completion += l.tokensCompletion;
    tokens.byKind[l.kind] = (tokens.byKind[l.kind] ?? 0) + t;
    if (l.unit === "image") {
      images.total += l.quantity;
      images.byModel.set(l.modelId, (images.byModel.get(l.modelId) ?? 0n) + l.quantity);
    }
  }
  return { requests, tokens, images: { total: images.total, byModel: Object.fromEntries(images.byModel) } };
}

/**
 * One entry per model. A model priced per meter has a line per meter (unit = the meter, other than
 * the model's unit): those are summed into the model's entry, in the model's unit, with a `meters`
 * breakdown.
 */
function modelSection(
  lines: UsageLine[],
  modelUnits: ReadonlyMap<string, string>,
): NonNullable<KeyStats["models"]> {
  // a Map, not an object, while summing: a model id is client text (think "__proto__")
  const out = new Map<
    string,
    {
      requests: number;
      quantity: Dec;
      units: Set<string>;
      tokens: number;
      costUsd: Dec;
      meters: Map<string, { quantity: Dec; costUsd: Dec }>;
    }
  >();
  for (const l of lines) {
    let m = out.get(l.modelId);
    if (!m) {
      m = { requests: 0, quantity: 0n, units: new Set(), tokens: 0, costUsd: 0n, meters: new Map() };
      out.set(l.modelId, m);
    }
    m.requests += l.requests;
    m.quantity += l.quantity;
    m.tokens += l.tokensPrompt + l.tokensCompletion;
    const modelUnit = modelUnits.get(l.modelId) ?? l.unit;
    if (meterOfLine(l.unit, modelUnit)) {
      m.units.add(modelUnit);
      const share = m.meters.get(l.unit) ?? { quantity: 0n, costUsd: 0n };
      share.quantity += l.quantity;
      if (isUsd(l)) share.costUsd += l.cost;
      m.meters.set(l.unit, share);
    } else m.units.add(l.unit);
    if (isUsd(l)) m.costUsd += l.cost;
  }
  return Object.fromEntries(
    [...out].map(([modelId, { units, meters, ...m }]) => [
      modelId,
      // a model whose unit was changed has lines in both units; the answer names them all
      // copied with Object.assign, not `{ ...m, unit }`: see decision 0021, "Spreads"
      Object.assign(
        {},
        m,
        { unit: [...units].sort().join(",") },
        meters.size > 0
          ? { meters: Object.fromEntries([...meters].sort(([a], [b]) => a.localeCompare(b))) }
          : {},
      ),
    ]),
  );
}

const zeros = (): Record<string, number> => Object.fromEntries(MODEL_KINDS.map((k) => [k, 0]));
const isUsd = (l: UsageLine): boolean => l.currency === "USD";
