/**
 * PostgreSQL schema migrations (the SQLite schema with PostgreSQL types), applied in order; `meta.schema_version` records the last one.
 * Money columns are fixed-scale int64 (see domain/decimal.ts), instants are epoch milliseconds.
 */
export const POSTGRES_MIGRATIONS: string[] = [
  `
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  is_enabled BIGINT NOT NULL DEFAULT 1,
  plan_id TEXT,
  created_at BIGINT NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  username TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  node_id TEXT,
  created_at BIGINT NOT NULL,
  UNIQUE (account_id, username)
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT REFERENCES users(id),
  account_id TEXT REFERENCES accounts(id),
  is_root BIGINT NOT NULL DEFAULT 0,
  label TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT,
  revoked_at BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  unit TEXT NOT NULL,
  kind TEXT NOT NULL,
  reporting_enabled BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE model_prices (
  model_id TEXT NOT NULL REFERENCES models(id),
  effective_from BIGINT NOT NULL,
  unit_price BIGINT NOT NULL,
  currency TEXT NOT NULL,
  PRIMARY KEY (model_id, effective_from)
);
CREATE TABLE licenses (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  model_id TEXT NOT NULL REFERENCES models(id),
  starts_at BIGINT NOT NULL,
  ends_at BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX licenses_account_model ON licenses(account_id, model_id);
CREATE TABLE plans (
  id TEXT PRIMARY KEY,
  requests_per_minute BIGINT,
  requests_per_day BIGINT,
  validity_days BIGINT NOT NULL,
  model_whitelist TEXT,
  model_blacklist TEXT,
  included TEXT NOT NULL DEFAULT '{}',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  plan_id TEXT NOT NULL REFERENCES plans(id),
  activated_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions(account_id, activated_at);
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  amount_nano BIGINT NOT NULL,
  amount_atto BIGINT NOT NULL,
  paid_at BIGINT NOT NULL,
  reference TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX payments_account ON payments(account_id, paid_at);
CREATE TABLE usage_events (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  usage_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  ts BIGINT NOT NULL,
  user_id TEXT,
  key_id TEXT,
  model_id TEXT NOT NULL,
  api_name TEXT,
  endpoint TEXT,
  kind TEXT NOT NULL,
  unit TEXT NOT NULL,
  quantity BIGINT NOT NULL,
  unit_price BIGINT NOT NULL,
  cost_nano BIGINT NOT NULL,
  cost_atto BIGINT NOT NULL,
  currency TEXT NOT NULL,
  tokens_prompt BIGINT NOT NULL DEFAULT 0,
  tokens_completion BIGINT NOT NULL DEFAULT 0,
  status_active BIGINT NOT NULL DEFAULT 1,
  metadata TEXT,
  api_key_used TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deleted_at BIGINT
);
CREATE UNIQUE INDEX usage_events_idempotency ON usage_events(account_id, event_id);
CREATE UNIQUE INDEX usage_events_usage_id ON usage_events(usage_id);
CREATE INDEX usage_events_account_ts ON usage_events(account_id, ts, seq);
CREATE INDEX usage_events_user_ts ON usage_events(user_id, ts, seq);
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family BIGINT NOT NULL,
  level BIGINT NOT NULL,
  bucket_start BIGINT NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price BIGINT NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  requests BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  cost_nano BIGINT NOT NULL,
  cost_atto BIGINT NOT NULL,
  tokens_prompt BIGINT NOT NULL,
  tokens_completion BIGINT NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, model_id, unit, unit_price, currency, kind, key_id, user_id)
);
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  usage_id TEXT NOT NULL,
  action TEXT NOT NULL,
  actor_key_id TEXT,
  actor_user_id TEXT,
  at BIGINT NOT NULL,
  before TEXT,
  after TEXT
);
CREATE INDEX audit_log_account ON audit_log(account_id, at);
CREATE INDEX audit_log_usage ON audit_log(usage_id);
`,
  // Four-hour rollups (level 4), filled from the hour level: a day in a zone with a whole-hour
  // offset then reads 5 rows per series instead of 11 (docs/decisions/0009).
  `
INSERT INTO usage_rollups (account_id, family, level, bucket_start, model_id, unit, unit_price, currency, kind, key_id,
  user_id, requests, quantity, cost_nano, cost_atto, tokens_prompt, tokens_completion)
  SELECT account_id, family, 4, bucket_start - (((bucket_start % 14400000) + 14400000) % 14400000) AS b, model_id,
    unit, unit_price, currency, kind, key_id, user_id, SUM(requests), SUM(quantity), SUM(cost_nano), SUM(cost_atto),
    SUM(tokens_prompt), SUM(tokens_completion)
  FROM usage_rollups WHERE level = 2
  GROUP BY account_id, family, b, model_id, unit, unit_price, currency, kind, key_id, user_id;
`,
  // Every committed change to the tables that requests read on every call (accounts, users,
  // keys, plans, licenses) notifies channel tally_reference with the schema's name, so each
  // instance can remember those rows and forget them when another instance changes one. A key's last use is not a change
  // that matters to them, and moves every second, so it does not notify.
  `
CREATE OR REPLACE FUNCTION tally_reference_changed() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_notify('tally_reference', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$f$;
CREATE OR REPLACE TRIGGER accounts_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
CREATE OR REPLACE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
CREATE OR REPLACE TRIGGER plans_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
CREATE OR REPLACE TRIGGER licenses_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON licenses
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
CREATE OR REPLACE TRIGGER api_keys_notify
  AFTER INSERT OR DELETE OR TRUNCATE
    OR UPDATE OF id, user_id, account_id, is_root, label, prefix, hash, created_at, revoked_at ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
`,
  // Rollup rows are updated in place by every append (ON CONFLICT DO UPDATE). With free room in
  // each page, PostgreSQL writes the new row version beside the old one (a HOT update) and adds
  // no index entry for it; full pages (the default fillfactor, 100) send every update elsewhere
  // with a new entry in the 11-column primary key. Measured on batch ingest: 48.4k -> 49.8k
  // events/s (two alternating runs each), a small gain.
  `ALTER TABLE usage_rollups SET (fillfactor = 70);`,
  // Rollup dimensions interned, as on SQLite (docs/decisions/0007): each (account, family, model,
  // unit, price, currency, kind, key, user) is one rollup_series row, and usage_rollups keys its
  // sums by (account, family, level, bucket, series id). Every append upserts its rollup rows;
  // on the wide 11-column key that was most of PostgreSQL's work per batch.
  `
CREATE TABLE rollup_series (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id TEXT NOT NULL,
  family BIGINT NOT NULL,
  model_id TEXT NOT NULL,
  unit TEXT NOT NULL,
  unit_price BIGINT NOT NULL,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  UNIQUE (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
);
INSERT INTO rollup_series (account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id)
  SELECT DISTINCT account_id, family, model_id, unit, unit_price, currency, kind, key_id, user_id FROM usage_rollups;
ALTER TABLE usage_rollups RENAME TO usage_rollups_wide;
ALTER TABLE usage_rollups_wide RENAME CONSTRAINT usage_rollups_pkey TO usage_rollups_wide_pkey;
CREATE TABLE usage_rollups (
  account_id TEXT NOT NULL,
  family BIGINT NOT NULL,
  level BIGINT NOT NULL,
  bucket_start BIGINT NOT NULL,
  series_id BIGINT NOT NULL,
  requests BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  cost_nano BIGINT NOT NULL,
  cost_atto BIGINT NOT NULL,
  tokens_prompt BIGINT NOT NULL,
  tokens_completion BIGINT NOT NULL,
  PRIMARY KEY (account_id, family, level, bucket_start, series_id)
) WITH (fillfactor = 70);
INSERT INTO usage_rollups
  SELECT r.account_id, r.family, r.level, r.bucket_start, s.id, r.requests, r.quantity, r.cost_nano, r.cost_atto,
    r.tokens_prompt, r.tokens_completion
  FROM usage_rollups_wide r JOIN rollup_series s USING (account_id, family, model_id, unit, unit_price, currency, kind,
    key_id, user_id);
DROP TABLE usage_rollups_wide;
`,
];
