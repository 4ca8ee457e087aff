import type { Kysely } from "kysely";
import { joinCost } from "../../domain/decimal.ts";
import { COMPLETION_METERS, PROMPT_METERS } from "../../domain/meters.ts";
import { FAMILY_CODE, LEVEL_CODE, LEVEL_MS, SERIES_COLUMNS } from "../rollup-delta.ts";
import type { VerifyDifference } from "../store.ts";
import { type Dialect, query, type Row, sql } from "./sql.ts";
import type { Tables } from "./tables.ts";

/**
 * Verify: every rollup row recomputed from the live events ("expected") against the stored rows
 * with their series' dimensions joined back ("actual"). Only rows that differ leave the
 * database, so a consistent store sends nothing to compare.
 */

/** The columns naming one rollup row: its key with the series' dimensions spelled out. */
const WIDE_KEY = ["account_id", "family", "level", "bucket_start", ...SERIES_COLUMNS.slice(2)] as const;
const SUMS = [
  "requests",
  "quantity",
  "cost_nano",
  "cost_atto",
  "tokens_prompt",
  "tokens_completion",
] as const;

/** One family and level of the expected rollups, grouped from the live events. */
function expectedPart(db: Kysely<Tables>, family: number, level: number) {
  const size = sql.lit(LEVEL_MS[level]);
  const bucket = sql<number>`(ts - (((ts % ${size}) + ${size}) % ${size}))`;
  const keyed = family === FAMILY_CODE.key;
  const keyId = keyed ? sql<string>`COALESCE(key_id, '')` : sql<string>`''`;
  const userId = keyed ? sql<string>`COALESCE(user_id, '')` : sql<string>`''`;
  return db
    .selectFrom("usage_events")
    .select([
      "account_id",
      sql<number>`CAST(${sql.lit(family)} AS BIGINT)`.as("family"),
      sql<number>`CAST(${sql.lit(level)} AS BIGINT)`.as("level"),
      bucket.as("bucket_start"),
      "model_id",
      "unit",
      "unit_price",
      "currency",
      "kind",
      keyId.as("key_id"),
      userId.as("user_id"),
      sql<number>`COUNT(*)`.as("requests"),
      sql<number>`SUM(quantity)`.as("quantity"),
      sql<number>`SUM(cost_nano)`.as("cost_nano"),
      sql<number>`SUM(cost_atto)`.as("cost_atto"),
      sql<number>`SUM(tokens_prompt)`.as("tokens_prompt"),
      sql<number>`SUM(tokens_completion)`.as("tokens_completion"),
    ])
    .where("status_active", "=", sql.lit(1))
    .where("deleted_at", "is", null)
    .where("meters", "is", null)
    .groupBy(["account_id", bucket, "model_id", "unit", "unit_price", "currency", "kind"])
    .$if(keyed, (q) => q.groupBy([keyId, userId]));
}

/**
 * One family and level of the expected rollups of meter-priced events: a line per meter (unit =
 * the meter), the request counted on the first. The meter lines are JSON in the event row, so
 * reading them is the one dialect-specific part of verify.
 */
function expectedMeteredPart(family: number, level: number, dialect: Dialect) {
  const size = sql.lit(LEVEL_MS[level]);
  const bucket = sql`(e.ts - (((e.ts % ${size}) + ${size}) % ${size}))`;
  const keyed = family === FAMILY_CODE.key;
  const keyId = keyed ? sql`COALESCE(e.key_id, '')` : sql`''`;
  const userId = keyed ? sql`COALESCE(e.user_id, '')` : sql`''`;
  const sqlite = dialect === "sqlite";
  const field = (i: number) =>
    sqlite ? sql`json_extract(j.value, ${sql.lit(`$[${i}]`)})` : sql`(j.value ->> ${sql.lit(i)})`;
  const int = (i: number) => sql`CAST(${field(i)} AS BIGINT)`;
  const first = sqlite ? sql`j.key = 0` : sql`j.ord = 1`;
  const lines = sqlite
    ? sql`usage_events e, json_each(e.meters) j`
    : sql`usage_events e CROSS JOIN LATERAL jsonb_array_elements(e.meters::jsonb) WITH ORDINALITY AS j(value, ord)`;
  const tokens = (meters: readonly string[]) =>
    sql`SUM(CASE WHEN ${field(0)} IN (${sql.join(meters.map((m) => sql.lit(m)))}) THEN ${int(1)} / 1000000 ELSE 0 END)`;
  return sql`SELECT e.account_id, CAST(${sql.lit(family)} AS BIGINT) AS family, CAST(${sql.lit(level)} AS BIGINT) AS level,
      ${bucket} AS bucket_start, e.model_id, ${field(0)} AS unit, ${int(2)} AS unit_price, e.currency, e.kind,
      ${keyId} AS key_id, ${userId} AS user_id,
      SUM(CASE WHEN ${first} THEN 1 ELSE 0 END) AS requests, SUM(${int(1)}) AS quantity,
      SUM(${int(3)}) AS cost_nano, SUM(${int(4)}) AS cost_atto,
      ${tokens(PROMPT_METERS)} AS tokens_prompt,
      ${tokens(COMPLETION_METERS)} AS tokens_completion
    FROM ${lines}
    WHERE e.meters IS NOT NULL AND e.status_active = 1 AND e.deleted_at IS NULL
    GROUP BY e.account_id, ${bucket}, e.model_id, ${field(0)}, ${int(2)}, e.currency, e.kind${keyed ? sql`, ${keyId}, ${userId}` : sql``}`;
}

/** Every rollup row counted from the live events (also what an import stores), as one SELECT. */
export function expectedRollups(db: Kysely<Tables>, dialect: Dialect) {
  const codes = Object.values(FAMILY_CODE).flatMap((family) =>
    Object.values(LEVEL_CODE).map((level) => [family, level] as const),
  );
  const parts = codes.map(([family, level]) => expectedPart(db, family, level));
  const plain = parts.slice(1).reduce((all, part) => all.unionAll(part), parts[0]);
  const metered = sql.join(
    codes.map(([family, level]) => expectedMeteredPart(family, level, dialect)),
    sql` UNION ALL `,
  );
  // Kysely puts a builder in parentheses itself
  return sql`SELECT * FROM ${plain} p UNION ALL SELECT * FROM (${metered}) m`;
}

const actualRollups = sql`SELECT r.account_id, r.family, r.level, r.bucket_start,
  ${sql.join(SERIES_COLUMNS.slice(2).map((c) => sql.ref(`s.${c}`)))},
  ${sql.join(SUMS.map((c) => sql.ref(`r.${c}`)))}
  FROM usage_rollups r JOIN rollup_series s ON s.id = r.series_id`;

/**
 * Every rollup key whose expected and stored sums differ, or that only one side has: both sides
 * in one list grouped by the key (a full outer join by sorting, n log n on both stores; a join
 * of the two unindexed sides was a nested loop on SQLite, 2 minutes at 100k events). Expected
 * sums come back as `e_*`, stored ones as `a_*`, NULL for the side that lacks the key. Costs are
 * compared as nano + atto without multiplying out (an int64 would overflow): equal exactly when
 * the atto difference is a whole number of nanos equal to the nano difference.
 */
export const rollupDifferences = query((db, _p, dialect) => {
  const key = sql.join(WIDE_KEY.map((c) => sql.ref(c)));
  const sideOf = (side: "e" | "a") =>
    sql.join(
      SUMS.map(
        (c) =>
          sql`SUM(CASE WHEN side = ${sql.lit(side)} THEN ${sql.ref(c)} END) AS ${sql.ref(`${side}_${c}`)}`,
      ),
    );
  const raw = sql<Row>`WITH expected AS (${expectedRollups(db, dialect)}), actual AS (${actualRollups}),
    sides AS (SELECT 'e' AS side, x.* FROM expected x UNION ALL SELECT 'a' AS side, y.* FROM actual y),
    keyed AS (SELECT ${key}, ${sideOf("e")}, ${sideOf("a")} FROM sides GROUP BY ${key})
    SELECT * FROM keyed
    WHERE e_requests IS NULL OR a_requests IS NULL OR e_requests <> a_requests OR e_quantity <> a_quantity
      OR e_tokens_prompt <> a_tokens_prompt OR e_tokens_completion <> a_tokens_completion
      OR (a_cost_atto - e_cost_atto) % 1000000000 <> 0
      OR e_cost_nano - a_cost_nano <> (a_cost_atto - e_cost_atto) / 1000000000`;
  return { compile: () => raw.compile(db) };
});

/** The differences, from the rows of `rollupDifferences`: keys with expected sums first. */
export function compareRollups(rows: Row[]): VerifyDifference[] {
  const out: VerifyDifference[] = [];
  const storedOnly: VerifyDifference[] = [];
  const big = (v: unknown) => BigInt(String(v));
  const sums = (r: Row, p: "e_" | "a_") => {
    if (r[`${p}requests`] === null || r[`${p}requests`] === undefined) return null;
    return [
      `requests=${r[`${p}requests`]}`,
      `quantity=${r[`${p}quantity`]}`,
      `cost=${joinCost(big(r[`${p}cost_nano`]), big(r[`${p}cost_atto`]))}`,
      `tokens=${r[`${p}tokens_prompt`]}/${r[`${p}tokens_completion`]}`,
    ].join(" ");
  };
  const keyOf = (r: Row) => WIDE_KEY.map((c) => r[c]).join("|");
  for (const r of rows) {
    const expected = sums(r, "e_");
    const actual = sums(r, "a_");
    if (expected === actual) continue;
    if (expected !== null) {
      out.push({ table: "usage_rollups", key: keyOf(r), expected, actual: String(actual) });
      continue;
    }
    // a stored row whose sums are all zero (every event corrected away) is not a difference
    if (
      big(r.a_requests) === 0n &&
      big(r.a_quantity) === 0n &&
      joinCost(big(r.a_cost_nano), big(r.a_cost_atto)) === 0n
    )
      continue;
    storedOnly.push({ table: "usage_rollups", key: keyOf(r), expected: "null", actual: String(actual) });
  }
  return [...out, ...storedOnly];
}
