import { randomUUID } from "node:crypto";
import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { type PlanBillingInput, parsePlanBilling } from "../billing/charge-schema.ts";
import { planBillingText } from "../billing/plan-billing.ts";
import { type Budget, parseBudgetInput } from "../domain/budget.ts";
import { UNLIMITED } from "../domain/constants.ts";
import { type Dec, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { AMOUNT_RULE, PRICE_RULE, QUANTITY_RULE, readDecimal, readInstant } from "../domain/fields.ts";
import { displayPrefix, generateSecret, hashSecret } from "../domain/keys.ts";
import { isMeter, METERS, type Meter, type MeterPrices } from "../domain/meters.ts";
import { formatUtc, isValidZone } from "../domain/time.ts";
import type { ModelCatalog } from "../ingest/model-catalog.ts";
import type { KeyEventData } from "../notify/messages.ts";
import { ANNOUNCE_NOTHING, type Announce } from "../notify/webhook-service.ts";
import type {
  Account,
  ApiKey,
  License,
  Model,
  Payment,
  Plan,
  PriceVersion,
  Role,
  Store,
  Subscription,
  User,
} from "../store/store.ts";
import { entitlementAt, readAccountPlan, withPlanInForce } from "./account-plan.ts";

export interface CreateAccountInput {
  name: string;
  plan_id?: string;
  /** IANA zone of the billing periods (default UTC) */
  billing_timezone?: string;
}
export interface CreateUserInput {
  username: string;
  role: Role;
  node_id?: string | null;
}
export interface UpsertModelInput {
  id: string;
  unit: string;
  kind: string;
  /** one price per unit; or `meters` instead (DESIGN.md "Meters") */
  unit_price?: number | string;
  /** a price per meter, e.g. {"input_token": 0.00000015, "output_token": 0.0000006} */
  meters?: Record<string, number | string>;
  currency?: string;
  reporting_enabled?: boolean;
  effective_from?: string | number;
  /** the gateway's route: an upstream's id, and the model name sent there (default: the model's id) */
  upstream_id?: string | null;
  upstream_model?: string | null;
}
export interface CreateLicenseInput {
  model_id: string;
  starts_at?: string | number;
  ends_at?: string | number | null;
}
export interface UpsertPlanInput extends PlanBillingInput {
  id: string;
  requests_per_minute: number | null;
  requests_per_day: number | null;
  validity_days: number;
  model_whitelist?: string[] | null;
  model_blacklist?: string[] | null;
  included?: Record<string, number | string>;
}
export interface CreateSubscriptionInput {
  plan_id: string;
  activated_at?: string | number;
}
export interface CreatePaymentInput {
  amount_usd: number | string;
  paid_at?: string | number;
  reference?: string | null;
}

/** The records these verbs answer with, as the surfaces see them. */
export type { Account, License, Model, Payment, Plan, PriceVersion, Subscription, User };

/** Operator and account-admin verbs: accounts, users, keys, models, plans, licenses, money in. */
export class ManageService {
  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    private readonly now: () => number,
    /** key.created / key.revoked for webhook subscribers, written with the key */
    private readonly announce: Announce = ANNOUNCE_NOTHING,
  ) {}

  async createAccount(p: Principal, input: CreateAccountInput): Promise<Account> {
    authorize(p, "create", "account");
    const at = this.now();
    const account: Account = {
      id: randomUUID(),
      name: input.name,
      isEnabled: true,
      planId: null,
      createdAt: at,
      billingTimezone: checkBillingTimezone(input.billing_timezone ?? "UTC"),
    };
    if (input.plan_id !== undefined) {
      if (!(await this.store.getPlan(input.plan_id)))
        throw DomainError.validation(["body", "plan_id"], "unknown plan");
    }
    await this.store.createAccount(account);
    if (input.plan_id !== undefined) {
      await this.store.createSubscription({
        id: randomUUID(),
        accountId: account.id,
        planId: input.plan_id,
        activatedAt: at,
        createdAt: at,
      });
      account.planId = input.plan_id;
    }
    return account;
  }

  async getAccount(p: Principal, accountId: string): Promise<Account> {
    authorize(p, "read", "account", { accountId });
    const account = await this.store.getAccount(accountId);
    if (!account) throw DomainError.notFound("account");
    return withPlanInForce(this.store, account, this.now());
  }

  async createUser(p: Principal, accountId: string, input: CreateUserInput): Promise<User> {
    authorize(p, "create", "user", { accountId }, { notFound: () => DomainError.notFound("account") });
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    const user: User = {
      id: randomUUID(),
      accountId,
      username: input.username,
      role: input.role,
      nodeId: input.node_id ?? null,
      createdAt: this.now(),
    };
    try {
      await this.store.createUser(user);
    } catch (err) {
      if (err instanceof DomainError && err.code === "CONFLICT")
        throw new DomainError("CONFLICT", `username ${input.username} exists in this account`);
      throw err;
    }
    return user;
  }

  /** Creates a key and returns it with its secret, which is never stored or shown again. */
  async createKey(
    p: Principal,
    userId: string,
    input: { label?: string },
  ): Promise<ApiKey & { userId: string; accountId: string; secret: string }> {
    const user = await this.store.getUser(userId);
    if (!user) throw DomainError.notFound("user");
    authorize(
      p,
      "create",
      "key",
      { accountId: user.accountId },
      { notFound: () => DomainError.notFound("user") },
    );
    const secret = generateSecret();
    const key = {
      id: randomUUID(),
      userId: user.id,
      accountId: user.accountId,
      isRoot: false,
      label: input.label ?? `Key ${(await this.store.listKeys(user.id)).length + 1}`,
      prefix: displayPrefix(secret),
      hash: hashSecret(secret),
      createdAt: this.now(),
      lastUsedAt: null,
      revokedAt: null,
    };
    const announced = await this.announce(
      "key.created",
      key.accountId,
      keyEventData(key),
      `key.created:${key.id}`,
      key.createdAt,
    );
    await this.store.createKey(key, announced);
    return { ...key, secret };
  }

  async revokeKey(p: Principal, keyId: string): Promise<void> {
    const key = await this.store.getKey(keyId);
    if (!key || key.isRoot) throw DomainError.notFound("key");
    authorize(p, "change", "key", { accountId: key.accountId });
    const at = this.now();
    // revoking a revoked key changes nothing and says nothing
    const announced =
      key.revokedAt === null
        ? await this.announce(
            "key.revoked",
            key.accountId,
            keyEventData({ ...key, revokedAt: at }),
            `key.revoked:${key.id}`,
            at,
          )
        : [];
    await this.store.revokeKey(keyId, at, announced);
  }

  /** `tally init`: a root key when none exists (the secret is returned once), else null. */
  async initRootKey(): Promise<string | null> {
    if (await this.store.hasRootKey()) return null;
    const secret = generateSecret();
    await this.store.createKey({
      id: randomUUID(),
      userId: null,
      accountId: null,
      isRoot: true,
      label: "root",
      prefix: displayPrefix(secret),
      hash: hashSecret(secret),
      createdAt: this.now(),
      lastUsedAt: null,
      revokedAt: null,
    });
    return secret;
  }

  async upsertModel(
    p: Principal,
    input: UpsertModelInput,
  ): Promise<{
    model: Model;
    created: boolean;
    unitPrice: Dec;
    meters: MeterPrices | null;
    currency: string;
    effectiveFrom: number;
  }> {
    authorize(p, "change", "model");
    const at = this.now();
    if ((input.unit_price === undefined) === (input.meters === undefined)) {
      throw DomainError.validation(
        ["body", "unit_price"],
        "give either unit_price or meters (a price per meter)",
      );
    }
    const meters = input.meters === undefined ? null : readMeterPrices(input.meters);
    const unitPrice = meters ? ZERO : readDecimal(input.unit_price, ["body", "unit_price"], PRICE_RULE);
    const effectiveFrom =
      input.effective_from === undefined ? at : readInstant(input.effective_from, ["body", "effective_from"]);
    const existing = await this.store.getModel(input.id);
    const upstreamId = input.upstream_id === undefined ? (existing?.upstreamId ?? null) : input.upstream_id;
    if (input.upstream_id && !(await this.store.getUpstream(input.upstream_id)))
      throw DomainError.validation(["body", "upstream_id"], `unknown upstream ${input.upstream_id}`);
    const model: Model = {
      id: input.id,
      unit: input.unit,
      kind: input.kind,
      reportingEnabled: input.reporting_enabled ?? existing?.reportingEnabled ?? true,
      createdAt: existing?.createdAt ?? at,
      updatedAt: at,
      upstreamId,
      upstreamModel:
        input.upstream_model === undefined ? (existing?.upstreamModel ?? null) : input.upstream_model,
    };
    const currency = input.currency ?? "USD";
    const prices = existing ? await this.store.listPrices(input.id) : [];
    const current = prices.filter((v) => v.effectiveFrom <= effectiveFrom).at(-1);
    // a new version only when the price (or meter prices) or currency in force at effective_from changes
    const changed =
      !current ||
      current.unitPrice !== unitPrice ||
      current.currency !== currency ||
      !sameMeterPrices(current.meters ?? null, meters);
    const result = await this.store.upsertModel(
      model,
      changed
        ? { modelId: input.id, effectiveFrom, unitPrice, currency, ...(meters ? { meters } : {}) }
        : null,
    );
    this.catalog.invalidate(input.id);
    return {
      model,
      created: result === "created",
      unitPrice,
      meters,
      currency,
      effectiveFrom: changed ? effectiveFrom : current!.effectiveFrom,
    };
  }

  /**
   * Every model with its price versions, oldest first; an account's key sees only the models its
   * account may use now (a license in force, allowed by its plan: the rule the gateway admits by).
   */
  async listModels(p: Principal): Promise<{ model: Model; prices: PriceVersion[] }[]> {
    authorize(p, "read", "model");
    const [all, prices] = await Promise.all([this.store.listModels(), this.store.listPrices()]);
    let models = all;
    if (p.kind === "user") {
      const at = this.now();
      const { plan } = await readAccountPlan(this.store, p.accountId, at);
      const usable = await Promise.all(
        all.map(async (m) => (await entitlementAt(this.store, p.accountId, plan, m.id, at)).allowed),
      );
      models = all.filter((_, i) => usable[i]);
    }
    return models.map((model) => ({ model, prices: prices.filter((v) => v.modelId === model.id) }));
  }

  async createLicense(p: Principal, accountId: string, input: CreateLicenseInput): Promise<License> {
    authorize(p, "create", "license");
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    if (!(await this.store.getModel(input.model_id)))
      throw DomainError.validation(["body", "model_id"], "unknown model");
    const at = this.now();
    const startsAt = input.starts_at === undefined ? at : readInstant(input.starts_at, ["body", "starts_at"]);
    const endsAt =
      input.ends_at === undefined || input.ends_at === null
        ? null
        : readInstant(input.ends_at, ["body", "ends_at"]);
    if (endsAt !== null && endsAt <= startsAt)
      throw DomainError.validation(["body", "ends_at"], "must be after starts_at");
    const license: License = {
      id: randomUUID(),
      accountId,
      modelId: input.model_id,
      startsAt,
      endsAt,
      createdAt: at,
    };
    await this.store.createLicense(license);
    return license;
  }

  async upsertPlan(p: Principal, input: UpsertPlanInput): Promise<{ plan: Plan; created: boolean }> {
    authorize(p, "change", "plan");
    if (input.validity_days !== UNLIMITED && input.validity_days < 0) {
      throw DomainError.validation(["body", "validity_days"], `must be >= 0, or ${UNLIMITED} for unlimited`);
    }
    const included: Record<string, Dec> = {};
    for (const [modelId, q] of Object.entries(input.included ?? {})) {
      included[modelId] = readDecimal(q, ["body", "included", modelId], QUANTITY_RULE);
    }
    const billing = parsePlanBilling(input, ["body"]);
    const at = this.now();
    const existing = await this.store.getPlan(input.id);
    const plan: Plan = {
      id: input.id,
      requestsPerMinute: input.requests_per_minute,
      requestsPerDay: input.requests_per_day,
      validityDays: input.validity_days,
      modelWhitelist: input.model_whitelist ?? null,
      modelBlacklist: input.model_blacklist ?? null,
      included,
      createdAt: existing?.createdAt ?? at,
      updatedAt: at,
      billing: planBillingText(billing),
    };
    const result = await this.store.upsertPlan(plan);
    return { plan, created: result === "created" };
  }

  async createSubscription(
    p: Principal,
    accountId: string,
    input: CreateSubscriptionInput,
  ): Promise<Subscription> {
    authorize(p, "create", "subscription");
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    if (!(await this.store.getPlan(input.plan_id)))
      throw DomainError.validation(["body", "plan_id"], "unknown plan");
    const at = this.now();
    const activatedAt =
      input.activated_at === undefined ? at : readInstant(input.activated_at, ["body", "activated_at"]);
    const sub: Subscription = {
      id: randomUUID(),
      accountId,
      planId: input.plan_id,
      activatedAt,
      createdAt: at,
    };
    await this.store.createSubscription(sub);
    return sub;
  }

  async createPayment(p: Principal, accountId: string, input: CreatePaymentInput): Promise<Payment> {
    authorize(p, "create", "payment");
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    const amountUsd = readDecimal(input.amount_usd, ["body", "amount_usd"], AMOUNT_RULE);
    const at = this.now();
    const paidAt = input.paid_at === undefined ? at : readInstant(input.paid_at, ["body", "paid_at"]);
    const payment: Payment = {
      id: randomUUID(),
      accountId,
      amountUsd,
      paidAt,
      reference: input.reference ?? null,
      createdAt: at,
    };
    await this.store.createPayment(payment);
    return payment;
  }

  /** `PUT /v1/accounts/{id}/budget` (root): the monthly budget the gateway admits against; null removes it. */
  async setBudget(p: Principal, accountId: string, input: unknown): Promise<Budget | null> {
    authorize(p, "change", "account", { accountId });
    const budget = parseBudgetInput(input);
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    await this.store.setAccountBudget(accountId, budget);
    return budget;
  }
}

function checkBillingTimezone(zone: string): string {
  if (!isValidZone(zone)) {
    throw DomainError.validation(
      ["body", "billing_timezone"],
      "must be an IANA timezone (e.g. Asia/Kolkata)",
    );
  }
  return zone;
}

/** What a key event says of the key: never its secret or digest. */
function keyEventData(k: ApiKey): KeyEventData {
  return {
    account_id: k.accountId ?? "",
    user_id: k.userId ?? "",
    key_id: k.id,
    label: k.label,
    prefix: k.prefix,
    created_at: formatUtc(k.createdAt),
    revoked_at: k.revokedAt === null ? null : formatUtc(k.revokedAt),
  };
}

/** `meters` of POST /v1/models: known meters, each an exact non-negative price; at least one. */
function readMeterPrices(input: Record<string, number | string>): MeterPrices {
  const entries = Object.entries(input);
  if (entries.length === 0) throw DomainError.validation(["body", "meters"], "must price at least one meter");
  const out: MeterPrices = {};
  for (const [name, price] of entries) {
    if (!isMeter(name)) {
      throw DomainError.validation(["body", "meters", name], `is not a meter (one of ${METERS.join(", ")})`);
    }
    out[name] = readDecimal(price, ["body", "meters", name], PRICE_RULE);
  }
  return out;
}

function sameMeterPrices(a: MeterPrices | null, b: MeterPrices | null): boolean {
  if (a === null || b === null) return a === b;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<Meter>;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}
