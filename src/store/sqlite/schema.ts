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

/** SQLite's column types for the shared table definitions (shared/schema.ts). */
const TYPES: ColumnTypes = {
  int: "INTEGER",
  identity: "INTEGER PRIMARY KEY",
  wideRollups: " WITHOUT ROWID",
  narrowRollups: " WITHOUT ROWID",
  eventIndexes: `-- no index on (account_id, event_id): idempotency is decided by EventIdIndex (event-id-index.ts)
CREATE INDEX usage_events_account_ts ON usage_events(account_id, ts);
CREATE INDEX usage_events_user_ts ON usage_events(user_id, ts);`,
};

/** SQLite schema migrations, applied in order; `meta.schema_version` records the last one. */
export const SQLITE_MIGRATIONS: string[] = [
  coreTables(TYPES),
  // Rollup dimensions interned: each (account, family, model, unit, price, currency, kind, key, user)
  // is one rollup_series row, and usage_rollups keys its sums by that integer. A rollup row is then
  // a handful of integers, which makes the range scans of the read path about 3x cheaper than over
  // the wide text key (docs/decisions/0007).
  `ALTER TABLE usage_rollups RENAME TO usage_rollups_v1;
${seriesTables(TYPES)}
${fillSeriesFrom("usage_rollups_v1")}
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
  operatorApiTables(TYPES),
  // Billing: plan charges, invoices and their numbers (issue 16).
  billingTables(TYPES),
  // The gateway's upstreams and model routes (issue 15).
  gatewayTables(TYPES),
  // Webhooks, their outbox and delivery log; alert rules and firings (issue 17).
  notifyTables(TYPES),
  // Dashboard sessions and one-time portal links (issue 18).
  sessionTables(TYPES),
  // Meter prices on price versions, meter lines on events (issue 15).
  meterColumns(),
];
