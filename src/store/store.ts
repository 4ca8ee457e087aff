import type { BillingMode, Budget } from "../domain/budget.ts";
import type { Dec } from "../domain/decimal.ts";
import type { MeterLine, MeterPrices } from "../domain/meters.ts";
import type { RollupLevel } from "../domain/time.ts";
import type { NewOutboxMessage, NotifyStore } from "./notify-store.ts";
import type { SessionStoreVerbs } from "./session-store.ts";
import type { TransferStore } from "./transfer-store.ts";

/**
 * The one storage interface. SqliteStore and PostgresStore implement it with the same behaviour;
 * `test/store/store.case.ts` is the contract both pass. Instants are epoch milliseconds; money
 * and quantities are exact `Dec` (bigint atto units).
 */

export type Role = "admin" | "member";

export interface Account {
  id: string;
  name: string;
  isEnabled: boolean;
  planId: string | null;
  createdAt: number;
  /** IANA zone billing periods are counted in (default UTC) */
  billingTimezone?: string;
  /** the monthly budget (`PUT /v1/accounts/{id}/budget`); null or absent: none */
  budget?: Budget | null;
  /** "prepaid" spends the account's payments; absent: postpaid */
  billingMode?: BillingMode;
}

export type { BillingMode };

export interface User {
  id: string;
  accountId: string;
  username: string;
  role: Role;
  nodeId: string | null;
  createdAt: number;
}

export interface ApiKey {
  id: string;
  userId: string | null;
  accountId: string | null;
  isRoot: boolean;
  label: string;
  prefix: string;
  hash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** the digest of the secret a rotation replaced, still accepted until `previousExpiresAt` */
  previousHash?: string | null;
  previousExpiresAt?: number | null;
}

export interface Model {
  id: string;
  unit: string;
  kind: string;
  reportingEnabled: boolean;
  createdAt: number;
  updatedAt: number;
  /** the upstream the gateway forwards this model to (null: not routed) */
  upstreamId?: string | null;
  /** the model name sent upstream (null: the model's own id) */
  upstreamModel?: string | null;
}

/** An OpenAI-compatible server the gateway forwards to; its secret lives in `apiKeyEnv`, never here. */
export interface Upstream {
  id: string;
  baseUrl: string;
  apiKeyEnv: string | null;
  timeoutMs: number;
  createdAt: number;
}

export interface PriceVersion {
  modelId: string;
  effectiveFrom: number;
  /** the one unit price; 0 for a version priced per meter */
  unitPrice: Dec;
  currency: string;
  /** a price per meter (DESIGN.md "Meters"); null or absent: priced per unit */
  meters?: MeterPrices | null;
}

export interface License {
  id: string;
  accountId: string;
  modelId: string;
  startsAt: number;
  endsAt: number | null;
  createdAt: number;
}

export interface Plan {
  id: string;
  requestsPerMinute: number | null;
  requestsPerDay: number | null;
  validityDays: number;
  modelWhitelist: string[] | null;
  modelBlacklist: string[] | null;
  included: Record<string, Dec>;
  createdAt: number;
  updatedAt: number;
  /** billing terms (currency, base fee, charges) as JSON with decimal strings; absent: none */
  billing?: string | null;
}

/** One invoice of a batch: the record, the number it takes, its outbox rows. */
export interface NewInvoice {
  record: InvoiceRecord;
  numbered: { year: number; sequence: number } | null;
  messages: NewOutboxMessage[];
}

export interface Subscription {
  id: string;
  accountId: string;
  planId: string;
  activatedAt: number;
  /** when the subscription was ended early; null while it runs */
  endsAt?: number | null;
  createdAt: number;
}

export interface Payment {
  id: string;
  accountId: string;
  amountUsd: Dec;
  paidAt: number;
  reference: string | null;
  createdAt: number;
  /** a refund: the payment it corrects (its amount is negative) */
  refundOf?: string | null;
}

/** A refund written, or refused as more than what is left of its payment (`left`, before it). */
export type RefundOutcome = { written: true } | { written: false; left: Dec };

export type StoredInvoiceStatus = "finalized" | "no_charge" | "void";

/** A finalized invoice as stored: the document (JSON, exact decimals as strings) and PDF never change. */
export interface InvoiceRecord {
  id: string;
  accountId: string;
  /** "2026-11" */
  period: string;
  periodStart: number;
  periodEnd: number;
  timezone: string;
  status: StoredInvoiceStatus;
  number: string | null;
  currency: string;
  document: string;
  pdf: Buffer;
  /** JSON: the usage this invoice billed, per period and plan segment (late usage is measured against it) */
  coverage: string;
  issuedAt: number;
}

/** One priced usage event as stored. */
export interface UsageEvent {
  usageId: string;
  accountId: string;
  eventId: string;
  ts: number;
  userId: string | null;
  keyId: string | null;
  modelId: string;
  apiName: string | null;
  endpoint: string | null;
  kind: string;
  unit: string;
  quantity: Dec;
  unitPrice: Dec;
  cost: Dec;
  currency: string;
  tokensPrompt: number;
  tokensCompletion: number;
  statusActive: boolean;
  metadata: Record<string, unknown> | null;
  apiKeyUsed: string | null;
  createdAt: number;
  updatedAt: number;
  /** not stored: the request was already counted by an allowed limits check, so it counts no request again */
  admitted?: boolean;
  /** a meter-priced event's lines (quantity and cost are their sums); null or absent: one unit */
  meters?: MeterLine[] | null;
}

/** What became of an appended event; a duplicate names the usage_id stored under its id first. */
export interface AppendOutcome {
  status: "inserted" | "duplicate";
  usageId: string;
}

export interface AuditEntry {
  id: string;
  accountId: string;
  /** the usage event a correction changed; "" for other resources */
  usageId: string;
  action: "update" | "delete" | "rotate" | "refund";
  /** what changed: a usage_record, or an account, user, key, license, subscription or payment */
  resourceType?: string;
  resourceId?: string;
  actorKeyId: string | null;
  actorUserId: string | null;
  at: number;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/** Which rollup rows a query reads: the account-wide family, or the one keyed by API key and user. */
export type RollupFamily = "account" | "key";

export interface AggregateQuery {
  accountId: string;
  family: RollupFamily;
  /** Ranges to sum, each tagged with the output bucket it belongs to; sign -1 subtracts the range. */
  segments: { bucket: number; level: RollupLevel; start: number; end: number; sign: 1 | -1 }[];
  modelIds?: string[];
  keyId?: string;
  userId?: string;
  /** false: token counts are not summed (they read 0); a caller that shows none saves the work */
  tokens?: boolean;
}

export interface AggregateRow {
  bucket: number;
  modelId: string;
  unit: string;
  unitPrice: Dec;
  currency: string;
  kind: string;
  /** '' in the account family */
  keyId: string;
  userId: string;
  requests: number;
  quantity: Dec;
  cost: Dec;
  tokensPrompt: number;
  tokensCompletion: number;
}

export interface EventPage {
  accountId: string;
  userId?: string;
  skip: number;
  limit: number;
}

export interface EventPatch {
  quantity?: Dec;
  cost?: Dec;
  unitPrice?: Dec;
  /** recompute the unit price as cost / quantity (9 places) from the corrected row, inside the transaction */
  repriceFromCost?: boolean;
  statusActive?: boolean;
}

/** A page of a list in creation order: after the item `after` names, at most `limit`. */
export interface PageQuery {
  limit: number;
  /** the cursor item's (created_at, id); null for the first page */
  after: { createdAt: number; id: string } | null;
}

export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

export interface AuditFilter {
  accountId: string;
  resourceType?: string;
  resourceId?: string;
  usageId?: string;
  limit: number;
  /** newest first: the page holds entries older than this one's (at, id); absent: the first page */
  before?: { at: number; id: string } | null;
}

export interface VerifyDifference {
  table: string;
  key: string;
  expected: string;
  actual: string;
}

export interface Store extends NotifyStore, SessionStoreVerbs, TransferStore {
  readonly dialect: "sqlite" | "postgres";
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  createAccount(a: Account): Promise<void>;
  getAccount(id: string): Promise<Account | null>;
  setAccountPlan(accountId: string, planId: string | null): Promise<void>;
  setAccountBudget(accountId: string, budget: Budget | null): Promise<void>;

  createUser(u: User): Promise<void>;
  getUser(id: string): Promise<User | null>;

  // The operator API: lists in creation order, and changes that write their audit entry atomically.
  listAccounts(q: PageQuery & { namePrefix?: string }): Promise<Page<Account>>;
  listUsers(accountId: string, q: PageQuery): Promise<Page<User>>;
  /** keys of a user, or of an account (optionally one user's), in creation order */
  listKeyPage(
    of: { accountId: string; userId?: string } | { userId: string },
    q: PageQuery,
  ): Promise<Page<ApiKey>>;
  listPlans(q: PageQuery): Promise<Page<Plan>>;
  listLicensePage(accountId: string, q: PageQuery & { modelId?: string }): Promise<Page<License>>;
  listSubscriptionPage(accountId: string, q: PageQuery): Promise<Page<Subscription>>;
  listPaymentPage(accountId: string, q: PageQuery): Promise<Page<Payment>>;
  getLicense(id: string): Promise<License | null>;
  getSubscription(id: string): Promise<Subscription | null>;
  getPayment(id: string): Promise<Payment | null>;
  updateAccount(a: Account, audit: AuditEntry): Promise<void>;
  updateUser(u: User, audit: AuditEntry): Promise<void>;
  /** writes the key's label, digests and prefix (a rotation) */
  updateKey(k: ApiKey, audit: AuditEntry): Promise<void>;
  endLicense(id: string, endsAt: number | null, audit: AuditEntry): Promise<void>;
  endSubscription(id: string, endsAt: number | null, audit: AuditEntry): Promise<void>;
  /** the refunds already written against a payment */
  refundsOf(paymentId: string): Promise<Payment[]>;
  /**
   * Writes a refund (a payment with `refundOf`) and its audit entry unless, with the refunds
   * already written, it would exceed the payment: checked and written in one transaction, so
   * concurrent refunds never exceed it together.
   */
  createRefund(p: Payment, audit: AuditEntry): Promise<RefundOutcome>;
  /** a page of an account's audit entries, newest first */
  findAudit(filter: AuditFilter): Promise<Page<AuditEntry>>;
  getAuditEntry(id: string): Promise<AuditEntry | null>;

  /** with the key.created outbox rows, in one transaction */
  createKey(k: ApiKey, messages?: NewOutboxMessage[]): Promise<void>;
  getKey(id: string): Promise<ApiKey | null>;
  listKeys(userId: string): Promise<ApiKey[]>;
  findKeyByHash(hash: string): Promise<ApiKey | null>;
  /** with the key.revoked outbox rows, in one transaction */
  revokeKey(id: string, at: number, messages?: NewOutboxMessage[]): Promise<void>;
  hasRootKey(): Promise<boolean>;
  /** Records last use of keys, batched by the caller. */
  touchKeys(uses: Map<string, number>): Promise<void>;

  /** Inserts or updates a model; adds `price` as a new version when given. */
  upsertModel(m: Model, price: PriceVersion | null): Promise<"created" | "updated">;
  getModel(id: string): Promise<Model | null>;
  listModels(): Promise<Model[]>;
  /** CONFLICT when the id exists */
  createUpstream(u: Upstream): Promise<void>;
  getUpstream(id: string): Promise<Upstream | null>;
  listUpstreams(): Promise<Upstream[]>;
  listPrices(modelId?: string): Promise<PriceVersion[]>;

  createLicense(l: License): Promise<void>;
  listLicenses(accountId: string, modelId?: string): Promise<License[]>;

  upsertPlan(p: Plan): Promise<"created" | "updated">;
  getPlan(id: string): Promise<Plan | null>;

  /** Adds a subscription and makes its plan the account's current plan, in one transaction. */
  createSubscription(s: Subscription): Promise<void>;
  listSubscriptions(accountId: string): Promise<Subscription[]>;

  createPayment(p: Payment): Promise<void>;
  listPayments(accountId: string): Promise<Payment[]>;

  /**
   * Appends events in one durable transaction, updating every rollup in the same transaction.
   * An event whose (accountId, eventId) exists already is a duplicate and changes nothing.
   */
  appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]>;
  getEvent(accountId: string, usageId: string): Promise<UsageEvent | null>;
  findEventByUsageId(usageId: string): Promise<UsageEvent | null>;
  listEvents(page: EventPage): Promise<UsageEvent[]>;
  /** Applies a correction, moves the rollups by the difference and writes the audit entry, atomically. */
  updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null>;
  deleteEvent(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<boolean>;
  listAudit(accountId: string, filter: { usageId?: string; limit: number }): Promise<AuditEntry[]>;

  aggregate(q: AggregateQuery): Promise<AggregateRow[]>;

  /** Billing (issue 16). */
  setBillingTimezone(accountId: string, timezone: string): Promise<void>;
  /** every account id, in creation order */
  listAccountIds(): Promise<string[]>;
  /** the last invoice number given in `year` (0 when none) */
  lastInvoiceNumber(year: number): Promise<number>;
  /**
   * Inserts a finalized invoice; with `sequence`, takes that number of `year` in the same
   * transaction (it must be the last + 1). CONFLICT when the account's period has an invoice or
   * the number was taken meanwhile: nothing is written.
   */
  /** with the invoice.finalized outbox rows, in one transaction */
  insertInvoice(
    inv: InvoiceRecord,
    numbered: { year: number; sequence: number } | null,
    messages?: NewOutboxMessage[],
  ): Promise<void>;
  /**
   * insertInvoice for several invoices in one transaction (a month's close commits them in
   * batches: one commit, one fsync per batch). All or nothing: CONFLICT when any one conflicts.
   */
  insertInvoices(items: NewInvoice[]): Promise<void>;
  getInvoice(id: string): Promise<InvoiceRecord | null>;
  getInvoiceOfPeriod(accountId: string, period: string): Promise<InvoiceRecord | null>;
  /** the account's invoices, oldest period first */
  listInvoices(accountId: string): Promise<InvoiceRecord[]>;
  /** finalized or no_charge -> void; false when it was not one of those */
  voidInvoice(id: string, messages?: NewOutboxMessage[]): Promise<boolean>;

  /**
   * Recomputes every rollup from the raw events and lists the rows that differ; on PostgreSQL
   * also every event whose idempotency claim (event_ids) is missing or names another row.
   */
  verifyRollups(): Promise<VerifyDifference[]>;
}
