import { SERIES_COLUMNS } from "../rollup-delta.ts";
import type { TransferRow } from "../transfer-store.ts";
import { type Query, query, sql } from "./sql.ts";
import type { Tables } from "./tables.ts";
import { expectedRollups } from "./verify.ts";

/**
 * `tally export` / `tally import` (DESIGN.md "Operations"): every table that holds a fact, read in
 * pages in a stable order, and written back into an empty store of either dialect. Rollups are not
 * moved: they are recomputed from the events on import (the dialects key them the same way, but a
 * recount is also the proof that nothing was lost). Sessions and portal links are not moved either:
 * they are short-lived secrets of one installation.
 */

type Table = keyof Tables;

/** The tables moved, parents before children, each with the unique column its pages walk. */
export const TRANSFER_TABLES: readonly { table: Table; key: string; identity?: string }[] = [
  { table: "accounts", key: "id" },
  { table: "users", key: "id" },
  { table: "api_keys", key: "id" },
  { table: "models", key: "id" },
  { table: "model_prices", key: "model_id || ':' || effective_from" },
  { table: "plans", key: "id" },
  { table: "licenses", key: "id" },
  { table: "subscriptions", key: "id" },
  { table: "payments", key: "id" },
  { table: "upstreams", key: "id" },
  // events keep their order (seq) but get new numbers from the target's own identity
  { table: "usage_events", key: "seq", identity: "seq" },
  { table: "audit_log", key: "id" },
  { table: "invoice_numbers", key: "year" },
  { table: "invoices", key: "id" },
  { table: "webhook_endpoints", key: "id" },
  { table: "webhook_messages", key: "id" },
  { table: "webhook_attempts", key: "id", identity: "id" },
  { table: "alert_rules", key: "id" },
  { table: "alert_firings", key: "rule_id || ':' || period_start || ':' || kind || ':' || threshold" },
];

/** The moved table of this name, with how its page key reads off a row. */
export function transferTable(name: string) {
  const t = TRANSFER_TABLES.find((x) => x.table === name);
  if (!t) throw new Error(`not a table that is exported: ${name}`);
  const parts = t.key.split(" || ':' || ");
  return { ...t, keyOf: (row: TransferRow) => parts.map((c) => String(row[c])).join(":") };
}

/** A row as exported: int64 values (bigint from SQLite, text from pg) as decimal text, exactly. */
export function transferRow(r: Record<string, unknown>): TransferRow {
  const out: TransferRow = {};
  for (const [k, v] of Object.entries(r)) {
    out[k] =
      v === null || v === undefined ? null : typeof v === "bigint" ? v.toString() : (v as string | number);
  }
  return out;
}

const pages = new Map<string, Query<{ after: string; limit: number }>>();

/** A page of `table` in key order: after `after`, or from the start when it is null. */
export function pageOfTable(
  table: Table,
  key: string,
  after: string | null,
): Query<{ after: string; limit: number }> {
  const id = `${table}:${after === null ? "first" : "next"}`;
  let q = pages.get(id);
  if (!q) {
    q = query((db, p: { after: string; limit: number }) =>
      db
        .selectFrom(table)
        .selectAll()
        .$if(after !== null, (w) => w.where(sql<boolean>`${sql.raw(key)} > ${p.after}`))
        .orderBy(sql.raw(key))
        .limit(p.limit),
    );
    pages.set(id, q);
  }
  return q;
}

const inserts = new Map<string, Query<Record<string, unknown>>>();

/** The INSERT of one row of `table` with exactly these columns. */
export function insertInto(table: Table, columns: readonly string[]): Query<Record<string, unknown>> {
  const id = `${table}(${columns.join(",")})`;
  let q = inserts.get(id);
  if (!q) {
    q = query((db, p: Record<string, unknown>) =>
      db.insertInto(table).values(Object.fromEntries(columns.map((c) => [c, p[c]])) as never),
    );
    inserts.set(id, q);
  }
  return q;
}

/** Whether the store holds anything an import would collide with: an account, or an event. */
export const anyAccount = query((db) => db.selectFrom("accounts").select("id").limit(1));
export const anyEvent = query((db) => db.selectFrom("usage_events").select("usage_id").limit(1));

export const clearRollups = query((db) => db.deleteFrom("usage_rollups"));
export const clearSeries = query((db) => db.deleteFrom("rollup_series"));

const dims = sql.join(SERIES_COLUMNS.map((c) => sql.ref(c)));
const sameSeries = sql.join(
  SERIES_COLUMNS.map((c) => sql`s.${sql.ref(c)} = r.${sql.ref(c)}`),
  sql` AND `,
);

/**
 * The rollups recounted from the live events, as verify counts them (`expectedRollups`): first
 * their series, then their rows keyed by those series. Run on empty rollup tables.
 */
export const ROLLUP_RECOUNT = [
  query((db, _p, dialect) => ({
    compile: () =>
      sql`INSERT INTO rollup_series (${dims}) SELECT DISTINCT ${dims} FROM (${expectedRollups(db, dialect)}) r`.compile(
        db,
      ),
  })),
  query((db, _p, dialect) => ({
    compile: () =>
      sql`INSERT INTO usage_rollups (account_id, family, level, bucket_start, series_id, requests, quantity,
          cost_nano, cost_atto, tokens_prompt, tokens_completion)
        SELECT r.account_id, r.family, r.level, r.bucket_start, s.id, r.requests, r.quantity, r.cost_nano,
          r.cost_atto, r.tokens_prompt, r.tokens_completion
        FROM (${expectedRollups(db, dialect)}) r JOIN rollup_series s ON ${sameSeries}`.compile(db),
  })),
];
