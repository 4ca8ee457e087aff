import type { BudgetMode } from "../domain/budget.ts";
import { formatDec, fromMicro, fromPico, joinCost, splitCost, toMicro, toPico } from "../domain/decimal.ts";
import { isMeter, type Meter, type MeterLine, type MeterPrices } from "../domain/meters.ts";
import { unitPriceOfCost } from "../domain/pricing.ts";
import { meterTokens } from "./rollup-delta.ts";
import type { Tables } from "./shared/tables.ts";
import type {
  Account,
  AggregateRow,
  ApiKey,
  AuditEntry,
  BillingMode,
  EventPatch,
  InvoiceRecord,
  License,
  Model,
  Payment,
  Plan,
  PriceVersion,
  Subscription,
  Upstream,
  UsageEvent,
  User,
} from "./store.ts";

/**
 * Row <-> entity mapping shared by both stores: the column names are the same in SQLite and
 * PostgreSQL; only the driver's value types differ (number, bigint or string for int64, 0/1 or
 * boolean), so every reader here accepts all of them.
 */
type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === 1n || v === "1" || v === "t";
const big = (v: unknown): bigint => BigInt(v as string | number | bigint);
const json = <T>(v: unknown): T | null =>
  v === null || v === undefined ? null : (JSON.parse(String(v)) as T);

export const toAccount = (r: Row): Account => ({
  id: String(r.id),
  name: String(r.name),
  isEnabled: bool(r.is_enabled),
  planId: (r.plan_id as string | null) ?? null,
  createdAt: num(r.created_at),
  billingTimezone: String(r.billing_timezone ?? "UTC"),
  billingMode: (r.billing_mode ?? "postpaid") as BillingMode,
  // no budget: the field stays absent
  ...(r.budget_mode == null
    ? {}
    : {
        budget: {
          monthlyUsd: joinCost(big(r.budget_nano), big(r.budget_atto)),
          mode: r.budget_mode as BudgetMode,
        },
      }),
});

export const toUser = (r: Row): User => ({
  id: String(r.id),
  accountId: String(r.account_id),
  username: String(r.username),
  role: r.role as User["role"],
  nodeId: (r.node_id as string | null) ?? null,
  createdAt: num(r.created_at),
});

export const toKey = (r: Row): ApiKey => ({
  id: String(r.id),
  userId: (r.user_id as string | null) ?? null,
  accountId: (r.account_id as string | null) ?? null,
  isRoot: bool(r.is_root),
  label: String(r.label),
  prefix: String(r.prefix),
  hash: String(r.hash),
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
  revokedAt: numOrNull(r.revoked_at),
  previousHash: (r.previous_hash as string | null) ?? null,
  previousExpiresAt: numOrNull(r.previous_expires_at),
});

export const toModel = (r: Row): Model => ({
  id: String(r.id),
  unit: String(r.unit),
  kind: String(r.kind),
  reportingEnabled: bool(r.reporting_enabled),
  createdAt: num(r.created_at),
  updatedAt: num(r.updated_at),
  // a model routed nowhere has no route fields
  ...(r.upstream_id == null ? {} : { upstreamId: String(r.upstream_id) }),
  ...(r.upstream_model == null ? {} : { upstreamModel: String(r.upstream_model) }),
});

export const toUpstream = (r: Row): Upstream => ({
  id: String(r.id),
  baseUrl: String(r.base_url),
  apiKeyEnv: r.api_key_env == null ? null : String(r.api_key_env),
  timeoutMs: num(r.timeout_ms),
  createdAt: num(r.created_at),
});

export const upstreamRow = (u: Upstream): Tables["upstreams"] => ({
  id: u.id,
  base_url: u.baseUrl,
  api_key_env: u.apiKeyEnv,
  timeout_ms: u.timeoutMs,
  created_at: u.createdAt,
});

export const toPrice = (r: Row): PriceVersion => ({
  modelId: String(r.model_id),
  effectiveFrom: num(r.effective_from),
  unitPrice: fromPico(big(r.unit_price)),
  currency: String(r.currency),
  // priced per unit: the field stays absent
  ...(r.meters == null ? {} : { meters: meterPricesOf(String(r.meters)) }),
});

/** `{meter: pico text}` -> exact unit prices per meter. */
function meterPricesOf(text: string): MeterPrices {
  const out: MeterPrices = {};
  for (const [m, pico] of Object.entries(JSON.parse(text) as Record<string, string>)) {
    if (isMeter(m)) out[m] = fromPico(BigInt(pico));
  }
  return out;
}

function meterPricesText(prices: MeterPrices | null | undefined): string | null {
  if (!prices) return null;
  const out: Record<string, string> = {};
  for (const [m, price] of Object.entries(prices)) out[m] = toPico(price).toString();
  return JSON.stringify(out);
}

/** An event's meter lines as stored: integers as text, in the lines' order. */
function meterLinesText(lines: readonly MeterLine[] | null | undefined): string | null {
  if (!lines || lines.length === 0) return null;
  return JSON.stringify(
    lines.map((l) => {
      const { nano, atto } = splitCost(l.cost);
      return [
        l.meter,
        toMicro(l.quantity).toString(),
        toPico(l.unitPrice).toString(),
        nano.toString(),
        atto.toString(),
      ];
    }),
  );
}

function meterLinesOf(text: unknown): MeterLine[] | null {
  if (text === null || text === undefined) return null;
  return (JSON.parse(String(text)) as string[][]).map(([meter, q, price, nano, atto]) => ({
    meter: meter as Meter,
    quantity: fromMicro(BigInt(q)),
    unitPrice: fromPico(BigInt(price)),
    cost: joinCost(BigInt(nano), BigInt(atto)),
  }));
}

export const toLicense = (r: Row): License => ({
  id: String(r.id),
  accountId: String(r.account_id),
  modelId: String(r.model_id),
  startsAt: num(r.starts_at),
  endsAt: numOrNull(r.ends_at),
  createdAt: num(r.created_at),
});

export function toPlan(r: Row): Plan {
  const included = json<Record<string, string>>(r.included) ?? {};
  return {
    id: String(r.id),
    requestsPerMinute: numOrNull(r.requests_per_minute),
    requestsPerDay: numOrNull(r.requests_per_day),
    validityDays: num(r.validity_days),
    modelWhitelist: json<string[]>(r.model_whitelist),
    modelBlacklist: json<string[]>(r.model_blacklist),
    included: Object.fromEntries(Object.entries(included).map(([k, v]) => [k, BigInt(v)])),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    billing: (r.billing as string | null) ?? null,
  };
}

/** Entity -> row: the column values the shared statements write (int64 as bigint, booleans as 0/1). */
export const planRow = (p: Plan): Tables["plans"] => ({
  id: p.id,
  requests_per_minute: p.requestsPerMinute,
  requests_per_day: p.requestsPerDay,
  validity_days: p.validityDays,
  model_whitelist: p.modelWhitelist ? JSON.stringify(p.modelWhitelist) : null,
  model_blacklist: p.modelBlacklist ? JSON.stringify(p.modelBlacklist) : null,
  // atto units as decimal strings: exact, and JSON cannot hold a bigint
  included: JSON.stringify(Object.fromEntries(Object.entries(p.included).map(([k, v]) => [k, v.toString()]))),
  created_at: p.createdAt,
  updated_at: p.updatedAt,
  billing: p.billing ?? null,
});

export const accountRow = (a: Account): Tables["accounts"] => ({
  id: a.id,
  name: a.name,
  is_enabled: a.isEnabled ? 1 : 0,
  plan_id: a.planId,
  created_at: a.createdAt,
  billing_timezone: a.billingTimezone ?? "UTC",
  billing_mode: a.billingMode ?? "postpaid",
});

export const toInvoice = (r: Row): InvoiceRecord => ({
  id: String(r.id),
  accountId: String(r.account_id),
  period: String(r.period),
  periodStart: num(r.period_start),
  periodEnd: num(r.period_end),
  timezone: String(r.timezone),
  status: String(r.status) as InvoiceRecord["status"],
  number: (r.number as string | null) ?? null,
  currency: String(r.currency),
  document: String(r.document),
  pdf: Buffer.from(String(r.pdf), "base64"),
  coverage: String(r.coverage),
  issuedAt: num(r.issued_at),
});

export const invoiceRow = (i: InvoiceRecord): Tables["invoices"] => ({
  id: i.id,
  account_id: i.accountId,
  period: i.period,
  period_start: i.periodStart,
  period_end: i.periodEnd,
  timezone: i.timezone,
  status: i.status,
  number: i.number,
  currency: i.currency,
  document: i.document,
  pdf: i.pdf.toString("base64"),
  coverage: i.coverage,
  issued_at: i.issuedAt,
});

export const userRow = (u: User): Tables["users"] => ({
  id: u.id,
  account_id: u.accountId,
  username: u.username,
  role: u.role,
  node_id: u.nodeId,
  created_at: u.createdAt,
});

export const keyRow = (k: ApiKey): Tables["api_keys"] => ({
  id: k.id,
  user_id: k.userId,
  account_id: k.accountId,
  is_root: k.isRoot ? 1 : 0,
  label: k.label,
  prefix: k.prefix,
  hash: k.hash,
  created_at: k.createdAt,
  last_used_at: k.lastUsedAt,
  revoked_at: k.revokedAt,
  previous_hash: k.previousHash ?? null,
  previous_expires_at: k.previousExpiresAt ?? null,
});

export const modelRow = (m: Model): Tables["models"] => ({
  id: m.id,
  unit: m.unit,
  kind: m.kind,
  reporting_enabled: m.reportingEnabled ? 1 : 0,
  created_at: m.createdAt,
  updated_at: m.updatedAt,
  upstream_id: m.upstreamId ?? null,
  upstream_model: m.upstreamModel ?? null,
});

export const priceRow = (p: PriceVersion): Tables["model_prices"] => ({
  model_id: p.modelId,
  effective_from: p.effectiveFrom,
  unit_price: toPico(p.unitPrice),
  currency: p.currency,
  meters: meterPricesText(p.meters),
});

export const licenseRow = (l: License): Tables["licenses"] => ({
  id: l.id,
  account_id: l.accountId,
  model_id: l.modelId,
  starts_at: l.startsAt,
  ends_at: l.endsAt,
  created_at: l.createdAt,
});

export const subscriptionRow = (s: Subscription): Tables["subscriptions"] => ({
  id: s.id,
  account_id: s.accountId,
  plan_id: s.planId,
  activated_at: s.activatedAt,
  ends_at: s.endsAt ?? null,
  created_at: s.createdAt,
});

export function paymentRow(p: Payment): Tables["payments"] {
  const { nano, atto } = splitCost(p.amountUsd);
  return {
    id: p.id,
    account_id: p.accountId,
    amount_nano: nano,
    amount_atto: atto,
    paid_at: p.paidAt,
    reference: p.reference,
    created_at: p.createdAt,
    refund_of: p.refundOf ?? null,
  };
}

export const auditRow = (e: AuditEntry): Tables["audit_log"] => ({
  id: e.id,
  account_id: e.accountId,
  usage_id: e.usageId,
  action: e.action,
  actor_key_id: e.actorKeyId,
  actor_user_id: e.actorUserId,
  at: e.at,
  before: e.before ? JSON.stringify(e.before) : null,
  after: e.after ? JSON.stringify(e.after) : null,
  resource_type: e.resourceType ?? "usage_record",
  resource_id: e.resourceId ?? e.usageId,
});

/** A correction's new figures, as `correctEvent` writes them. */
export function correctedRow(e: UsageEvent) {
  const { nano, atto } = splitCost(e.cost);
  return {
    usage_id: e.usageId,
    quantity: toMicro(e.quantity),
    unit_price: toPico(e.unitPrice),
    cost_nano: nano,
    cost_atto: atto,
    status_active: e.statusActive ? 1 : 0,
    updated_at: e.updatedAt,
  };
}

export const toSubscription = (r: Row): Subscription => ({
  id: String(r.id),
  accountId: String(r.account_id),
  planId: String(r.plan_id),
  activatedAt: num(r.activated_at),
  endsAt: numOrNull(r.ends_at),
  createdAt: num(r.created_at),
});

export const toPayment = (r: Row): Payment => ({
  id: String(r.id),
  accountId: String(r.account_id),
  amountUsd: joinCost(big(r.amount_nano), big(r.amount_atto)),
  paidAt: num(r.paid_at),
  reference: (r.reference as string | null) ?? null,
  createdAt: num(r.created_at),
  refundOf: (r.refund_of as string | null) ?? null,
});

export const EVENT_COLUMNS = [
  "usage_id",
  "account_id",
  "event_id",
  "ts",
  "user_id",
  "key_id",
  "model_id",
  "api_name",
  "endpoint",
  "kind",
  "unit",
  "quantity",
  "unit_price",
  "cost_nano",
  "cost_atto",
  "currency",
  "tokens_prompt",
  "tokens_completion",
  "status_active",
  "metadata",
  "api_key_used",
  "created_at",
  "updated_at",
  "meters",
] as const;

/** An event's column values in EVENT_COLUMNS order (int64 as bigint, booleans as 0/1). */
export function eventValues(e: UsageEvent): unknown[] {
  const { nano, atto } = splitCost(e.cost);
  return [
    e.usageId,
    e.accountId,
    e.eventId,
    e.ts,
    e.userId,
    e.keyId,
    e.modelId,
    e.apiName,
    e.endpoint,
    e.kind,
    e.unit,
    toMicro(e.quantity),
    toPico(e.unitPrice),
    nano,
    atto,
    e.currency,
    e.tokensPrompt,
    e.tokensCompletion,
    e.statusActive ? 1 : 0,
    e.metadata ? JSON.stringify(e.metadata) : null,
    e.apiKeyUsed,
    e.createdAt,
    e.updatedAt,
    meterLinesText(e.meters),
  ];
}

export const toEvent = (r: Row): UsageEvent => ({
  usageId: String(r.usage_id),
  accountId: String(r.account_id),
  eventId: String(r.event_id),
  ts: num(r.ts),
  userId: (r.user_id as string | null) ?? null,
  keyId: (r.key_id as string | null) ?? null,
  modelId: String(r.model_id),
  apiName: (r.api_name as string | null) ?? null,
  endpoint: (r.endpoint as string | null) ?? null,
  kind: String(r.kind),
  unit: String(r.unit),
  quantity: fromMicro(big(r.quantity)),
  unitPrice: fromPico(big(r.unit_price)),
  cost: joinCost(big(r.cost_nano), big(r.cost_atto)),
  currency: String(r.currency),
  tokensPrompt: num(r.tokens_prompt),
  tokensCompletion: num(r.tokens_completion),
  statusActive: bool(r.status_active),
  metadata: json<Record<string, unknown>>(r.metadata),
  apiKeyUsed: (r.api_key_used as string | null) ?? null,
  createdAt: num(r.created_at),
  updatedAt: num(r.updated_at),
  // one unit: the field stays absent
  ...(r.meters == null ? {} : { meters: meterLinesOf(r.meters) }),
});

/** The event after a correction: one rule for both stores, applied to the row read under the write lock. */
export function patchedEvent(before: UsageEvent, patch: EventPatch, at: number): UsageEvent {
  const quantity = patch.quantity ?? before.quantity;
  const cost = patch.cost ?? before.cost;
  return {
    ...before,
    quantity,
    cost,
    unitPrice: patch.repriceFromCost
      ? unitPriceOfCost(cost, quantity)
      : (patch.unitPrice ?? before.unitPrice),
    statusActive: patch.statusActive ?? before.statusActive,
    updatedAt: at,
  };
}

/** An audit snapshot of an event: exact decimals as strings. */
export function eventSnapshot(e: UsageEvent): Record<string, unknown> {
  return {
    usage_id: e.usageId,
    event_id: e.eventId,
    model_id: e.modelId,
    timestamp: e.ts,
    quantity: formatDec(e.quantity),
    unit_price: formatDec(e.unitPrice),
    cost: formatDec(e.cost),
    status_active: e.statusActive,
  };
}

export const toAudit = (r: Row): AuditEntry => ({
  id: String(r.id),
  accountId: String(r.account_id),
  usageId: String(r.usage_id),
  action: r.action as AuditEntry["action"],
  actorKeyId: (r.actor_key_id as string | null) ?? null,
  actorUserId: (r.actor_user_id as string | null) ?? null,
  at: num(r.at),
  before: json<Record<string, unknown>>(r.before),
  after: json<Record<string, unknown>>(r.after),
  resourceType: String(r.resource_type ?? "usage_record"),
  resourceId: String(r.resource_id ?? r.usage_id),
});

/** `bucket`: when the row does not carry its bucket index itself. */
/** What names an aggregate line: everything but its bucket and sums. */
export type AggregateDims = Pick<
  AggregateRow,
  "modelId" | "unit" | "unitPrice" | "currency" | "kind" | "keyId" | "userId"
>;

export const toAggregateDims = (r: Row): AggregateDims => ({
  modelId: String(r.model_id),
  unit: String(r.unit),
  unitPrice: fromPico(big(r.unit_price)),
  currency: String(r.currency),
  kind: String(r.kind),
  keyId: String(r.key_id ?? ""),
  userId: String(r.user_id ?? ""),
});

/** An aggregate line from its dimensions and a row of sums. */
export const toAggregateSums = (d: AggregateDims, r: Row, bucket: number): AggregateRow => ({
  bucket,
  modelId: d.modelId,
  unit: d.unit,
  unitPrice: d.unitPrice,
  currency: d.currency,
  kind: d.kind,
  keyId: d.keyId,
  userId: d.userId,
  requests: num(r.requests),
  quantity: fromMicro(big(r.quantity)),
  cost: joinCost(big(r.cost_nano), big(r.cost_atto)),
  tokensPrompt: num(r.tokens_prompt),
  tokensCompletion: num(r.tokens_completion),
});

export const toAggregate = (r: Row, bucket?: number): AggregateRow =>
  toAggregateSums(toAggregateDims(r), r, bucket ?? num(r.bucket));

/**
 * A meter-priced event read raw (a query's sub-minute edge) as the lines its rollups hold: one per
 * meter, the request on the first (as rollupDeltas counts them). The row names model_id, kind,
 * currency, key_id, user_id (already '' in the account family) and meters.
 */
export function meteredAggregates(r: Row, bucket: number): AggregateRow[] {
  const lines = meterLinesOf(r.meters) ?? [];
  return lines.map((l, i) => {
    const t = meterTokens(l);
    return {
      bucket,
      modelId: String(r.model_id),
      unit: l.meter,
      unitPrice: l.unitPrice,
      currency: String(r.currency),
      kind: String(r.kind),
      keyId: String(r.key_id ?? ""),
      userId: String(r.user_id ?? ""),
      requests: i === 0 ? 1 : 0,
      quantity: l.quantity,
      cost: l.cost,
      tokensPrompt: t.prompt,
      tokensCompletion: t.completion,
    };
  });
}
