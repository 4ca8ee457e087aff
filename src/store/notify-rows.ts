import { formatDec, parseDec } from "../domain/decimal.ts";
import type {
  AlertFiringRecord,
  AlertRuleRecord,
  DeliveryAttemptRecord,
  NewOutboxMessage,
  OutboxMessageRecord,
  OutboxStatus,
  WebhookEndpointRecord,
} from "./notify-store.ts";
import type { Tables } from "./shared/tables.ts";

/** Row <-> record mapping of the notify tables (as rows.ts does for the rest). */
type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bool = (v: unknown): boolean => v === true || v === 1 || v === 1n || v === "1" || v === "t";

export const toEndpoint = (r: Row): WebhookEndpointRecord => ({
  id: String(r.id),
  accountId: textOrNull(r.account_id),
  url: String(r.url),
  events: JSON.parse(String(r.events)) as string[],
  secret: String(r.secret),
  previousSecret: textOrNull(r.previous_secret),
  previousSecretExpiresAt: numOrNull(r.previous_secret_expires_at),
  disabledAt: numOrNull(r.disabled_at),
  disabledReason: textOrNull(r.disabled_reason),
  failingSince: numOrNull(r.failing_since),
  createdAt: num(r.created_at),
});

export const endpointRow = (e: WebhookEndpointRecord): Tables["webhook_endpoints"] => ({
  id: e.id,
  account_id: e.accountId,
  url: e.url,
  events: JSON.stringify(e.events),
  secret: e.secret,
  previous_secret: e.previousSecret,
  previous_secret_expires_at: e.previousSecretExpiresAt,
  disabled_at: e.disabledAt,
  disabled_reason: e.disabledReason,
  failing_since: e.failingSince,
  created_at: e.createdAt,
});

export const messageRow = (m: NewOutboxMessage) => ({
  id: m.id,
  endpoint_id: m.endpointId,
  account_id: m.accountId,
  type: m.type,
  body: m.body,
  created_at: m.createdAt,
  status: "pending",
  next_attempt_at: m.createdAt,
});

export const toMessage = (r: Row): OutboxMessageRecord => ({
  id: String(r.id),
  endpointId: String(r.endpoint_id),
  accountId: textOrNull(r.account_id),
  type: String(r.type),
  body: String(r.body),
  createdAt: num(r.created_at),
  status: String(r.status) as OutboxStatus,
  nextAttemptAt: num(r.next_attempt_at),
  scheduleStep: num(r.schedule_step),
  attemptCount: num(r.attempt_count),
  lastAttemptAt: numOrNull(r.last_attempt_at),
  leaseToken: textOrNull(r.lease_token),
});

export const attemptRow = (a: DeliveryAttemptRecord): Omit<Tables["webhook_attempts"], "id"> => ({
  message_id: a.messageId,
  endpoint_id: a.endpointId,
  attempt_number: a.attemptNumber,
  attempted_at: a.attemptedAt,
  status_code: a.statusCode,
  latency_ms: a.latencyMs,
  response_excerpt: a.responseExcerpt,
  error: a.error,
  succeeded: a.succeeded ? 1 : 0,
});

export const toAttempt = (r: Row): DeliveryAttemptRecord => ({
  messageId: String(r.message_id),
  endpointId: String(r.endpoint_id),
  attemptNumber: num(r.attempt_number),
  attemptedAt: num(r.attempted_at),
  statusCode: numOrNull(r.status_code),
  latencyMs: num(r.latency_ms),
  responseExcerpt: String(r.response_excerpt),
  error: textOrNull(r.error),
  succeeded: bool(r.succeeded),
});

export const ruleRow = (r: AlertRuleRecord): Tables["alert_rules"] => ({
  id: r.id,
  account_id: r.accountId,
  metric: r.metric,
  model_id: r.modelId,
  period: r.period,
  thresholds: JSON.stringify(r.thresholds.map(formatDec)),
  basis: r.basis,
  value: r.value === null ? null : formatDec(r.value),
  created_at: r.createdAt,
});

export const toRule = (r: Row): AlertRuleRecord => ({
  id: String(r.id),
  accountId: String(r.account_id),
  metric: String(r.metric),
  modelId: textOrNull(r.model_id),
  period: String(r.period),
  thresholds: (JSON.parse(String(r.thresholds)) as string[]).map((t) => parseDec(t)),
  basis: String(r.basis),
  value: r.value === null || r.value === undefined ? null : parseDec(String(r.value)),
  createdAt: num(r.created_at),
});

export const firingRow = (f: AlertFiringRecord): Tables["alert_firings"] => ({
  rule_id: f.ruleId,
  period_start: f.periodStart,
  kind: f.kind,
  threshold: formatDec(f.threshold),
  fired_at: f.firedAt,
  value: formatDec(f.value),
  limit: formatDec(f.limit),
  forecast_at: f.forecastAt,
});

export const toFiring = (r: Row): AlertFiringRecord => ({
  ruleId: String(r.rule_id),
  periodStart: num(r.period_start),
  kind: String(r.kind) as AlertFiringRecord["kind"],
  threshold: parseDec(String(r.threshold)),
  firedAt: num(r.fired_at),
  value: parseDec(String(r.value)),
  limit: parseDec(String(r.limit)),
  forecastAt: numOrNull(r.forecast_at),
});
