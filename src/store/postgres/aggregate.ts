import { FAMILY_CODE, LEVEL_CODE } from "../rollup-delta.ts";
import { meteredAggregates, toAggregate } from "../rows.ts";
import type { AggregateQuery, AggregateRow } from "../store.ts";
import type { PostgresExecutor } from "./executor.ts";

/** The PostgreSQL read path (hot): usage sums from the rollup rows, raw events only at sub-minute edges. */
export class PostgresAggregator {
  constructor(private readonly x: PostgresExecutor) {}

  async aggregate(q: AggregateQuery): Promise<AggregateRow[]> {
    const family = FAMILY_CODE[q.family];
    const rollupSegs = q.segments.filter((s) => s.level !== "raw");
    const rawSegs = q.segments.filter((s) => s.level === "raw");
    const out: AggregateRow[] = [];
    const filter = (startAt: number, keyExpr: string, userExpr: string) => {
      const parts: string[] = [];
      const params: unknown[] = [];
      let n = startAt;
      if (q.modelIds && q.modelIds.length > 0) {
        parts.push(`AND model_id = ANY($${n++}::text[])`);
        params.push(q.modelIds);
      }
      if (q.keyId !== undefined) {
        parts.push(`AND ${keyExpr} = $${n++}`);
        params.push(q.keyId);
      }
      if (q.userId !== undefined) {
        parts.push(`AND ${userExpr} = $${n++}`);
        params.push(q.userId);
      }
      return { sql: parts.join(" "), params };
    };
    const sums = `SUM(quantity) AS quantity, SUM(cost_nano) AS cost_nano, SUM(cost_atto) AS cost_atto,
      SUM(tokens_prompt) AS tokens_prompt, SUM(tokens_completion) AS tokens_completion`;
    // every segment is its own index range scan: LATERAL .. OFFSET 0 keeps the planner from
    // hashing the account's whole rollup history instead, which it did whenever its row estimate
    // was off (30 New York days over 1M events: 400 ms that way, 13 ms this way)
    if (rollupSegs.length > 0) {
      const f = filter(8, "key_id", "user_id");
      // summed per series over narrow integer rows, then joined to the series' dimensions; filters
      // pick series first
      const rows = await this.x.rows(
        `WITH g AS (
           SELECT s.bucket, r.series_id, SUM(requests * s.sign) AS requests,
             SUM(quantity * s.sign) AS quantity, SUM(cost_nano * s.sign) AS cost_nano, SUM(cost_atto * s.sign) AS cost_atto,
             ${
               q.tokens === false
                 ? "0 AS tokens_prompt, 0 AS tokens_completion"
                 : "SUM(tokens_prompt * s.sign) AS tokens_prompt, SUM(tokens_completion * s.sign) AS tokens_completion"
             }
           FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS s(bucket, level, start_at, end_at, sign)
           CROSS JOIN LATERAL (
             SELECT * FROM usage_rollups r WHERE r.account_id = $6 AND r.family = $7 AND r.level = s.level
               AND r.bucket_start >= s.start_at AND r.bucket_start < s.end_at
               ${f.sql ? `AND r.series_id IN (SELECT id FROM rollup_series WHERE account_id = $6 AND family = $7 ${f.sql})` : ""}
             OFFSET 0) r
           GROUP BY s.bucket, r.series_id
           -- a line whose events were all corrected away sums to nothing; a meter's line counts no
           -- request (its event's first meter does) but has a quantity or a cost
           HAVING SUM(requests * s.sign) <> 0 OR SUM(quantity * s.sign) <> 0 OR SUM(cost_nano * s.sign) <> 0
             OR SUM(cost_atto * s.sign) <> 0)
         SELECT g.bucket, x.model_id, x.unit, x.unit_price, x.currency, x.kind, x.key_id, x.user_id, g.requests,
           g.quantity, g.cost_nano, g.cost_atto, g.tokens_prompt, g.tokens_completion
         FROM g JOIN rollup_series x ON x.id = g.series_id`,
        [
          rollupSegs.map((s) => s.bucket),
          rollupSegs.map((s) => LEVEL_CODE[s.level as keyof typeof LEVEL_CODE]),
          rollupSegs.map((s) => s.start),
          rollupSegs.map((s) => s.end),
          rollupSegs.map((s) => s.sign),
          q.accountId,
          family,
          ...f.params,
        ],
      );
      for (const r of rows) out.push(toAggregate(r));
    }
    if (rawSegs.length > 0) {
      const f = filter(5, "COALESCE(key_id, '')", "COALESCE(user_id, '')");
      const keyCols =
        q.family === "key"
          ? "COALESCE(key_id, '') AS key_id, COALESCE(user_id, '') AS user_id"
          : "'' AS key_id, '' AS user_id";
      const rows = await this.x.rows(
        `SELECT s.bucket, model_id, unit, unit_price, currency, kind, ${keyCols}, COUNT(*) AS requests, ${sums}
         FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS s(bucket, start_at, end_at)
         CROSS JOIN LATERAL (
           SELECT * FROM usage_events e WHERE e.account_id = $4 AND e.ts >= s.start_at AND e.ts < s.end_at
             AND e.status_active = 1 AND e.deleted_at IS NULL AND e.meters IS NULL ${f.sql} OFFSET 0) e
         GROUP BY s.bucket, model_id, unit, unit_price, currency, kind${q.family === "key" ? ", 7, 8" : ""}`,
        [
          rawSegs.map((s) => s.bucket),
          rawSegs.map((s) => s.start),
          rawSegs.map((s) => s.end),
          q.accountId,
          ...f.params,
        ],
      );
      for (const r of rows) out.push(toAggregate(r));
      // events priced per meter at the edges: their meter lines, as their rollups hold them
      const metered = await this.x.rows(
        `SELECT s.bucket, model_id, currency, kind, ${keyCols}, meters
         FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS s(bucket, start_at, end_at)
         CROSS JOIN LATERAL (
           SELECT * FROM usage_events e WHERE e.account_id = $4 AND e.ts >= s.start_at AND e.ts < s.end_at
             AND e.status_active = 1 AND e.deleted_at IS NULL AND e.meters IS NOT NULL ${f.sql} OFFSET 0) e`,
        [
          rawSegs.map((s) => s.bucket),
          rawSegs.map((s) => s.start),
          rawSegs.map((s) => s.end),
          q.accountId,
          ...f.params,
        ],
      );
      for (const r of metered) out.push(...meteredAggregates(r, Number(r.bucket)));
    }
    return out;
  }
}
