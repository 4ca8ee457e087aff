import {
  billingTables,
  type ColumnTypes,
  coreTables,
  fillSeriesFrom,
  gatewayTables,
  meterColumns,
  notifyTables,
  operatorApiTables,
  seriesTables,
  sessionTables,
} from "../shared/schema.ts";
import { partitionEvents } from "./partitions.ts";

/** PostgreSQL's column types for the shared table definitions (shared/schema.ts). */
const TYPES: ColumnTypes = {
  int: "BIGINT",
  identity: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
  wideRollups: "",
  narrowRollups: " WITH (fillfactor = 70)",
  eventIndexes: `CREATE UNIQUE INDEX usage_events_idempotency ON usage_events(account_id, event_id);
CREATE INDEX usage_events_account_ts ON usage_events(account_id, ts, seq);
CREATE INDEX usage_events_user_ts ON usage_events(user_id, ts, seq);`,
};

/** PostgreSQL schema migrations, applied in order; `meta.schema_version` records the last one. */
export const POSTGRES_MIGRATIONS: string[] = [
  coreTables(TYPES),
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
ALTER TABLE usage_rollups RENAME TO usage_rollups_wide;
ALTER TABLE usage_rollups_wide RENAME CONSTRAINT usage_rollups_pkey TO usage_rollups_wide_pkey;
${seriesTables(TYPES)}
${fillSeriesFrom("usage_rollups_wide")}
DROP TABLE usage_rollups_wide;
`,
  operatorApiTables(TYPES),
  // Billing: plan charges, invoices and their numbers (issue 16).
  billingTables(TYPES),
  // The gateway's upstreams and model routes (issue 15).
  gatewayTables(TYPES),
  // Webhooks, their outbox and delivery log; alert rules and firings (issue 17).
  notifyTables(TYPES),
  // Dashboard sessions and one-time portal links (issue 18).
  sessionTables(TYPES),
  // Subscriptions became reference rows: the plan in force is read from them on every limit
  // check and remembered, so a change to one (an end set by PATCH) notifies like the others.
  `
CREATE OR REPLACE TRIGGER subscriptions_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
  FOR EACH STATEMENT EXECUTE FUNCTION tally_reference_changed();
`,
  // Meter prices on price versions, meter lines on events (issue 15).
  meterColumns(),
  // usage_events partitioned by UTC month, idempotency in event_ids (docs/decisions/0020).
  partitionEvents(),
];
