import { FAMILY_CODE, LEVEL_CODE } from "../rollup-delta.ts";
import {
  type AggregateDims,
  meteredAggregates,
  toAggregate,
  toAggregateDims,
  toAggregateSums,
} from "../rows.ts";
import type { AggregateQuery, AggregateRow } from "../store.ts";
import type { SqliteExecutor } from "./executor.ts";

type Row = Record<string, unknown>;

/** The SQLite read path (hot): usage sums from the rollup rows, raw events only at sub-minute edges. */
export class SqliteAggregator {
  /** rollup_series dimensions by id, for reads (see seriesDims) */
  private readonly dimsById = new Map<number, AggregateDims>();

  constructor(private readonly x: SqliteExecutor) {}

  aggregate(q: AggregateQuery): AggregateRow[] {
    const family = FAMILY_CODE[q.family];
    const filters: string[] = [];
    const params: unknown[] = [];
    if (q.modelIds && q.modelIds.length > 0) {
      filters.push(`AND model_id IN (${q.modelIds.map(() => "?").join(", ")})`);
      params.push(...q.modelIds);
    }
    if (q.keyId !== undefined) {
      filters.push("AND key_id = ?");
      params.push(q.keyId);
    }
    if (q.userId !== undefined) {
      filters.push("AND user_id = ?");
      params.push(q.userId);
    }
    const where = filters.join(" ");
    const sums = `SUM(quantity) AS quantity, SUM(cost_nano) AS cost_nano, SUM(cost_atto) AS cost_atto,
      SUM(tokens_prompt) AS tokens_prompt, SUM(tokens_completion) AS tokens_completion`;
    // one index range scan per segment over narrow integer rows, summed per series; each series'
    // dimensions come from memory (seriesDims); filters pick series first. A bucket's segments are
    // materialized so each is read once. One statement per bucket: SQLite groups by sorting, and
    // many small sorts beat one large one. Cost follows the number of buckets, not of events.
    const tokenSums =
      q.tokens === false
        ? "0 AS tokens_prompt, 0 AS tokens_completion"
        : "SUM(tokens_prompt * s.sg) AS tokens_prompt, SUM(tokens_completion * s.sg) AS tokens_completion";
    const fromRollups = this.x.statement(
      `WITH s AS MATERIALIZED (
         SELECT value ->> 0 AS lvl, value ->> 1 AS lo, value ->> 2 AS hi, value ->> 3 AS sg FROM json_each(@segments)),
       g AS (
         SELECT r.series_id, SUM(requests * s.sg) AS requests, SUM(quantity * s.sg) AS quantity,
           SUM(cost_nano * s.sg) AS cost_nano, SUM(cost_atto * s.sg) AS cost_atto,
           ${tokenSums}
         FROM s CROSS JOIN usage_rollups r ON r.account_id = @account AND r.family = @family AND r.level = s.lvl
           AND r.bucket_start >= s.lo AND r.bucket_start < s.hi
         ${where ? `WHERE r.series_id IN (SELECT id FROM rollup_series WHERE account_id = @account AND family = @family ${where})` : ""}
         GROUP BY r.series_id)
       SELECT series_id, requests, quantity, cost_nano, cost_atto, tokens_prompt, tokens_completion FROM g`,
    );
    const rawKeyCols =
      q.family === "key"
        ? "COALESCE(key_id, '') AS key_id, COALESCE(user_id, '') AS user_id"
        : "'' AS key_id, '' AS user_id";
    const fromEvents = this.x.statement(
      `SELECT model_id, unit, unit_price, currency, kind, ${rawKeyCols}, COUNT(*) AS requests, ${sums}
       FROM usage_events
       WHERE account_id = ? AND ts >= ? AND ts < ? AND status_active = 1 AND deleted_at IS NULL AND meters IS NULL
         ${where.replaceAll("key_id", "COALESCE(key_id, '')").replaceAll("user_id", "COALESCE(user_id, '')")}
       GROUP BY model_id, unit, unit_price, currency, kind${q.family === "key" ? ", 6, 7" : ""}`,
    );
    // events priced per meter at the edges: their meter lines, as their rollups hold them
    const meteredEvents = this.x.statement(
      `SELECT model_id, currency, kind, ${rawKeyCols}, meters
       FROM usage_events
       WHERE account_id = ? AND ts >= ? AND ts < ? AND status_active = 1 AND deleted_at IS NULL AND meters IS NOT NULL
         ${where.replaceAll("key_id", "COALESCE(key_id, '')").replaceAll("user_id", "COALESCE(user_id, '')")}`,
    );
    const out: AggregateRow[] = [];
    const byBucket = new Map<number, (string | number)[][]>();
    for (const seg of q.segments) {
      if (seg.level === "raw") continue;
      const entry: (string | number)[] = [LEVEL_CODE[seg.level], seg.start, seg.end, seg.sign];
      const list = byBucket.get(seg.bucket);
      if (list) list.push(entry);
      else byBucket.set(seg.bucket, [entry]);
    }
    for (const [bucket, list] of byBucket) {
      for (const r of fromRollups.all(...params, {
        account: q.accountId,
        family,
        segments: JSON.stringify(list),
      }) as Row[]) {
        out.push(toAggregateSums(this.seriesDims(Number(r.series_id)), r, bucket));
      }
    }
    for (const seg of q.segments) {
      if (seg.level !== "raw") continue;
      // raw events only at sub-minute edges: at most two short ranges per query
      for (const r of fromEvents.all(q.accountId, seg.start, seg.end, ...params) as Row[]) {
        out.push(toAggregate(r, seg.bucket));
      }
      for (const r of meteredEvents.all(q.accountId, seg.start, seg.end, ...params) as Row[]) {
        out.push(...meteredAggregates(r, seg.bucket));
      }
    }
    return out;
  }

  /**
   * A series' dimensions, as aggregate lines carry them. Read once per series and remembered:
   * building them from text columns for every result row cost more than the sums. Only ids read
   * from committed rollups reach here, and a committed series row never changes.
   */
  private seriesDims(id: number): AggregateDims {
    let dims = this.dimsById.get(id);
    if (!dims) {
      const r = this.x.statement("SELECT * FROM rollup_series WHERE id = ?").get(id) as Row | undefined;
      if (!r) throw new Error(`rollup series ${id} not found`);
      dims = toAggregateDims(r);
      this.dimsById.set(id, dims);
    }
    return dims;
  }
}
