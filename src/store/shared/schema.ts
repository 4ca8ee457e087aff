/**
 * The table definitions both dialects share, written once: each dialect's schema.ts composes its
 * migrations from these with its own column types (SQLite INTEGER, PostgreSQL BIGINT; both int64).
 * Money columns are fixed-scale int64 (see domain/decimal.ts), instants are epoch milliseconds.
 * A migration already applied is never changed: a new table is a new migration here.
 */
export interface ColumnTypes {
  /** an int64 column */
  int: string;
  /** an int64 primary key that the database numbers */
  identity: string;
  /** what follows the wide (first) usage_rollups table's definition */
  wideRollups: string;
  /** what follows the narrow (series-keyed) usage_rollups table's definition */
  narrowRollups: string;
  /** usage_events' other indexes: the dialects decide idempotency differently (event-id-index.ts on SQLite) */
  eventIndexes: string;
}

/** The first schema: every table as first released, with the wide usage_rollups key. */
export const coreTables = (t: ColumnTypes): string => `
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  is_enabled ${t.int} NOT NULL DEFAULT 1,
  plan_id TEXT,
  created_at ${t.int} NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  username TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  node_id TEXT,
  created_at ${t.int} NOT NULL,
  UNIQUE (account_id, username)
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT REFERENCES users(id),
  account_id TEXT REFERENCES accounts(id),
  is_root ${t.int} NOT NULL DEFAULT 0,
  label TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at ${t.int} NOT NULL,
  last_used_at ${t.int},
  revoked_at ${t.int}
);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  unit TEXT NOT NULL,
  kind TEXT NOT NULL,
  reporting_enabled ${t.int} NOT NULL,
  created_at ${t.int} NOT NULL,
  updated_at ${t.int} NOT NULL
);
CREATE TABLE model_prices (
  model_id TEXT NOT NULL REFERENCES models(id),
  effective_from ${t.int} NOT NULL,
  unit_price ${t.int} NOT NULL,
  currency TEXT NOT NULL,
  PRIMARY KEY (model_id, effective_from)
);
CREATE TABLE licenses (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  model_id TEXT NOT NULL REFERENCES models(id),
  starts_at ${t.int} NOT NULL,
  ends_at ${t.int},
  created_at ${t.int} NOT NULL
);
CREATE INDEX licenses_account_model ON licenses(account_id, model_id);
CREATE TABLE plans (
  id TEXT PRIMARY KEY,
  requests_per_minute ${t.int},
  requests_per_day ${t.int},
  validity_days ${t.int} NOT NULL,
  model_whitelist TEXT,
  model_blacklist TEXT,
  included TEXT NOT NULL DEFAULT '{}',
  created_at ${t.int} NOT NULL,
  updated_at ${t.int} NOT NULL
);
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  plan_id TEXT NOT NULL REFERENCES plans(id),
  activated_at ${t.int} NOT NULL,
  created_at ${t.int} NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions(account_id, activated_at);
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  amount_nano ${t.int} NOT NULL,
  amount_atto ${t.int} NOT NULL,
  paid_at ${t.int} NOT NULL,
  reference TEXT,
  created_at ${t.int} NOT NULL
);
CREATE INDEX payments_account ON payments(account_id, paid_at);
CREATE TABLE usage_events (
  seq ${t.identity},
  usage_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  ts ${t.int} NOT NULL,
  user_id TEXT,
  key_id TEXT,
  model_id TEXT NOT NULL,
  api_name TEXT,
  endpoint TEXT,
  kind TEXT NOT NULL,
  unit TEXT NOT NULL,
  quantity ${t.int} NOT NULL,
  unit_price ${t.int} NOT NULL,
  cost_nano ${t.int} NOT NULL,
  cost_atto ${t.int} NOT NULL,
  currency TEXT NOT NULL,
  tokens_prompt ${t.int} NOT NULL DEFAULT 0,
  tokens_completion ${t.int} NOT NULL DEFAULT 0,
  status_active ${t.int} NOT NULL DEFAULT 1,
  metadata TEXT,
  api_key_used TEXT,
  created_at ${t.int} NOT NULL,
  updated_at ${t.int} NOT NULL,
  deleted_at ${t.int}
);
CREATE UNIQUE INDEX usage_events_usage_id ON usage_events(usage_id);
${t.eventIndexes}
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family ${t.int} NOT NULL,
  level ${t.int} NOT NULL,
  bucket_start ${t.int} NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price ${t.int} NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  requests ${t.int} NOT NULL,
  quantity ${t.int} NOT NULL,
  cost_nano ${t.int} NOT NULL,
  cost_atto ${t.int} NOT NULL,
  tokens_prompt ${t.int} NOT NULL,
  tokens_completion ${t.int} NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, model_id, unit, unit_price, currency, kind, key_id, user_id)
)${t.wideRollups};
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  usage_id TEXT NOT NULL,
  action TEXT NOT NULL,
  actor_key_id TEXT,
  actor_user_id TEXT,
  at ${t.int} NOT NULL,
  before TEXT,
  after TEXT
);
CREATE INDEX audit_log_account ON audit_log(account_id, at);
CREATE INDEX audit_log_usage ON audit_log(usage_id);
`;

/** Rollup dimensions interned (docs/decisions/0007): rollup_series and the narrow usage_rollups. */
export const seriesTables = (t: ColumnTypes): string => `
CREATE TABLE rollup_series (
  id ${t.identity},
  account_id TEXT NOT NULL,
  family ${t.int} NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price ${t.int} NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  UNIQUE (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
);
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family ${t.int} NOT NULL,
  level ${t.int} NOT NULL,
  bucket_start ${t.int} NOT NULL,
  series_id ${t.int} NOT NULL,
  requests ${t.int} NOT NULL,
  quantity ${t.int} NOT NULL,
  cost_nano ${t.int} NOT NULL,
  cost_atto ${t.int} NOT NULL,
  tokens_prompt ${t.int} NOT NULL,
  tokens_completion ${t.int} NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, series_id)
)${t.narrowRollups};
`;

/** Fills rollup_series and the new usage_rollups from the wide table `wide`, renamed aside. */
export const fillSeriesFrom = (wide: string): string => `
INSERT INTO rollup_series (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
  SELECT DISTINCT account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id FROM ${wide};
INSERT INTO usage_rollups
  SELECT r.account_id, r.family, r.level, r.bucket_start, s.id, r.requests, r.quantity, r.cost_nano, r.cost_atto,
    r.tokens_prompt, r.tokens_completion
  FROM ${wide} r JOIN rollup_series s USING (account_id, family, model_id, unit, unit_price, currency, kind,
    key_id, user_id);
`;

/**
 * The operator API (issue 13): accounts that can be disabled and billed in a zone, keys rotated
 * with a grace for the previous secret, subscriptions that end, refunds that point at their
 * payment, audit entries about any resource, and (created_at, id) indexes that make every list a
 * range scan in creation order.
 */
export const operatorApiTables = (t: ColumnTypes): string => `
ALTER TABLE accounts ADD COLUMN billing_timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE accounts ADD COLUMN billing_mode TEXT NOT NULL DEFAULT 'postpaid';
ALTER TABLE api_keys ADD COLUMN previous_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_expires_at ${t.int};
ALTER TABLE subscriptions ADD COLUMN ends_at ${t.int};
ALTER TABLE payments ADD COLUMN refund_of TEXT;
ALTER TABLE audit_log ADD COLUMN resource_type TEXT NOT NULL DEFAULT 'usage_record';
ALTER TABLE audit_log ADD COLUMN resource_id TEXT;
UPDATE audit_log SET resource_id = usage_id;
CREATE INDEX api_keys_previous_hash ON api_keys(previous_hash);
CREATE INDEX accounts_created ON accounts(created_at, id);
CREATE INDEX users_account_created ON users(account_id, created_at, id);
CREATE INDEX api_keys_user_created ON api_keys(user_id, created_at, id);
CREATE INDEX api_keys_account_created ON api_keys(account_id, created_at, id);
CREATE INDEX plans_created ON plans(created_at, id);
CREATE INDEX licenses_account_created ON licenses(account_id, created_at, id);
CREATE INDEX licenses_model_created ON licenses(account_id, model_id, created_at, id);
CREATE INDEX subscriptions_account_created ON subscriptions(account_id, created_at, id);
CREATE INDEX payments_account_created ON payments(account_id, created_at, id);
CREATE INDEX audit_log_resource ON audit_log(resource_type, resource_id, at);
`;

/**
 * Billing (issue 16): plan charges as a column (account billing zones came with the operator API); invoices, finalized once
 * and never changed but for `status` (void), and the per-year counter of their numbers. The number
 * is taken in the invoice's own transaction (UNIQUE number, UNIQUE (account_id, period)), so two
 * instances closing at once make one invoice and consume one number. The PDF is base64 text.
 */
export const billingTables = (t: ColumnTypes): string => `
ALTER TABLE plans ADD COLUMN billing TEXT;
CREATE TABLE invoices (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  period TEXT NOT NULL,
  period_start ${t.int} NOT NULL,
  period_end ${t.int} NOT NULL,
  timezone TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('finalized', 'no_charge', 'void')),
  number TEXT UNIQUE,
  currency TEXT NOT NULL,
  document TEXT NOT NULL,
  pdf TEXT NOT NULL,
  coverage TEXT NOT NULL,
  issued_at ${t.int} NOT NULL,
  UNIQUE (account_id, period)
);
CREATE TABLE invoice_numbers (
  year ${t.int} PRIMARY KEY,
  last ${t.int} NOT NULL
);
`;

/**
 * The gateway (issue 15): upstreams, and the route of a model to one of them (an upstream's secret
 * is never stored, only the name of the environment variable that holds it); an account's monthly
 * budget (null: none); its billing mode came with the operator API.
 */
export const gatewayTables = (t: ColumnTypes): string => `
CREATE TABLE upstreams (
  id TEXT PRIMARY KEY,
  base_url TEXT NOT NULL,
  api_key_env TEXT,
  timeout_ms ${t.int} NOT NULL,
  created_at ${t.int} NOT NULL
);
ALTER TABLE models ADD COLUMN upstream_id TEXT;
ALTER TABLE models ADD COLUMN upstream_model TEXT;
ALTER TABLE accounts ADD COLUMN budget_nano ${t.int};
ALTER TABLE accounts ADD COLUMN budget_atto ${t.int};
ALTER TABLE accounts ADD COLUMN budget_mode TEXT;
`;

/**
 * Webhooks and alerts (issue 17, docs/decisions/0014): endpoints with their sealed signing
 * secrets, the outbox (one row per message per endpoint, written in the transaction of its
 * cause), the delivery log, alert rules and their firings. A firing's primary key is what makes a
 * threshold fire once per period across instances.
 */
export const notifyTables = (t: ColumnTypes): string => `
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  account_id TEXT REFERENCES accounts(id),
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_expires_at ${t.int},
  disabled_at ${t.int},
  disabled_reason TEXT,
  failing_since ${t.int},
  created_at ${t.int} NOT NULL
);
CREATE INDEX webhook_endpoints_account_created ON webhook_endpoints(account_id, created_at, id);
CREATE TABLE webhook_messages (
  id TEXT PRIMARY KEY,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  account_id TEXT,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at ${t.int} NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  next_attempt_at ${t.int} NOT NULL,
  schedule_step ${t.int} NOT NULL DEFAULT 0,
  attempt_count ${t.int} NOT NULL DEFAULT 0,
  lease_token TEXT,
  lease_until ${t.int},
  last_attempt_at ${t.int}
);
CREATE INDEX webhook_messages_due ON webhook_messages(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint ON webhook_messages(endpoint_id, created_at, id);
CREATE TABLE webhook_attempts (
  id ${t.identity},
  message_id TEXT NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
  endpoint_id TEXT NOT NULL,
  attempt_number ${t.int} NOT NULL,
  attempted_at ${t.int} NOT NULL,
  status_code ${t.int},
  latency_ms ${t.int} NOT NULL,
  response_excerpt TEXT NOT NULL,
  error TEXT,
  succeeded ${t.int} NOT NULL
);
CREATE INDEX webhook_attempts_message ON webhook_attempts(message_id, attempt_number);
CREATE TABLE alert_rules (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  metric TEXT NOT NULL,
  model_id TEXT,
  period TEXT NOT NULL,
  thresholds TEXT NOT NULL,
  basis TEXT NOT NULL,
  value TEXT,
  created_at ${t.int} NOT NULL
);
CREATE INDEX alert_rules_account_created ON alert_rules(account_id, created_at, id);
CREATE TABLE alert_firings (
  rule_id TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
  period_start ${t.int} NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('crossed', 'forecast')),
  threshold TEXT NOT NULL,
  fired_at ${t.int} NOT NULL,
  value TEXT NOT NULL,
  "limit" TEXT NOT NULL,
  forecast_at ${t.int},
  PRIMARY KEY (rule_id, period_start, kind, threshold)
);
`;

/**
 * Dashboard sessions (issue 18, docs/decisions/0017): only the SHA-256 of a session's cookie token
 * is stored, so sessions survive restarts and span instances without the table holding a usable
 * secret. A session opened with a key names it (re-checked on every request); a portal session
 * names its account and user instead. Portal links are one-time: consumed by the first visit.
 */
export const sessionTables = (t: ColumnTypes): string => `
CREATE TABLE dashboard_sessions (
  token_hash TEXT PRIMARY KEY,
  key_id TEXT,
  is_root ${t.int} NOT NULL,
  account_id TEXT,
  user_id TEXT,
  created_at ${t.int} NOT NULL,
  expires_at ${t.int} NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions(expires_at);
CREATE TABLE portal_links (
  link_hash TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  user_id TEXT,
  session_ttl_ms ${t.int} NOT NULL,
  created_at ${t.int} NOT NULL,
  expires_at ${t.int} NOT NULL,
  used_at ${t.int}
);
`;

/**
 * Meters (issue 15, DESIGN.md "Meters"): a price version may price a model per meter (`meters`:
 * JSON `{meter: unit price in pico units as text}`), and an event of such a model carries its
 * meter lines (`meters`: JSON `[[meter, quantity micro, unit price pico, cost nano, cost atto], ...]`,
 * all integers as text). The event row keeps the request's totals; rollups hold one line per meter.
 */
export const meterColumns = (): string => `
ALTER TABLE model_prices ADD COLUMN meters TEXT;
ALTER TABLE usage_events ADD COLUMN meters TEXT;
`;
