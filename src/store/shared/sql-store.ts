import type { Budget } from "../../domain/budget.ts";
import { splitCost, ZERO } from "../../domain/decimal.ts";
import {
  accountRow,
  auditRow,
  invoiceRow,
  keyRow,
  licenseRow,
  modelRow,
  paymentRow,
  planRow,
  priceRow,
  subscriptionRow,
  toAccount,
  toAudit,
  toEvent,
  toInvoice,
  toKey,
  toLicense,
  toModel,
  toPayment,
  toPlan,
  toPrice,
  toSubscription,
  toUpstream,
  toUser,
  upstreamRow,
  userRow,
} from "../rows.ts";
import type {
  Account,
  AggregateQuery,
  AggregateRow,
  ApiKey,
  AppendOutcome,
  AuditEntry,
  AuditFilter,
  EventPage,
  EventPatch,
  InvoiceRecord,
  License,
  Model,
  Page,
  PageQuery,
  Payment,
  Plan,
  PriceVersion,
  RefundOutcome,
  Store,
  Subscription,
  Upstream,
  UsageEvent,
  User,
  VerifyDifference,
} from "../store.ts";
import {
  accountById,
  allAccountIds,
  insertAccount,
  insertUser,
  setAccountBudget,
  setAccountPlan,
  setBillingTimezone,
  userById,
} from "./accounts.ts";
import { insertPayment, insertSubscription, paymentsOf, subscriptionsOf } from "./billing.ts";
import { eventByUsageId, eventsOfAccount, eventsOfUser, insertAudit, liveEvent } from "./events.ts";
import {
  insertInvoice,
  invoiceById,
  invoiceOfPeriod,
  invoicesOfAccount,
  lastInvoiceNumber,
  takeInvoiceNumber,
  voidInvoice,
} from "./invoices.ts";
import { insertKey, keyByHash, keyById, keysOfUser, liveRootKey, revokeKey } from "./keys.ts";
import { insertLicense, licensesOfAccount, licensesOfModel } from "./licenses.ts";
import { ping } from "./meta.ts";
import { allModels, allPrices, modelById, pricesOfModel, upsertModel, upsertPrice } from "./models.ts";
import {
  accountsPage,
  auditById,
  auditFiltered,
  endLicense,
  endSubscription,
  keysOfAccountPage,
  keysOfUserPage,
  licenseById,
  licensesOfModelPage,
  licensesPage,
  lockPayment,
  type PageArgs,
  paymentById,
  paymentsPage,
  plansPage,
  refundsOfPayment,
  subscriptionById,
  subscriptionsPage,
  updateAccount,
  updateKey,
  updateUser,
  usersPage,
} from "./pages.ts";
import { planById, upsertPlan } from "./plans.ts";
import { type Row, type SqlExecutor, type Step, step } from "./sql.ts";
import { allUpstreams, insertUpstream, upstreamById } from "./upstreams.ts";
import { compareRollups, expectedNotStored, storedNotExpected } from "./verify.ts";

/**
 * Reference rows (keys by digest, users, accounts, plans, licenses, subscriptions) as every request reads them,
 * remembered per dialect (sqlite/reference-cache.ts, postgres/reference-cache.ts).
 */
export interface ReferenceCache {
  remember<T>(key: string, read: () => Promise<T>): Promise<T>;
  /** a key was read by its digest (the SQLite cache moves its last use in place) */
  keyRead(hash: string, key: ApiKey | null): void;
  /** a write through this store to the reference tables committed */
  forget(): void;
}

/**
 * Everything both stores do the same way, written once over a `SqlExecutor`: the CRUD of the
 * reference and billing tables, event reads, the audit log and verify. A dialect's store adds
 * the hot paths (append, aggregate, series interning, key touches), corrections (they apply
 * rollups) and its connection, transactions and migrations.
 */
export abstract class SqlStore implements Store {
  abstract readonly dialect: "sqlite" | "postgres";
  protected abstract readonly x: SqlExecutor;
  protected abstract readonly refs: ReferenceCache;

  abstract migrate(): Promise<void>;
  abstract close(): Promise<void>;
  abstract touchKeys(uses: Map<string, number>): Promise<void>;
  abstract appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]>;
  abstract updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null>;
  abstract deleteEvent(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<boolean>;
  abstract aggregate(q: AggregateQuery): Promise<AggregateRow[]>;

  async ping(): Promise<void> {
    await this.x.first(ping, {});
  }

  /** A write to the reference tables: what this store remembered is forgotten once it ran. */
  private async changing<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.refs.forget();
    }
  }

  async createAccount(a: Account): Promise<void> {
    await this.changing(this.x.run(insertAccount, accountRow(a)));
  }

  getAccount(id: string): Promise<Account | null> {
    return this.refs.remember(`account:${id}`, async () => {
      const r = await this.x.first(accountById, { id });
      return r ? toAccount(r) : null;
    });
  }

  async setAccountBudget(accountId: string, budget: Budget | null): Promise<void> {
    const cost = budget ? splitCost(budget.monthlyUsd) : null;
    await this.changing(
      this.x.run(setAccountBudget, {
        accountId,
        nano: cost?.nano ?? null,
        atto: cost?.atto ?? null,
        mode: budget?.mode ?? null,
      }),
    );
  }

  async setAccountPlan(accountId: string, planId: string | null): Promise<void> {
    await this.changing(this.x.run(setAccountPlan, { accountId, planId }));
  }

  async createUser(u: User): Promise<void> {
    await this.changing(this.x.run(insertUser, userRow(u)));
  }

  getUser(id: string): Promise<User | null> {
    return this.refs.remember(`user:${id}`, async () => {
      const r = await this.x.first(userById, { id });
      return r ? toUser(r) : null;
    });
  }

  async createKey(k: ApiKey): Promise<void> {
    await this.changing(this.x.run(insertKey, keyRow(k)));
  }

  async getKey(id: string): Promise<ApiKey | null> {
    const r = await this.x.first(keyById, { id });
    return r ? toKey(r) : null;
  }

  async listKeys(userId: string): Promise<ApiKey[]> {
    return (await this.x.all(keysOfUser, { userId })).map(toKey);
  }

  findKeyByHash(hash: string): Promise<ApiKey | null> {
    return this.refs.remember(`key:${hash}`, async () => {
      const r = await this.x.first(keyByHash, { hash });
      const key = r ? toKey(r) : null;
      this.refs.keyRead(hash, key);
      return key;
    });
  }

  async revokeKey(id: string, at: number): Promise<void> {
    await this.changing(this.x.run(revokeKey, { id, at }));
  }

  async hasRootKey(): Promise<boolean> {
    return (await this.x.first(liveRootKey, {})) !== undefined;
  }

  async upsertModel(m: Model, price: PriceVersion | null): Promise<"created" | "updated"> {
    const steps = [step(modelById, { id: m.id }), step(upsertModel, modelRow(m))];
    if (price) steps.push(step(upsertPrice, priceRow(price)));
    const [existing] = await this.x.atomically(steps);
    return existing.length > 0 ? "updated" : "created";
  }

  async getModel(id: string): Promise<Model | null> {
    const r = await this.x.first(modelById, { id });
    return r ? toModel(r) : null;
  }

  async listModels(): Promise<Model[]> {
    return (await this.x.all(allModels, {})).map(toModel);
  }

  async createUpstream(u: Upstream): Promise<void> {
    await this.x.run(insertUpstream, upstreamRow(u));
  }

  async getUpstream(id: string): Promise<Upstream | null> {
    const r = await this.x.first(upstreamById, { id });
    return r ? toUpstream(r) : null;
  }

  async listUpstreams(): Promise<Upstream[]> {
    return (await this.x.all(allUpstreams, {})).map(toUpstream);
  }

  async listPrices(modelId?: string): Promise<PriceVersion[]> {
    const rows = modelId ? await this.x.all(pricesOfModel, { modelId }) : await this.x.all(allPrices, {});
    return rows.map(toPrice);
  }

  async createLicense(l: License): Promise<void> {
    await this.changing(this.x.run(insertLicense, licenseRow(l)));
  }

  listLicenses(accountId: string, modelId?: string): Promise<License[]> {
    return this.refs.remember(`licenses:${accountId}\u0000${modelId ?? ""}`, async () => {
      const rows = modelId
        ? await this.x.all(licensesOfModel, { accountId, modelId })
        : await this.x.all(licensesOfAccount, { accountId });
      return rows.map(toLicense);
    });
  }

  async upsertPlan(p: Plan): Promise<"created" | "updated"> {
    const [existing] = await this.changing(
      this.x.atomically([step(planById, { id: p.id }), step(upsertPlan, planRow(p))]),
    );
    return existing.length > 0 ? "updated" : "created";
  }

  getPlan(id: string): Promise<Plan | null> {
    return this.refs.remember(`plan:${id}`, async () => {
      const r = await this.x.first(planById, { id });
      return r ? toPlan(r) : null;
    });
  }

  async createSubscription(s: Subscription): Promise<void> {
    await this.changing(
      this.x.atomically([
        step(insertSubscription, subscriptionRow(s)),
        step(setAccountPlan, { accountId: s.accountId, planId: s.planId }),
      ]),
    );
  }

  /** remembered: the plan in force is read from them on every limit check (manage/account-plan.ts) */
  listSubscriptions(accountId: string): Promise<Subscription[]> {
    return this.refs.remember(`subscriptions:${accountId}`, async () =>
      (await this.x.all(subscriptionsOf, { accountId })).map(toSubscription),
    );
  }

  async setBillingTimezone(accountId: string, timezone: string): Promise<void> {
    await this.changing(this.x.run(setBillingTimezone, { accountId, timezone }));
  }

  async listAccountIds(): Promise<string[]> {
    return (await this.x.all(allAccountIds, {})).map((r) => String(r.id));
  }

  async lastInvoiceNumber(year: number): Promise<number> {
    const r = await this.x.first(lastInvoiceNumber, { year });
    return r ? Number(r.last) : 0;
  }

  async insertInvoice(
    inv: InvoiceRecord,
    numbered: { year: number; sequence: number } | null,
  ): Promise<void> {
    // the number and the invoice commit together or not at all: numbers stay gapless
    const steps: Step[] = [];
    if (numbered) {
      const { year, sequence } = numbered;
      steps.push(step(takeInvoiceNumber, { year, last: sequence, previous: sequence - 1 }));
    }
    steps.push(step(insertInvoice, invoiceRow(inv)));
    await this.x.atomically(steps);
  }

  async getInvoice(id: string): Promise<InvoiceRecord | null> {
    const r = await this.x.first(invoiceById, { id });
    return r ? toInvoice(r) : null;
  }

  async getInvoiceOfPeriod(accountId: string, period: string): Promise<InvoiceRecord | null> {
    const r = await this.x.first(invoiceOfPeriod, { accountId, period });
    return r ? toInvoice(r) : null;
  }

  async listInvoices(accountId: string): Promise<InvoiceRecord[]> {
    return (await this.x.all(invoicesOfAccount, { accountId })).map(toInvoice);
  }

  async voidInvoice(id: string): Promise<boolean> {
    return (await this.x.all(voidInvoice, { id })).length > 0;
  }

  async createPayment(p: Payment): Promise<void> {
    await this.x.run(insertPayment, paymentRow(p));
  }

  async listPayments(accountId: string): Promise<Payment[]> {
    return (await this.x.all(paymentsOf, { accountId })).map(toPayment);
  }

  async getEvent(accountId: string, usageId: string): Promise<UsageEvent | null> {
    const r = await this.x.first(liveEvent, { accountId, usageId });
    return r ? toEvent(r) : null;
  }

  async findEventByUsageId(usageId: string): Promise<UsageEvent | null> {
    const r = await this.x.first(eventByUsageId, { usageId });
    return r ? toEvent(r) : null;
  }

  async listEvents(page: EventPage): Promise<UsageEvent[]> {
    const { accountId, userId, limit, skip } = page;
    const rows = userId
      ? await this.x.all(eventsOfUser, { accountId, userId, limit, skip })
      : await this.x.all(eventsOfAccount, { accountId, limit, skip });
    return rows.map(toEvent);
  }

  async listAudit(accountId: string, filter: { usageId?: string; limit: number }): Promise<AuditEntry[]> {
    return (await this.findAudit({ ...filter, accountId })).data;
  }

  // The operator API: each list reads one row past the page to know whether more follow.

  private async page<T>(
    read: (a: PageArgs) => Promise<Row[]>,
    q: PageQuery,
    to: (r: Row) => T,
  ): Promise<Page<T>> {
    const rows = await read({
      afterCreatedAt: q.after?.createdAt ?? Number.MIN_SAFE_INTEGER,
      afterId: q.after?.id ?? "",
      limit: q.limit + 1,
    });
    return { data: rows.slice(0, q.limit).map(to), hasMore: rows.length > q.limit };
  }

  listAccounts(q: PageQuery & { namePrefix?: string }): Promise<Page<Account>> {
    const prefix = q.namePrefix ?? "";
    // substr counts characters in both dialects: code points, not UTF-16 units
    const prefixLength = [...prefix].length;
    return this.page((a) => this.x.all(accountsPage, { ...a, prefix, prefixLength }), q, toAccount);
  }

  listUsers(accountId: string, q: PageQuery): Promise<Page<User>> {
    return this.page((a) => this.x.all(usersPage, { ...a, accountId }), q, toUser);
  }

  listKeyPage(
    of: { accountId: string; userId?: string } | { userId: string },
    q: PageQuery,
  ): Promise<Page<ApiKey>> {
    const { userId } = of;
    if (userId !== undefined) {
      // a user's keys are its account's: the account, when named, is checked by the caller
      return this.page((a) => this.x.all(keysOfUserPage, { ...a, userId }), q, toKey);
    }
    const accountId = (of as { accountId: string }).accountId;
    return this.page((a) => this.x.all(keysOfAccountPage, { ...a, accountId }), q, toKey);
  }

  listPlans(q: PageQuery): Promise<Page<Plan>> {
    return this.page((a) => this.x.all(plansPage, a), q, toPlan);
  }

  listLicensePage(accountId: string, q: PageQuery & { modelId?: string }): Promise<Page<License>> {
    const { modelId } = q;
    return modelId === undefined
      ? this.page((a) => this.x.all(licensesPage, { ...a, accountId }), q, toLicense)
      : this.page((a) => this.x.all(licensesOfModelPage, { ...a, accountId, modelId }), q, toLicense);
  }

  listSubscriptionPage(accountId: string, q: PageQuery): Promise<Page<Subscription>> {
    return this.page((a) => this.x.all(subscriptionsPage, { ...a, accountId }), q, toSubscription);
  }

  listPaymentPage(accountId: string, q: PageQuery): Promise<Page<Payment>> {
    return this.page((a) => this.x.all(paymentsPage, { ...a, accountId }), q, toPayment);
  }

  async getLicense(id: string): Promise<License | null> {
    const r = await this.x.first(licenseById, { id });
    return r ? toLicense(r) : null;
  }

  async getSubscription(id: string): Promise<Subscription | null> {
    const r = await this.x.first(subscriptionById, { id });
    return r ? toSubscription(r) : null;
  }

  async getPayment(id: string): Promise<Payment | null> {
    const r = await this.x.first(paymentById, { id });
    return r ? toPayment(r) : null;
  }

  async updateAccount(a: Account, audit: AuditEntry): Promise<void> {
    await this.changing(this.x.atomically([step(updateAccount, accountRow(a)), this.auditStep(audit)]));
  }

  async updateUser(u: User, audit: AuditEntry): Promise<void> {
    await this.changing(this.x.atomically([step(updateUser, userRow(u)), this.auditStep(audit)]));
  }

  async updateKey(k: ApiKey, audit: AuditEntry): Promise<void> {
    await this.changing(this.x.atomically([step(updateKey, keyRow(k)), this.auditStep(audit)]));
  }

  async endLicense(id: string, endsAt: number | null, audit: AuditEntry): Promise<void> {
    await this.changing(this.x.atomically([step(endLicense, { id, endsAt }), this.auditStep(audit)]));
  }

  async endSubscription(id: string, endsAt: number | null, audit: AuditEntry): Promise<void> {
    await this.changing(this.x.atomically([step(endSubscription, { id, endsAt }), this.auditStep(audit)]));
  }

  async refundsOf(paymentId: string): Promise<Payment[]> {
    return (await this.x.all(refundsOfPayment, { paymentId })).map(toPayment);
  }

  async createRefund(p: Payment, audit: AuditEntry): Promise<RefundOutcome> {
    const paymentId = p.refundOf ?? "";
    let outcome: RefundOutcome = { written: false, left: ZERO };
    await this.x.decideAtomically(
      [step(lockPayment, { id: paymentId }), step(refundsOfPayment, { paymentId })],
      ([[payment], refunds]) => {
        // refunds are negative: what is left is the payment plus them
        const paid = payment ? toPayment(payment).amountUsd : ZERO;
        const left = refunds.reduce((sum, r) => sum + toPayment(r).amountUsd, paid);
        if (-p.amountUsd > left) {
          outcome = { written: false, left };
          return [];
        }
        outcome = { written: true };
        return [step(insertPayment, paymentRow(p)), this.auditStep(audit)];
      },
    );
    return outcome;
  }

  async findAudit(filter: AuditFilter): Promise<Page<AuditEntry>> {
    const rows = await this.x.all(auditFiltered, {
      accountId: filter.accountId,
      resourceType: filter.resourceType ?? "",
      resourceId: filter.resourceId ?? "",
      usageId: filter.usageId ?? "",
      beforeAt: filter.before?.at ?? Number.MAX_SAFE_INTEGER,
      beforeId: filter.before?.id ?? "",
      limit: filter.limit + 1,
    });
    return { data: rows.slice(0, filter.limit).map(toAudit), hasMore: rows.length > filter.limit };
  }

  async getAuditEntry(id: string): Promise<AuditEntry | null> {
    const r = await this.x.first(auditById, { id });
    return r ? toAudit(r) : null;
  }

  async verifyRollups(): Promise<VerifyDifference[]> {
    const [expected, stored] = await this.x.atomically([
      step(expectedNotStored, {}),
      step(storedNotExpected, {}),
    ]);
    return compareRollups(expected, stored);
  }

  /** Writes an audit entry (inside the correction's transaction): its statement and arguments. */
  protected auditStep(entry: AuditEntry): Step {
    return step(insertAudit, auditRow(entry));
  }
}
