import type { Budget } from "../../domain/budget.ts";
import { splitCost, ZERO } from "../../domain/decimal.ts";
import {
  attemptRow,
  endpointRow,
  firingRow,
  messageRow,
  ruleRow,
  toAttempt,
  toEndpoint,
  toFiring,
  toMessage,
  toRule,
} from "../notify-rows.ts";
import type {
  AlertFiringRecord,
  AlertRuleRecord,
  DeliveryAttemptRecord,
  DeliveryCompletion,
  NewOutboxMessage,
  OutboxMessageRecord,
  OutboxStatus,
  WebhookEndpointRecord,
} from "../notify-store.ts";
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
import type { PortalLinkRecord, SessionRecord } from "../session-store.ts";
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
  NewInvoice,
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
import type { TransferRow } from "../transfer-store.ts";
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
import {
  consumePortalLink,
  deleteExpiredPortalLinks,
  deleteExpiredSessions,
  deleteSession,
  insertPortalLink,
  insertSession,
  liveSession,
} from "./sessions.ts";
import { type Row, type SqlExecutor, type Step, step } from "./sql.ts";
import {
  anyAccount,
  anyEvent,
  clearRollups,
  clearSeries,
  insertInto,
  pageOfTable,
  ROLLUP_RECOUNT,
  transferRow,
  transferTable,
} from "./transfer.ts";
import { allUpstreams, insertUpstream, upstreamById } from "./upstreams.ts";
import { compareRollups, rollupDifferences } from "./verify.ts";
import {
  accountsWithRules,
  attemptsOfEndpointPage,
  attemptsOfMessage,
  claimMessages,
  completeMessage,
  deleteAttemptsOfEndpoint,
  deleteEndpoint,
  deleteFiringsOfRule,
  deleteMessagesOfEndpoint,
  deleteRule,
  enabledEndpointsHearing,
  enableEndpointOfMessage,
  endpointById,
  endpointDisabled,
  endpointFailed,
  endpointSucceeded,
  endpointsOfAccountPage,
  endpointsPage,
  firingsOf,
  insertAttempt,
  insertEndpoint,
  insertFiring,
  insertMessage,
  insertRule,
  messageById,
  messagesOfEndpointPage,
  retryMessage,
  ruleById,
  rulesOfAccount,
  setEndpointSecrets,
} from "./webhooks.ts";

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

  async createKey(k: ApiKey, messages: NewOutboxMessage[] = []): Promise<void> {
    await this.changing(this.x.atomically([step(insertKey, keyRow(k)), ...messageSteps(messages)]));
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

  async revokeKey(id: string, at: number, messages: NewOutboxMessage[] = []): Promise<void> {
    await this.changing(this.x.atomically([step(revokeKey, { id, at }), ...messageSteps(messages)]));
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
    messages: NewOutboxMessage[] = [],
  ): Promise<void> {
    await this.x.atomically(invoiceSteps({ record: inv, numbered, messages }));
  }

  async insertInvoices(items: NewInvoice[]): Promise<void> {
    if (items.length > 0) await this.x.atomically(items.flatMap(invoiceSteps));
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

  async voidInvoice(id: string, messages: NewOutboxMessage[] = []): Promise<boolean> {
    const [voided] = await this.x.atomically([step(voidInvoice, { id }), ...messageSteps(messages)]);
    return voided.length > 0;
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

  protected async page<T>(
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
    return compareRollups(await this.x.all(rollupDifferences, {}));
  }

  // Webhooks and alerts (issue 17): endpoints, the outbox and its log, rules and firings.

  async createWebhookEndpoint(e: WebhookEndpointRecord): Promise<void> {
    await this.x.run(insertEndpoint, endpointRow(e));
  }

  async getWebhookEndpoint(id: string): Promise<WebhookEndpointRecord | null> {
    const r = await this.x.first(endpointById, { id });
    return r ? toEndpoint(r) : null;
  }

  async listWebhookEndpointsHearing(accountId: string | null): Promise<WebhookEndpointRecord[]> {
    return (await this.x.all(enabledEndpointsHearing, { accountId })).map(toEndpoint);
  }

  listWebhookEndpointPage(accountId: string | null, q: PageQuery): Promise<Page<WebhookEndpointRecord>> {
    return accountId === null
      ? this.page((a) => this.x.all(endpointsPage, a), q, toEndpoint)
      : this.page((a) => this.x.all(endpointsOfAccountPage, { ...a, accountId }), q, toEndpoint);
  }

  async setWebhookSecrets(
    id: string,
    secret: string,
    previous: string | null,
    previousExpiresAt: number | null,
  ): Promise<void> {
    await this.x.run(setEndpointSecrets, { id, secret, previous, previousExpiresAt });
  }

  async deleteWebhookEndpoint(id: string): Promise<boolean> {
    const [, , deleted] = await this.x.atomically([
      step(deleteAttemptsOfEndpoint, { id }),
      step(deleteMessagesOfEndpoint, { id }),
      step(deleteEndpoint, { id }),
    ]);
    return deleted.length > 0;
  }

  async enqueueMessages(messages: NewOutboxMessage[]): Promise<void> {
    if (messages.length > 0) await this.x.atomically(messageSteps(messages));
  }

  async claimDueMessages(
    now: number,
    limit: number,
    leaseMs: number,
    token: string,
  ): Promise<OutboxMessageRecord[]> {
    const rows = await this.x.all(claimMessages, { now, limit, token, leaseUntil: now + leaseMs });
    return rows.map(toMessage).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1));
  }

  async completeDelivery(c: DeliveryCompletion): Promise<boolean> {
    const lease = { endpointId: c.endpointId, messageId: c.messageId, token: c.leaseToken };
    const endpoint =
      c.endpoint.kind === "succeeded"
        ? step(endpointSucceeded, lease)
        : c.endpoint.kind === "failed"
          ? step(endpointFailed, { ...lease, at: c.endpoint.at })
          : step(endpointDisabled, { ...lease, at: c.endpoint.at, reason: c.endpoint.reason });
    const pending = c.message.status === "pending" ? c.message : null;
    // the endpoint first: its condition reads the lease the message update then releases
    const [, , completed] = await this.x.atomically([
      step(insertAttempt, attemptRow(c.attempt)),
      endpoint,
      step(completeMessage, {
        messageId: c.messageId,
        token: c.leaseToken,
        status: c.message.status,
        nextAttemptAt: pending?.nextAttemptAt ?? null,
        scheduleStep: pending?.scheduleStep ?? null,
        attemptNumber: c.attempt.attemptNumber,
        attemptedAt: c.attempt.attemptedAt,
      }),
    ]);
    return completed.length > 0;
  }

  async retryDelivery(
    messageId: string,
    now: number,
    lastStep: number,
  ): Promise<{ id: string; status: OutboxStatus; nextAttemptAt: number } | null> {
    const [retried] = await this.x.atomically([
      step(retryMessage, { id: messageId, now, lastStep }),
      step(enableEndpointOfMessage, { id: messageId }),
    ]);
    const r = retried[0];
    return r
      ? {
          id: String(r.id),
          status: String(r.status) as OutboxStatus,
          nextAttemptAt: Number(r.next_attempt_at),
        }
      : null;
  }

  async getOutboxMessage(id: string): Promise<OutboxMessageRecord | null> {
    const r = await this.x.first(messageById, { id });
    return r ? toMessage(r) : null;
  }

  async listDeliveries(
    endpointId: string,
    q: { limit: number; before: { createdAt: number; id: string } | null },
  ): Promise<{ messages: OutboxMessageRecord[]; attempts: DeliveryAttemptRecord[] }> {
    const args = {
      endpointId,
      beforeCreatedAt: q.before?.createdAt ?? Number.MAX_SAFE_INTEGER,
      beforeId: q.before?.id ?? "",
      limit: q.limit,
    };
    const [messages, attempts] = await this.x.atomically([
      step(messagesOfEndpointPage, args),
      step(attemptsOfEndpointPage, args),
    ]);
    return { messages: messages.map(toMessage), attempts: attempts.map(toAttempt) };
  }

  async attemptsOf(messageId: string): Promise<DeliveryAttemptRecord[]> {
    return (await this.x.all(attemptsOfMessage, { id: messageId })).map(toAttempt);
  }

  async createAlertRule(r: AlertRuleRecord): Promise<void> {
    await this.x.run(insertRule, ruleRow(r));
  }

  async getAlertRule(id: string): Promise<AlertRuleRecord | null> {
    const r = await this.x.first(ruleById, { id });
    return r ? toRule(r) : null;
  }

  async listAlertRules(accountId: string): Promise<AlertRuleRecord[]> {
    return (await this.x.all(rulesOfAccount, { accountId })).map(toRule);
  }

  async deleteAlertRule(id: string): Promise<boolean> {
    const [, deleted] = await this.x.atomically([
      step(deleteFiringsOfRule, { id }),
      step(deleteRule, { id }),
    ]);
    return deleted.length > 0;
  }

  async listAlertAccounts(): Promise<string[]> {
    return (await this.x.all(accountsWithRules, {})).map((r) => String(r.account_id));
  }

  async listAlertFirings(ruleId: string, periodStart: number): Promise<AlertFiringRecord[]> {
    return (await this.x.all(firingsOf, { ruleId, periodStart })).map(toFiring);
  }

  async recordAlertFiring(f: AlertFiringRecord, messages: NewOutboxMessage[]): Promise<void> {
    await this.x.atomically([step(insertFiring, firingRow(f)), ...messageSteps(messages)]);
  }

  // Dashboard sessions and portal links (issue 18)

  async createSession(r: SessionRecord): Promise<void> {
    await this.x.atomically([
      step(deleteExpiredSessions, { now: r.createdAt }),
      step(deleteExpiredPortalLinks, { now: r.createdAt }),
      step(insertSession, {
        token_hash: r.tokenHash,
        key_id: r.keyId,
        is_root: r.isRoot ? 1 : 0,
        account_id: r.accountId,
        user_id: r.userId,
        created_at: r.createdAt,
        expires_at: r.expiresAt,
      }),
    ]);
  }

  async findSession(tokenHash: string, now: number): Promise<SessionRecord | null> {
    const r = await this.x.first(liveSession, { hash: tokenHash, now });
    if (!r) return null;
    return {
      tokenHash: String(r.token_hash),
      keyId: r.key_id === null ? null : String(r.key_id),
      isRoot: r.is_root === true || Number(r.is_root) === 1,
      accountId: r.account_id === null ? null : String(r.account_id),
      userId: r.user_id === null ? null : String(r.user_id),
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
    };
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.x.run(deleteSession, { hash: tokenHash });
  }

  async createPortalLink(l: PortalLinkRecord): Promise<void> {
    await this.x.run(insertPortalLink, {
      link_hash: l.linkHash,
      account_id: l.accountId,
      user_id: l.userId,
      session_ttl_ms: l.sessionTtlMs,
      created_at: l.createdAt,
      expires_at: l.expiresAt,
    });
  }

  async consumePortalLink(linkHash: string, now: number): Promise<PortalLinkRecord | null> {
    const [r] = await this.x.all(consumePortalLink, { hash: linkHash, now });
    if (!r) return null;
    return {
      linkHash: String(r.link_hash),
      accountId: String(r.account_id),
      userId: r.user_id === null ? null : String(r.user_id),
      sessionTtlMs: Number(r.session_ttl_ms),
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
    };
  }

  // tally export / import

  async exportPage(
    table: string,
    after: string | null,
    limit: number,
  ): Promise<{ rows: TransferRow[]; last: string | null }> {
    const t = transferTable(table);
    const raw = await this.x.all(pageOfTable(t.table, t.key, after), { after: after ?? "", limit });
    const rows = raw.map(transferRow);
    return { rows, last: rows.length === 0 ? null : t.keyOf(rows[rows.length - 1]) };
  }

  async importRows(table: string, rows: TransferRow[]): Promise<void> {
    if (rows.length > 0) await this.x.atomically(this.importSteps(table, rows));
  }

  /** The statements that write imported rows of `table` (a dialect may add its own). */
  protected importSteps(table: string, rows: TransferRow[]): Step[] {
    const t = transferTable(table);
    return rows.map((row) => {
      const columns = Object.keys(row).filter((c) => c !== t.identity);
      return step(insertInto(t.table, columns), row);
    });
  }

  async isEmpty(): Promise<boolean> {
    return (
      (await this.x.first(anyAccount, {})) === undefined && (await this.x.first(anyEvent, {})) === undefined
    );
  }

  async recountRollups(): Promise<void> {
    await this.x.atomically([
      step(clearRollups, {}),
      step(clearSeries, {}),
      ...ROLLUP_RECOUNT.map((q) => step(q, {})),
    ]);
  }

  /** Writes an audit entry (inside the correction's transaction): its statement and arguments. */
  protected auditStep(entry: AuditEntry): Step {
    return step(insertAudit, auditRow(entry));
  }
}

/** The number and the invoice commit together or not at all: numbers stay gapless. */
function invoiceSteps(item: NewInvoice): Step[] {
  const steps: Step[] = [];
  if (item.numbered) {
    const { year, sequence } = item.numbered;
    steps.push(step(takeInvoiceNumber, { year, last: sequence, previous: sequence - 1 }));
  }
  steps.push(step(insertInvoice, invoiceRow(item.record)), ...messageSteps(item.messages));
  return steps;
}

/** Outbox rows as statements of the transaction that causes them. */
const messageSteps = (messages: NewOutboxMessage[]): Step[] =>
  messages.map((m) => step(insertMessage, messageRow(m)));
