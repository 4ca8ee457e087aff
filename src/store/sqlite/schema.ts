/**
 * SQLite schema migrations, applied in order; `meta.schema_version` records the last one.
 * Money columns are fixed-scale int64 (see domain/decimal.ts), instants are epoch milliseconds.
 */
export const SQLITE_MIGRATIONS: string[] = [
  `
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  is_enabled INTEGER NOT NULL DEFAULT 1,
  plan_id TEXT,
  created_at INTEGER NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  username TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  node_id TEXT,
  created_at INTEGER NOT NULL,
  UNIQUE (account_id, username)
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT REFERENCES users(id),
  account_id TEXT REFERENCES accounts(id),
  is_root INTEGER NOT NULL DEFAULT 0,
  label TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  unit TEXT NOT NULL,
  kind TEXT NOT NULL,
  reporting_enabled INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE model_prices (
  model_id TEXT NOT NULL REFERENCES models(id),
  effective_from INTEGER NOT NULL,
  unit_price INTEGER NOT NULL,
  currency TEXT NOT NULL,
  PRIMARY KEY (model_id, effective_from)
);
CREATE TABLE licenses (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  model_id TEXT NOT NULL REFERENCES models(id),
  starts_at INTEGER NOT NULL,
  ends_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX licenses_account_model ON licenses(account_id, model_id);
CREATE TABLE plans (
  id TEXT PRIMARY KEY,
  requests_per_minute INTEGER,
  requests_per_day INTEGER,
  validity_days INTEGER NOT NULL,
  model_whitelist TEXT,
  model_blacklist TEXT,
  included TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  plan_id TEXT NOT NULL REFERENCES plans(id),
  activated_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions(account_id, activated_at);
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  amount_nano INTEGER NOT NULL,
  amount_atto INTEGER NOT NULL,
  paid_at INTEGER NOT NULL,
  reference TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX payments_account ON payments(account_id, paid_at);
CREATE TABLE usage_events (
  seq INTEGER PRIMARY KEY,
  usage_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  user_id TEXT,
  key_id TEXT,
  model_id TEXT NOT NULL,
  api_name TEXT,
  endpoint TEXT,
  kind TEXT NOT NULL,
  unit TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  unit_price INTEGER NOT NULL,
  cost_nano INTEGER NOT NULL,
  cost_atto INTEGER NOT NULL,
  currency TEXT NOT NULL,
  tokens_prompt INTEGER NOT NULL DEFAULT 0,
  tokens_completion INTEGER NOT NULL DEFAULT 0,
  status_active INTEGER NOT NULL DEFAULT 1,
  metadata TEXT,
  api_key_used TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);
-- no index on (account_id, event_id): idempotency is decided by EventIdIndex (event-id-index.ts)
CREATE UNIQUE INDEX usage_events_usage_id ON usage_events(usage_id);
CREATE INDEX usage_events_account_ts ON usage_events(account_id, ts);
CREATE INDEX usage_events_user_ts ON usage_events(user_id, ts);
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family INTEGER NOT NULL,
  level INTEGER NOT NULL,
  bucket_start INTEGER NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price INTEGER NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  requests INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  cost_nano INTEGER NOT NULL,
  cost_atto INTEGER NOT NULL,
  tokens_prompt INTEGER NOT NULL,
  tokens_completion INTEGER NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, model_id, unit, unit_price, currency, kind, key_id, user_id)
) WITHOUT ROWID;
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  usage_id TEXT NOT NULL,
  action TEXT NOT NULL,
  actor_key_id TEXT,
  actor_user_id TEXT,
  at INTEGER NOT NULL,
  before TEXT,
  after TEXT
);
CREATE INDEX audit_log_account ON audit_log(account_id, at);
CREATE INDEX audit_log_usage ON audit_log(usage_id);
`,
  // Rollup dimensions interned: each (account, family, model, unit, price, currency, kind, key, user)
  // is one rollup_series row, and usage_rollups keys its sums by that integer. A rollup row is then
  // a handful of integers, which makes the range scans of the read path about 3x cheaper than over
  // the wide text key (docs/decisions/0007).
  `
ALTER TABLE usage_rollups RENAME TO usage_rollups_v1;
CREATE TABLE rollup_series (
  id INTEGER PRIMARY KEY,
  account_id TEXT NOT NULL,
  family INTEGER NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price INTEGER NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  UNIQUE (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
);
INSERT INTO rollup_series (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
  SELECT DISTINCT account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id FROM usage_rollups_v1;
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family INTEGER NOT NULL,
  level INTEGER NOT NULL,
  bucket_start INTEGER NOT NULL,
  series_id INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  cost_nano INTEGER NOT NULL,
  cost_atto INTEGER NOT NULL,
  tokens_prompt INTEGER NOT NULL,
  tokens_completion INTEGER NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, series_id)
) WITHOUT ROWID;
INSERT INTO usage_rollups
  SELECT r.account_id, r.family, r.level, r.bucket_start, s.id, r.requests, r.quantity, r.cost_nano, r.cost_atto,
    r.tokens_prompt, r.tokens_completion
  FROM usage_rollups_v1 r JOIN rollup_series s USING (account_id, family, model_id, unit, unit_price, currency, kind,
    key_id, user_id);
DROP TABLE usage_rollups_v1;
`,
  // Four-hour rollups (level 4), filled from the hour level: a day in a zone with a whole-hour
  // offset then reads 5 rows per series instead of 11 (docs/decisions/0009).
  `
INSERT INTO usage_rollups (account_id, family, level, bucket_start, series_id, requests, quantity, cost_nano, cost_atto,
  tokens_prompt, tokens_completion)
  SELECT account_id, family, 4, bucket_start - (((bucket_start % 14400000) + 14400000) % 14400000) AS b, series_id,
    SUM(requests), SUM(quantity), SUM(cost_nano), SUM(cost_atto), SUM(tokens_prompt), SUM(tokens_completion)
  FROM usage_rollups WHERE level = 2
  GROUP BY account_id, family, b, series_id;
`,
];
