import type { BillingMode, Budget } from "../domain/budget.ts";
import type { Dec } from "../domain/decimal.ts";
import type { RollupLevel } from "../domain/time.ts";

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
  /** the monthly budget (`PUT /v1/accounts/{id}/budget`); null or absent: none */
  budget?: Budget | null;
  /** "prepaid" spends the account's payments; absent: postpaid */
  billingMode?: BillingMode;
}

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
  unitPrice: Dec;
  currency: string;
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
}

export interface Subscription {
  id: string;
  accountId: string;
  planId: string;
  activatedAt: number;
  createdAt: number;
}

export interface Payment {
  id: string;
  accountId: string;
  amountUsd: Dec;
  paidAt: number;
  reference: string | null;
  createdAt: number;
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
}

/** What became of an appended event; a duplicate names the usage_id stored under its id first. */
export interface AppendOutcome {
  status: "inserted" | "duplicate";
  usageId: string;
}

export interface AuditEntry {
  id: string;
  accountId: string;
  usageId: string;
  action: "update" | "delete";
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

export interface VerifyDifference {
  table: string;
  key: string;
  expected: string;
  actual: string;
}

export interface Store {
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

  createKey(k: ApiKey): Promise<void>;
  getKey(id: string): Promise<ApiKey | null>;
  listKeys(userId: string): Promise<ApiKey[]>;
  findKeyByHash(hash: string): Promise<ApiKey | null>;
  revokeKey(id: string, at: number): Promise<void>;
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
  /** Recomputes every rollup from the raw events and lists the rows that differ. */
  verifyRollups(): Promise<VerifyDifference[]>;
}
