import { randomUUID } from "node:crypto";
import { authorize, reachOf } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { type Dec, formatDec, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { AMOUNT_RULE, readDecimal, readInstant } from "../domain/fields.ts";
import { displayPrefix, generateSecret, hashSecret } from "../domain/keys.ts";
import { formatUtc, isValidZone } from "../domain/time.ts";
import type {
  Account,
  ApiKey,
  AuditEntry,
  BillingMode,
  License,
  Model,
  Page,
  PageQuery,
  Payment,
  Plan,
  PriceVersion,
  Role,
  Store,
  Subscription,
  User,
} from "../store/store.ts";
import { readAccountPlan, withPlanInForce } from "./account-plan.ts";

/** The records these verbs answer with, as the surfaces see them. */
export type { ApiKey, BillingMode, Page };

/** A list request: at most `limit` items after the item `starting_after` names. */
export interface ListInput {
  limit: number;
  starting_after?: string;
}

export interface AccountPatch {
  name?: string;
  is_enabled?: boolean;
  billing_timezone?: string;
  billing_mode?: BillingMode;
}
export interface UserPatch {
  username?: string;
  role?: Role;
}
export interface RefundInput {
  amount_usd?: number | string;
  reference?: string | null;
}

/** The longest grace a rotated key's previous secret may keep working: 30 days. */
const MAX_GRACE_SECONDS = 30 * 86_400;

const CURSOR_LOC = ["query", "starting_after"];
const notInList = () => DomainError.validation(CURSOR_LOC, "is not an id in this list");

/** What every listed record has: an id and a creation instant (the list's order). */
interface Listed {
  id: string;
  createdAt: number;
}

/**
 * The operator API (DESIGN.md "Operator API"): lists in creation order with cursors, reads by
 * id, and the changes an operator makes without SQL, each leaving an audit entry. Who may do
 * what is asked of access.ts first, as everywhere.
 */
export class OperatorService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** The page query for `input`; the cursor must name an item of this very list. */
  private async cursor<T extends Listed>(
    input: ListInput,
    read: (id: string) => Promise<T | null>,
    inList: (item: T) => boolean,
  ): Promise<PageQuery> {
    if (input.starting_after === undefined) return { limit: input.limit, after: null };
    const item = await read(input.starting_after);
    if (!item || !inList(item)) throw notInList();
    return { limit: input.limit, after: { createdAt: item.createdAt, id: item.id } };
  }

  /** A list that holds one item at most (a member's own user, an admin's own account). */
  private async single<T extends Listed>(item: T | null, input: ListInput): Promise<Page<T>> {
    if (input.starting_after === undefined) return { data: item ? [item] : [], hasMore: false };
    if (!item || input.starting_after !== item.id) throw notInList();
    return { data: [], hasMore: false };
  }

  private audit(
    p: Principal,
    accountId: string,
    resourceType: string,
    resourceId: string,
    action: AuditEntry["action"],
    before: Record<string, unknown> | null,
    after: Record<string, unknown> | null,
  ): AuditEntry {
    return {
      id: randomUUID(),
      accountId,
      usageId: "",
      action,
      resourceType,
      resourceId,
      actorKeyId: p.keyId,
      actorUserId: p.kind === "user" ? p.userId : null,
      at: this.now(),
      before,
      after,
    };
  }

  private async account(accountId: string): Promise<Account> {
    const account = await this.store.getAccount(accountId);
    if (!account) throw DomainError.notFound("account");
    return account;
  }

  // Accounts

  async listAccounts(p: Principal, input: ListInput & { name_prefix?: string }): Promise<Page<Account>> {
    authorize(p, "read", "account");
    const prefix = input.name_prefix ?? "";
    let page: Page<Account>;
    if (p.kind !== "root") {
      const own = await this.store.getAccount(p.accountId);
      page = await this.single(own?.name.startsWith(prefix) ? own : null, input);
    } else {
      const q = await this.cursor(
        input,
        (id) => this.store.getAccount(id),
        (a) => a.name.startsWith(prefix),
      );
      page = await this.store.listAccounts({ ...q, namePrefix: prefix });
    }
    const at = this.now();
    const data = await Promise.all(page.data.map((a) => withPlanInForce(this.store, a, at)));
    return { data, hasMore: page.hasMore };
  }

  async updateAccount(p: Principal, accountId: string, patch: AccountPatch): Promise<Account> {
    authorize(p, "change", "account", { accountId });
    const before = await this.account(accountId);
    if (patch.billing_timezone !== undefined && !isValidZone(patch.billing_timezone)) {
      throw DomainError.validation(["body", "billing_timezone"], "must be an IANA time zone");
    }
    const after: Account = {
      ...before,
      name: patch.name ?? before.name,
      isEnabled: patch.is_enabled ?? before.isEnabled,
      billingTimezone: patch.billing_timezone ?? before.billingTimezone,
      billingMode: patch.billing_mode ?? before.billingMode,
    };
    const entry = this.audit(
      p,
      accountId,
      "account",
      accountId,
      "update",
      accountSnapshot(before),
      accountSnapshot(after),
    );
    await this.store.updateAccount(after, entry);
    return withPlanInForce(this.store, after, this.now());
  }

  // Users

  async listUsers(p: Principal, accountId: string, input: ListInput): Promise<Page<User>> {
    authorize(p, "read", "user", { accountId }, { notFound: () => DomainError.notFound("account") });
    await this.account(accountId);
    if (p.kind === "user" && reachOf(p, "read", "user") === "own") {
      return this.single(await this.store.getUser(p.userId), input);
    }
    const q = await this.cursor(
      input,
      (id) => this.store.getUser(id),
      (u) => u.accountId === accountId,
    );
    return this.store.listUsers(accountId, q);
  }

  async getUser(p: Principal, userId: string): Promise<User> {
    const user = await this.store.getUser(userId);
    if (!user) throw DomainError.notFound("user");
    authorize(p, "read", "user", { accountId: user.accountId, userId: user.id });
    return user;
  }

  async updateUser(p: Principal, userId: string, patch: UserPatch): Promise<User> {
    const before = await this.store.getUser(userId);
    if (!before) throw DomainError.notFound("user");
    authorize(p, "change", "user", { accountId: before.accountId });
    const after: User = {
      ...before,
      username: patch.username ?? before.username,
      role: patch.role ?? before.role,
    };
    const entry = this.audit(
      p,
      before.accountId,
      "user",
      userId,
      "update",
      userSnapshot(before),
      userSnapshot(after),
    );
    try {
      await this.store.updateUser(after, entry);
    } catch (err) {
      if (err instanceof DomainError && err.code === "CONFLICT")
        throw new DomainError("CONFLICT", `username ${after.username} exists in this account`);
      throw err;
    }
    return after;
  }

  // Keys

  private async liveKeyOf(keyId: string): Promise<ApiKey & { accountId: string }> {
    const key = await this.store.getKey(keyId);
    // the root keys are not an account's: they are not found here
    if (!key || key.isRoot || key.accountId === null) throw DomainError.notFound("key");
    return key as ApiKey & { accountId: string };
  }

  async listUserKeys(p: Principal, userId: string, input: ListInput): Promise<Page<ApiKey>> {
    const user = await this.store.getUser(userId);
    if (!user) throw DomainError.notFound("user");
    authorize(
      p,
      "read",
      "key",
      { accountId: user.accountId, userId: user.id },
      { notFound: () => DomainError.notFound("user") },
    );
    const q = await this.cursor(
      input,
      (id) => this.store.getKey(id),
      (k) => k.userId === user.id,
    );
    return this.store.listKeyPage({ userId: user.id }, q);
  }

  async listAccountKeys(
    p: Principal,
    accountId: string,
    input: ListInput & { user_id?: string },
  ): Promise<Page<ApiKey>> {
    // a member lists its own keys only: naming another user is refused, naming none means its own
    const own = p.kind === "user" && reachOf(p, "read", "key") === "own" ? p.userId : undefined;
    const userId = input.user_id ?? own;
    authorize(
      p,
      "read",
      "key",
      { accountId, ...(userId === undefined ? {} : { userId }) },
      { notFound: () => DomainError.notFound("account") },
    );
    await this.account(accountId);
    const q = await this.cursor(
      input,
      (id) => this.store.getKey(id),
      (k) => k.accountId === accountId && (userId === undefined || k.userId === userId),
    );
    if (userId === undefined) return this.store.listKeyPage({ accountId }, q);
    const user = await this.store.getUser(userId);
    if (!user || user.accountId !== accountId) return { data: [], hasMore: false };
    return this.store.listKeyPage({ userId }, q);
  }

  async getKey(p: Principal, keyId: string): Promise<ApiKey> {
    const key = await this.liveKeyOf(keyId);
    authorize(p, "read", "key", { accountId: key.accountId, userId: key.userId });
    return key;
  }

  async updateKey(p: Principal, keyId: string, patch: { label?: string }): Promise<ApiKey> {
    const before = await this.liveKeyOf(keyId);
    authorize(p, "change", "key", { accountId: before.accountId });
    const after: ApiKey = { ...before, label: patch.label ?? before.label };
    const entry = this.audit(
      p,
      before.accountId,
      "key",
      keyId,
      "update",
      keySnapshot(before),
      keySnapshot(after),
    );
    await this.store.updateKey(after, entry);
    return after;
  }

  /**
   * A new secret for the same key (id, label, history). The old secret stops at once, or works
   * on for `grace_seconds`; a grace still running from an earlier rotation ends now.
   */
  async rotateKey(
    p: Principal,
    keyId: string,
    input: { grace_seconds?: number },
  ): Promise<ApiKey & { secret: string }> {
    const before = await this.liveKeyOf(keyId);
    authorize(p, "change", "key", { accountId: before.accountId });
    if (before.revokedAt !== null) throw new DomainError("CONFLICT", "A revoked key cannot be rotated");
    const grace = input.grace_seconds ?? 0;
    if (!Number.isInteger(grace) || grace < 0 || grace > MAX_GRACE_SECONDS) {
      throw DomainError.validation(
        ["body", "grace_seconds"],
        `must be a whole number from 0 to ${MAX_GRACE_SECONDS}`,
      );
    }
    const secret = generateSecret();
    const after: ApiKey = {
      ...before,
      prefix: displayPrefix(secret),
      hash: hashSecret(secret),
      previousHash: grace > 0 ? before.hash : null,
      previousExpiresAt: grace > 0 ? this.now() + grace * 1000 : null,
    };
    const entry = this.audit(p, before.accountId, "key", keyId, "rotate", keySnapshot(before), {
      ...keySnapshot(after),
      previous_secret_expires_at: after.previousExpiresAt ? formatUtc(after.previousExpiresAt) : null,
    });
    await this.store.updateKey(after, entry);
    return { ...after, secret };
  }

  // Models and plans

  async getModel(p: Principal, modelId: string): Promise<{ model: Model; prices: PriceVersion[] }> {
    authorize(p, "read", "model");
    const model = await this.store.getModel(modelId);
    if (!model) throw DomainError.notFound("model");
    return { model, prices: await this.store.listPrices(modelId) };
  }

  /** The plan in force now for the account (none when no subscription is). */
  private async planInForce(accountId: string): Promise<Plan | null> {
    const { account, plan } = await readAccountPlan(this.store, accountId, this.now());
    if (!account) throw DomainError.notFound("account");
    return plan;
  }

  /** The root lists every plan; an account key sees the plan in force for its account. */
  async listPlans(p: Principal, input: ListInput): Promise<Page<Plan>> {
    authorize(p, "read", "plan");
    if (p.kind !== "root") return this.single(await this.planInForce(p.accountId), input);
    const q = await this.cursor(
      input,
      (id) => this.store.getPlan(id),
      () => true,
    );
    return this.store.listPlans(q);
  }

  async getPlan(p: Principal, planId: string): Promise<Plan> {
    authorize(p, "read", "plan");
    const plan = await this.store.getPlan(planId);
    const visible = plan && (p.kind === "root" || (await this.planInForce(p.accountId))?.id === plan.id);
    if (!plan || !visible) throw DomainError.notFound("plan");
    return plan;
  }

  // Licenses, subscriptions, payments: an account's, read by its keys, changed by the root

  private async readable(p: Principal, resource: "license" | "subscription" | "payment", accountId: string) {
    authorize(p, "read", resource, { accountId }, { notFound: () => DomainError.notFound("account") });
    await this.account(accountId);
  }

  async listLicenses(
    p: Principal,
    accountId: string,
    input: ListInput & { model_id?: string },
  ): Promise<Page<License>> {
    await this.readable(p, "license", accountId);
    const modelId = input.model_id;
    const q = await this.cursor(
      input,
      (id) => this.store.getLicense(id),
      (l) => l.accountId === accountId && (modelId === undefined || l.modelId === modelId),
    );
    return this.store.listLicensePage(accountId, { ...q, modelId });
  }

  async getLicense(p: Principal, accountId: string, licenseId: string): Promise<License> {
    await this.readable(p, "license", accountId);
    const license = await this.store.getLicense(licenseId);
    if (!license || license.accountId !== accountId) throw DomainError.notFound("license");
    return license;
  }

  /** Ends a license at `ends_at` (null: runs on again); it must end after it starts. */
  async endLicense(
    p: Principal,
    accountId: string,
    licenseId: string,
    input: { ends_at: string | number | null },
  ): Promise<License> {
    authorize(p, "change", "license", { accountId });
    const before = await this.getLicense(p, accountId, licenseId);
    const endsAt = input.ends_at === null ? null : readInstant(input.ends_at, ["body", "ends_at"]);
    if (endsAt !== null && endsAt <= before.startsAt)
      throw DomainError.validation(["body", "ends_at"], "must be after starts_at");
    const after: License = { ...before, endsAt };
    const entry = this.audit(
      p,
      accountId,
      "license",
      licenseId,
      "update",
      endSnapshot(before.endsAt),
      endSnapshot(endsAt),
    );
    await this.store.endLicense(licenseId, endsAt, entry);
    return after;
  }

  async listSubscriptions(p: Principal, accountId: string, input: ListInput): Promise<Page<Subscription>> {
    await this.readable(p, "subscription", accountId);
    const q = await this.cursor(
      input,
      (id) => this.store.getSubscription(id),
      (s) => s.accountId === accountId,
    );
    return this.store.listSubscriptionPage(accountId, q);
  }

  async getSubscription(p: Principal, accountId: string, subscriptionId: string): Promise<Subscription> {
    await this.readable(p, "subscription", accountId);
    const sub = await this.store.getSubscription(subscriptionId);
    if (!sub || sub.accountId !== accountId) throw DomainError.notFound("subscription");
    return sub;
  }

  async endSubscription(
    p: Principal,
    accountId: string,
    subscriptionId: string,
    input: { ends_at: string | number | null },
  ): Promise<Subscription> {
    authorize(p, "change", "subscription", { accountId });
    const before = await this.getSubscription(p, accountId, subscriptionId);
    const endsAt = input.ends_at === null ? null : readInstant(input.ends_at, ["body", "ends_at"]);
    if (endsAt !== null && endsAt <= before.activatedAt)
      throw DomainError.validation(["body", "ends_at"], "must be after activated_at");
    const after: Subscription = { ...before, endsAt };
    const entry = this.audit(
      p,
      accountId,
      "subscription",
      subscriptionId,
      "update",
      endSnapshot(before.endsAt ?? null),
      endSnapshot(endsAt),
    );
    await this.store.endSubscription(subscriptionId, endsAt, entry);
    return after;
  }

  async listPayments(p: Principal, accountId: string, input: ListInput): Promise<Page<Payment>> {
    await this.readable(p, "payment", accountId);
    const q = await this.cursor(
      input,
      (id) => this.store.getPayment(id),
      (x) => x.accountId === accountId,
    );
    return this.store.listPaymentPage(accountId, q);
  }

  async getPayment(p: Principal, accountId: string, paymentId: string): Promise<Payment> {
    await this.readable(p, "payment", accountId);
    const payment = await this.store.getPayment(paymentId);
    if (!payment || payment.accountId !== accountId) throw DomainError.notFound("payment");
    return payment;
  }

  /**
   * Refunds a payment, whole (the default: what is left of it) or in part, by a new entry of the
   * negative amount that names the payment; the payment itself is never edited.
   */
  async refundPayment(
    p: Principal,
    accountId: string,
    paymentId: string,
    input: RefundInput,
  ): Promise<Payment> {
    authorize(p, "change", "payment", { accountId });
    const payment = await this.getPayment(p, accountId, paymentId);
    if (payment.refundOf) throw new DomainError("CONFLICT", "A refund cannot be refunded");
    const refunded = (await this.store.refundsOf(paymentId)).reduce((sum, r) => sum - r.amountUsd, ZERO);
    const left: Dec = payment.amountUsd - refunded;
    if (left <= ZERO) throw new DomainError("CONFLICT", "This payment is refunded in full already");
    const amount =
      input.amount_usd === undefined
        ? left
        : readDecimal(input.amount_usd, ["body", "amount_usd"], AMOUNT_RULE);
    if (amount === ZERO) throw DomainError.validation(["body", "amount_usd"], "must be greater than 0");
    if (amount > left)
      throw DomainError.validation(
        ["body", "amount_usd"],
        `must be at most ${formatDec(left)}, what is left to refund`,
      );
    const at = this.now();
    const refund: Payment = {
      id: randomUUID(),
      accountId,
      amountUsd: -amount,
      paidAt: at,
      reference: input.reference ?? null,
      createdAt: at,
      refundOf: paymentId,
    };
    const entry = this.audit(p, accountId, "payment", paymentId, "refund", null, {
      refund_id: refund.id,
      amount_usd: formatDec(refund.amountUsd),
      reference: refund.reference,
    });
    // checked again with the payment locked: a refund written meanwhile may have left less
    const outcome = await this.store.createRefund(refund, entry);
    if (!outcome.written) {
      throw new DomainError(
        "CONFLICT",
        outcome.left <= ZERO
          ? "This payment is refunded in full already"
          : `Another refund of this payment was written meanwhile: at most ${formatDec(outcome.left)} is left to refund`,
      );
    }
    return refund;
  }
}

const accountSnapshot = (a: Account) => ({
  name: a.name,
  is_enabled: a.isEnabled,
  billing_timezone: a.billingTimezone,
  billing_mode: a.billingMode,
});
const userSnapshot = (u: User) => ({ username: u.username, role: u.role });
/** never the digest: only what a list shows */
const keySnapshot = (k: ApiKey) => ({ label: k.label, prefix: k.prefix });
const endSnapshot = (endsAt: number | null) => ({ ends_at: endsAt === null ? null : formatUtc(endsAt) });
