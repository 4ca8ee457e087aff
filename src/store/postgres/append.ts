import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import {
  type RollupDeltaRow,
  rollupDeltas,
  SERIES_COLUMNS,
  seriesKey,
  seriesKeyOfColumns,
  seriesValues,
} from "../rollup-delta.ts";
import { EVENT_COLUMNS, eventValues } from "../rows.ts";
import type { AppendOutcome, UsageEvent } from "../store.ts";
import { type Db, type PostgresExecutor, retryingConflicts, sqlValue } from "./executor.ts";

/** rollup_series columns (migration 5) and their types, for unnest() */
const SERIES_NAMES = SERIES_COLUMNS.join(", ");
const SERIES_TYPES = SERIES_COLUMNS.map((c) => (c === "family" || c === "unit_price" ? "int8" : "text"));

const ROLLUP_COLUMNS = [
  ["account_id", "text"],
  ["family", "int8"],
  ["level", "int8"],
  ["bucket_start", "int8"],
  ["series_id", "int8"],
  ["requests", "int8"],
  ["quantity", "int8"],
  ["cost_nano", "int8"],
  ["cost_atto", "int8"],
  ["tokens_prompt", "int8"],
  ["tokens_completion", "int8"],
] as const;

const ROLLUP_PK = "account_id, family, level, bucket_start, series_id";

/**
 * The PostgreSQL write path (hot): event_ids, claimed in the event's own statement or
 * transaction, decides duplicates across instances and across months (usage_events is
 * partitioned by month, docs/decisions/0020), and rollups are moved by commutative increments, so concurrent writers never lose
 * an update. Rollup dimensions are interned as rollup_series ids (docs/decisions/0007).
 */
export class PostgresAppender {
  /** rollup_series ids by dimensions (seriesKey); only committed series, which never change */
  private readonly seriesIds = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly x: PostgresExecutor,
  ) {}

  /** A transaction that found or created `pending` series committed: they are safe to remember. */
  committed(pending: Map<string, number>): void {
    for (const [key, id] of pending) this.seriesIds.set(key, id);
  }

  /** Adds rollup increments inside the transaction on `c`; new series ids go to `pending` until it commits. */
  async applyRollups(c: pg.PoolClient, rows: RollupDeltaRow[], pending: Map<string, number>): Promise<void> {
    if (rows.length === 0) return;
    const ids = await this.resolveSeries(rows, c, pending);
    await c.query(rollupUpsertSql(0), this.rollupArrays(rows, ids));
  }

  /**
   * The rollup_series id of every row's series, inserting missing ones through `db`. Through the
   * pool (autocommit) new ids are committed at once and remembered in `seriesIds`; inside a
   * transaction they go to `pending`, remembered only once it commits (`committed`), so the map
   * never holds an id that a rollback took back. Series rows never change.
   */
  private async resolveSeries(
    rows: RollupDeltaRow[],
    db: Db = this.pool,
    pending: Map<string, number> = this.seriesIds,
  ): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    const missing = new Map<string, RollupDeltaRow>();
    for (const r of rows) {
      const key = seriesKey(r);
      const id = this.seriesIds.get(key);
      if (id !== undefined) ids.set(key, id);
      else if (!missing.has(key)) missing.set(key, r);
    }
    if (missing.size === 0) return ids;
    // inserted in one order everywhere, so two transactions adding the same series never deadlock
    const list = [...missing.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
    const values = list.map(seriesValues);
    const arrays = SERIES_COLUMNS.map((_, col) => values.map((v) => sqlValue(v[col])));
    const unnest = `unnest(${SERIES_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(", ")})`;
    await db.query(
      `INSERT INTO rollup_series (${SERIES_NAMES}) SELECT * FROM ${unnest} ON CONFLICT DO NOTHING`,
      arrays,
    );
    const { rows: found } = await db.query(
      `SELECT id, ${SERIES_NAMES} FROM rollup_series WHERE (${SERIES_NAMES}) IN (SELECT * FROM ${unnest})`,
      arrays,
    );
    for (const f of found) {
      const key = seriesKeyOfColumns(f);
      ids.set(key, Number(f.id));
      pending.set(key, Number(f.id));
    }
    return ids;
  }

  /**
   * Rollup increments as column arrays, in one global order: concurrent writers lock the rows they
   * share in the same order, so they never deadlock on them.
   */
  private rollupArrays(rows: RollupDeltaRow[], ids: Map<string, number>): unknown[][] {
    const keyed = rows.map((r) => ({ r, series: ids.get(seriesKey(r))! }));
    keyed.sort(
      (a, b) =>
        (a.r.accountId < b.r.accountId ? -1 : a.r.accountId > b.r.accountId ? 1 : 0) ||
        a.r.family - b.r.family ||
        a.r.level - b.r.level ||
        a.r.bucketStart - b.r.bucketStart ||
        a.series - b.series,
    );
    return [
      keyed.map((k) => k.r.accountId),
      keyed.map((k) => k.r.family),
      keyed.map((k) => k.r.level),
      keyed.map((k) => k.r.bucketStart),
      keyed.map((k) => k.series),
      keyed.map((k) => k.r.requests),
      keyed.map((k) => k.r.quantity.toString()),
      keyed.map((k) => k.r.costNano.toString()),
      keyed.map((k) => k.r.costAtto.toString()),
      keyed.map((k) => k.r.tokensPrompt),
      keyed.map((k) => k.r.tokensCompletion),
    ];
  }

  /**
   * One event (a license report at low load) in one statement, atomic without BEGIN and COMMIT:
   * the event, and its rollup rows only if the event was new. Each round trip here costs 0.2-1 ms;
   * the transaction form takes four.
   */
  private async appendOne(e: UsageEvent): Promise<AppendOutcome> {
    const values = eventValues(e);
    const deltas = rollupDeltas([e]);
    const ids = await this.resolveSeries(deltas);
    const sql = `WITH claimed AS (${CLAIM_IDS}), ev AS (${INSERT_CLAIMED}),
      ro AS (${rollupUpsertSql(EVENT_COLUMNS.length, "WHERE EXISTS (SELECT 1 FROM ev)")})
      SELECT usage_id FROM ev`;
    const params = [...values.map((v) => [sqlValue(v)]), ...this.rollupArrays(deltas, ids)];
    const { rows } = await retryingConflicts(() => this.pool.query(sql, params));
    if (rows.length > 0) return { status: "inserted", usageId: e.usageId };
    const [stored] = await this.x.rows(
      "SELECT usage_id FROM event_ids WHERE account_id = $1 AND event_id = $2",
      [e.accountId, e.eventId],
    );
    return { status: "duplicate", usageId: stored ? String(stored.usage_id) : e.usageId };
  }

  async append(events: UsageEvent[]): Promise<AppendOutcome[]> {
    if (events.length === 1) return [await this.appendOne(events[0])];
    // the first of several events with one id in a batch wins; the rest are duplicates
    const firstIndex = new Map<string, number>();
    events.forEach((e, i) => {
      const k = `${e.accountId}\u0000${e.eventId}`;
      if (!firstIndex.has(k)) firstIndex.set(k, i);
    });
    // one global order for event_ids' key locks, so concurrent groups never deadlock on them
    const unique = [...firstIndex.values()]
      .map((i) => events[i])
      .sort((a, b) =>
        a.accountId < b.accountId
          ? -1
          : a.accountId > b.accountId
            ? 1
            : a.eventId < b.eventId
              ? -1
              : a.eventId > b.eventId
                ? 1
                : 0,
      );
    if (unique.length < COPY_FROM) return this.appendBatch(events, unique, "merge");
    try {
      return await this.appendBatch(events, unique, "copy");
    } catch (err) {
      // an id already claimed (a retried batch) or being claimed by another writer: the COPY
      // into event_ids stopped at it and its transaction rolled back; insert again, skipping them
      if ((err as { code?: string }).code !== "23505") throw err;
      return this.appendBatch(events, unique, "merge");
    }
  }

  /**
   * Appends `unique` (the batch's first event per id, in lock order) in one transaction.
   * "copy" COPYs every id into event_ids, failing on any id already claimed, then every event
   * into usage_events; "merge" claims ids with ON CONFLICT DO NOTHING, inserts the events whose
   * id it claimed, and reports the rest as duplicates.
   */
  private async appendBatch(
    events: UsageEvent[],
    unique: UsageEvent[],
    how: "copy" | "merge",
  ): Promise<AppendOutcome[]> {
    let pending = new Map<string, number>();
    const outcomes = await this.x.tx(async (c) => {
      pending = new Map();
      const values = unique.map(eventValues);
      let inserted = unique;
      if (how === "copy") {
        await copyRows(
          c,
          "COPY event_ids (account_id, event_id, usage_id, ts) FROM STDIN",
          unique.map(eventIdValues),
        );
        await copyRows(c, `COPY usage_events (${EVENT_COLUMNS.join(", ")}) FROM STDIN`, values);
      } else {
        const { rows } = await c.query(
          `WITH claimed AS (${CLAIM_IDS}) ${INSERT_CLAIMED}`,
          EVENT_COLUMNS.map((_, col) => values.map((v) => sqlValue(v[col]))),
        );
        const ids = new Set(rows.map((r) => String(r.usage_id)));
        inserted = unique.filter((e) => ids.has(e.usageId));
      }
      await this.applyRollups(c, rollupDeltas(inserted), pending);
      const insertedIds = new Set(inserted.map((e) => e.usageId));
      const duplicates = events.filter((e) => !insertedIds.has(e.usageId));
      const stored = new Map<string, string>();
      if (duplicates.length > 0) {
        const { rows: found } = await c.query(
          `SELECT account_id, event_id, usage_id FROM event_ids
           WHERE (account_id, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
          [duplicates.map((e) => e.accountId), duplicates.map((e) => e.eventId)],
        );
        for (const r of found) stored.set(`${r.account_id}\u0000${r.event_id}`, String(r.usage_id));
      }
      return events.map(
        (e): AppendOutcome =>
          insertedIds.has(e.usageId)
            ? { status: "inserted", usageId: e.usageId }
            : { status: "duplicate", usageId: stored.get(`${e.accountId}\u0000${e.eventId}`) ?? e.usageId },
      );
    });
    this.committed(pending);
    return outcomes;
  }
}

/** usage_events' column types, for unnest() */
const EVENT_TYPES: Record<(typeof EVENT_COLUMNS)[number], string> = {
  usage_id: "text",
  account_id: "text",
  event_id: "text",
  ts: "int8",
  user_id: "text",
  key_id: "text",
  model_id: "text",
  api_name: "text",
  endpoint: "text",
  kind: "text",
  unit: "text",
  quantity: "int8",
  unit_price: "int8",
  cost_nano: "int8",
  cost_atto: "int8",
  currency: "text",
  tokens_prompt: "int8",
  tokens_completion: "int8",
  status_active: "int8",
  metadata: "text",
  api_key_used: "text",
  meters: "text",
  created_at: "int8",
  updated_at: "int8",
};

/** The array parameter that holds event column `name` (one per column, in EVENT_COLUMNS order). */
const eventParam = (name: (typeof EVENT_COLUMNS)[number]): string =>
  `$${EVENT_COLUMNS.indexOf(name) + 1}::${EVENT_TYPES[name]}[]`;

/**
 * Claims the ids of events given as one array parameter per column, skipping ids already
 * claimed: a CTE named `claimed` for INSERT_CLAIMED. A claim by a transaction still open makes
 * this wait for its end, so two writers of one id store it once.
 */
const CLAIM_IDS = `INSERT INTO event_ids (account_id, event_id, usage_id, ts)
  SELECT * FROM unnest(${eventParam("account_id")}, ${eventParam("event_id")}, ${eventParam("usage_id")}, ${eventParam("ts")})
  ON CONFLICT (account_id, event_id) DO NOTHING RETURNING usage_id`;

/** The events whose id was `claimed` (CLAIM_IDS), from the same parameters; returns their usage ids. */
const INSERT_CLAIMED = `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")})
  SELECT * FROM unnest(${EVENT_COLUMNS.map(eventParam).join(", ")}) AS e(${EVENT_COLUMNS.join(", ")})
  WHERE e.usage_id IN (SELECT usage_id FROM claimed) RETURNING usage_id`;

/** An event's row of event_ids, in CLAIM_IDS' column order. */
const eventIdValues = (e: UsageEvent): unknown[] => [e.accountId, e.eventId, e.usageId, e.ts];

/** Adds rollup increments given as one array parameter per column, from $(at+1). */
function rollupUpsertSql(at: number, where = ""): string {
  return `INSERT INTO usage_rollups (${ROLLUP_COLUMNS.map(([name]) => name).join(", ")})
    SELECT * FROM unnest(${ROLLUP_COLUMNS.map(([, type], i) => `$${at + i + 1}::${type}[]`).join(", ")}) ${where}
    ON CONFLICT (${ROLLUP_PK}) DO UPDATE SET requests = usage_rollups.requests + excluded.requests,
      quantity = usage_rollups.quantity + excluded.quantity, cost_nano = usage_rollups.cost_nano + excluded.cost_nano,
      cost_atto = usage_rollups.cost_atto + excluded.cost_atto,
      tokens_prompt = usage_rollups.tokens_prompt + excluded.tokens_prompt,
      tokens_completion = usage_rollups.tokens_completion + excluded.tokens_completion`;
}

/**
 * Batches at least this large are COPYed straight into event_ids and usage_events, which fails on
 * the first id already claimed; smaller ones (a single license report) go in one INSERT over unnest(), since
 * COPY's extra round trips would cost them about 1 ms. COPY takes rows as they come, where
 * unnest() over 25 array parameters is parsed element by element, and no row is written twice:
 * batch ingest went from 41-46k to 57-58k events/s against COPY into a staging table followed by
 * INSERT .. SELECT ON CONFLICT (alternating runs, 1,000-event requests).
 */
const COPY_FROM = 100;

/** One value in COPY's text format. */
function copyText(v: unknown): string {
  if (v === null || v === undefined) return "\\N";
  if (typeof v !== "string") return String(v);
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (ch) => COPY_ESCAPES[ch]) : v;
}

const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** Streams rows to a `COPY .. FROM STDIN` (text format) and waits until the server took them. */
async function copyRows(c: pg.PoolClient, sql: string, rows: unknown[][]): Promise<void> {
  let text = "";
  for (const r of rows) {
    text += copyText(r[0]);
    for (let i = 1; i < r.length; i++) text += `\t${copyText(r[i])}`;
    text += "\n";
  }
  const stream = c.query(copyFrom(sql));
  await new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve);
    stream.on("error", reject);
    stream.end(text);
  });
}
