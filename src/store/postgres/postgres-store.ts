import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { splitCost, toMicro, toPico } from "../../domain/decimal.ts";
import { ReferenceMemo } from "../reference-memo.ts";
import {
  FAMILY_CODE,
  LEVEL_CODE,
  LEVEL_MS,
  type RollupDeltaRow,
  rollupDeltas,
  SERIES_COLUMNS,
  seriesKey,
  seriesKeyOfColumns,
  seriesValues,
  WIDE_ROLLUP_KEY,
  WIDE_ROLLUPS,
} from "../rollup-delta.ts";
import {
  EVENT_COLUMNS,
  eventSnapshot,
  eventValues,
  KEY_COLUMNS,
  keyValues,
  patchedEvent,
  planValues,
  toAccount,
  toAggregate,
  toAudit,
  toEvent,
  toKey,
  toLicense,
  toModel,
  toPayment,
  toPlan,
  toPrice,
  toSubscription,
  toUser,
  upsertPlanSql,
} from "../rows.ts";
import type {
  Account,
  AggregateQuery,
  AggregateRow,
  ApiKey,
  AppendOutcome,
  AuditEntry,
  EventPage,
  EventPatch,
  License,
  Model,
  Payment,
  Plan,
  PriceVersion,
  Store,
  Subscription,
  UsageEvent,
  User,
  VerifyDifference,
} from "../store.ts";
import { compareRollups } from "../verify-rollups.ts";
import { POSTGRES_MIGRATIONS } from "./schema.ts";

type Row = Record<string, unknown>;
type Db = pg.Pool | pg.PoolClient;

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

const sqlValue = (v: unknown): unknown => (typeof v === "bigint" ? v.toString() : v);

/**
 * PostgreSQL store for production and for several stateless Tally instances: the unique
 * idempotency index decides duplicates across instances, and rollups are moved by commutative
 * increments, so concurrent writers never lose an update.
 */
export class PostgresStore implements Store {
  readonly dialect = "postgres" as const;
  readonly pool: pg.Pool;
  /**
   * keys, users, accounts, plans and licenses as every request reads them (reference-memo.ts),
   * remembered only while `listener` hears the reference tables' change notifications
   */
  private readonly memo = new ReferenceMemo(() => this.referenceVersion, 0);
  /** rollup_series ids by dimensions (seriesKey); only committed series, which never change */
  private readonly seriesIds = new Map<string, number>();
  /** per transaction's client: series ids to remember when it commits (see resolveSeries) */
  private readonly uncommittedSeries = new WeakMap<pg.PoolClient, Map<string, number>>();
  /** moves with every notification: the memo forgets everything when it moves */
  private referenceVersion = 0;
  private listener: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private reconnect: NodeJS.Timeout | null = null;

  /** what every connection of this store is opened with, the listener's included */
  private readonly connection: pg.ClientConfig;

  constructor(connectionString: string, options: { schema?: string; max?: number } = {}) {
    this.connection = {
      connectionString,
      options: options.schema ? `-c search_path=${options.schema}` : undefined,
    };
    this.pool = new pg.Pool({ ...this.connection, max: options.max ?? 10 });
    // an idle client's error must not crash the process; the next query reports it
    this.pool.on("error", () => {});
  }

  /**
   * Listens for the notifications that the reference tables' triggers send on commit (migration
   * 3), from this and every other instance. Only while the listener is connected are reference
   * rows remembered: if it drops, every read goes to the database until it is back (retried each
   * second), and the memo starts empty, since notifications sent meanwhile were missed.
   */
  private async listen(): Promise<void> {
    if (this.closed || this.listener) return;
    const client = new pg.Client(this.connection);
    this.listener = client;
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listening = false;
      this.referenceVersion++;
      void client.end().catch(() => {});
      if (!this.closed) {
        this.reconnect = setTimeout(() => {
          this.reconnect = null;
          void this.listen();
        }, 1000);
        this.reconnect.unref();
      }
    };
    client.on("error", lost);
    client.on("end", lost);
    // the channel is shared by every schema in the database: only this store's schema counts
    let schema: string | null = null;
    client.on("notification", (n) => {
      if (n.payload === schema) this.referenceVersion++;
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${REFERENCE_CHANNEL}`);
      schema = String((await client.query("SELECT current_schema() AS s")).rows[0].s);
      if (this.listener !== client) return;
      this.referenceVersion++;
      this.listening = true;
    } catch {
      lost();
    }
  }

  /** A reference read: remembered while the listener runs, otherwise straight from the database. */
  private remembered<T>(key: string, read: () => Promise<T>): Promise<T> {
    return this.listening ? this.memo.getAsync(key, read) : read();
  }

  /** A write to the reference tables: what this store remembered is forgotten once it committed. */
  private async changing<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.memo.clear();
    }
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock(827364501)");
      await client.query("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      const { rows } = await client.query("SELECT value FROM meta WHERE key = 'schema_version'");
      const current = rows[0] ? Number(rows[0].value) : 0;
      for (let i = current; i < POSTGRES_MIGRATIONS.length; i++) {
        await client.query("BEGIN");
        try {
          await client.query(POSTGRES_MIGRATIONS[i]);
          await client.query(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [String(i + 1)],
          );
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock(827364501)").catch(() => {});
      client.release();
    }
    await this.listen();
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnect) clearTimeout(this.reconnect);
    const listener = this.listener;
    this.listener = null;
    this.listening = false;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }

  /** SQL text -> name of its prepared statement (see `many`) */
  private readonly statementNames = new Map<string, string>();

  /**
   * Runs `fn` in a transaction. A deadlock or serialization failure rolls everything back, so the
   * whole transaction is simply run again (a few times at most).
   */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return retryingConflicts(async () => {
      const client = await this.pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        for (const [key, id] of this.uncommittedSeries.get(client) ?? []) this.seriesIds.set(key, id);
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        this.uncommittedSeries.delete(client);
        client.release();
      }
    });
  }

  private async one(sql: string, params: unknown[] = [], db: Db = this.pool): Promise<Row | undefined> {
    return (await this.many(sql, params, db))[0];
  }

  /**
   * Reads run as named prepared statements: each connection parses and plans a text once, not
   * on every request (a license report makes five such reads). The texts are a bounded set.
   */
  private async many(sql: string, params: unknown[] = [], db: Db = this.pool): Promise<Row[]> {
    let name = this.statementNames.get(sql);
    if (name === undefined) {
      name = `tally_${this.statementNames.size + 1}`;
      this.statementNames.set(sql, name);
    }
    const { rows } = await db.query({ name, text: sql, values: params.map(sqlValue) });
    return rows;
  }

  async createAccount(a: Account): Promise<void> {
    await this.changing(
      this.pool.query(
        "INSERT INTO accounts (id, name, is_enabled, plan_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        [a.id, a.name, a.isEnabled ? 1 : 0, a.planId, a.createdAt],
      ),
    );
  }

  async getAccount(id: string): Promise<Account | null> {
    return this.remembered(`account:${id}`, async () => {
      const r = await this.one("SELECT * FROM accounts WHERE id = $1", [id]);
      return r ? toAccount(r) : null;
    });
  }

  async setAccountPlan(accountId: string, planId: string | null): Promise<void> {
    await this.changing(
      this.pool.query("UPDATE accounts SET plan_id = $1 WHERE id = $2", [planId, accountId]),
    );
  }

  async createUser(u: User): Promise<void> {
    await this.changing(
      this.pool.query(
        "INSERT INTO users (id, account_id, username, role, node_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        [u.id, u.accountId, u.username, u.role, u.nodeId, u.createdAt],
      ),
    );
  }

  async getUser(id: string): Promise<User | null> {
    return this.remembered(`user:${id}`, async () => {
      const r = await this.one("SELECT * FROM users WHERE id = $1", [id]);
      return r ? toUser(r) : null;
    });
  }

  async createKey(k: ApiKey): Promise<void> {
    await this.changing(
      this.pool.query(
        `INSERT INTO api_keys (${KEY_COLUMNS.join(", ")}) VALUES (${KEY_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
        keyValues(k),
      ),
    );
  }

  async getKey(id: string): Promise<ApiKey | null> {
    const r = await this.one("SELECT * FROM api_keys WHERE id = $1", [id]);
    return r ? toKey(r) : null;
  }

  async listKeys(userId: string): Promise<ApiKey[]> {
    return (
      await this.many("SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, id", [userId])
    ).map(toKey);
  }

  async findKeyByHash(hash: string): Promise<ApiKey | null> {
    return this.remembered(`key:${hash}`, async () => {
      const r = await this.one("SELECT * FROM api_keys WHERE hash = $1", [hash]);
      return r ? toKey(r) : null;
    });
  }

  async revokeKey(id: string, at: number): Promise<void> {
    await this.changing(
      this.pool.query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", [at, id]),
    );
  }

  async hasRootKey(): Promise<boolean> {
    return (
      (await this.one("SELECT 1 AS one FROM api_keys WHERE is_root = 1 AND revoked_at IS NULL LIMIT 1")) !==
      undefined
    );
  }

  async touchKeys(uses: Map<string, number>): Promise<void> {
    if (uses.size === 0) return;
    await this.pool.query(TOUCH_KEYS, [[...uses.keys()], [...uses.values()]]);
  }

  async upsertModel(m: Model, price: PriceVersion | null): Promise<"created" | "updated"> {
    return this.tx(async (c) => {
      const r = await this.one(
        `INSERT INTO models (id, unit, kind, reporting_enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET unit = excluded.unit, kind = excluded.kind,
           reporting_enabled = excluded.reporting_enabled, updated_at = excluded.updated_at
         RETURNING (xmax = 0) AS created`,
        [m.id, m.unit, m.kind, m.reportingEnabled ? 1 : 0, m.createdAt, m.updatedAt],
        c,
      );
      if (price) {
        await c.query(
          `INSERT INTO model_prices (model_id, effective_from, unit_price, currency) VALUES ($1, $2, $3, $4)
           ON CONFLICT (model_id, effective_from) DO UPDATE SET unit_price = excluded.unit_price, currency = excluded.currency`,
          [price.modelId, price.effectiveFrom, toPico(price.unitPrice).toString(), price.currency],
        );
      }
      return r?.created ? "created" : "updated";
    });
  }

  async getModel(id: string): Promise<Model | null> {
    const r = await this.one("SELECT * FROM models WHERE id = $1", [id]);
    return r ? toModel(r) : null;
  }

  async listModels(): Promise<Model[]> {
    return (await this.many("SELECT * FROM models ORDER BY id")).map(toModel);
  }

  async listPrices(modelId?: string): Promise<PriceVersion[]> {
    const rows = modelId
      ? await this.many("SELECT * FROM model_prices WHERE model_id = $1 ORDER BY effective_from", [modelId])
      : await this.many("SELECT * FROM model_prices ORDER BY model_id, effective_from");
    return rows.map(toPrice);
  }

  async createLicense(l: License): Promise<void> {
    await this.changing(
      this.pool.query(
        "INSERT INTO licenses (id, account_id, model_id, starts_at, ends_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        [l.id, l.accountId, l.modelId, l.startsAt, l.endsAt, l.createdAt],
      ),
    );
  }

  async listLicenses(accountId: string, modelId?: string): Promise<License[]> {
    return this.remembered(`licenses:${accountId}\u0000${modelId ?? ""}`, () =>
      this.readLicenses(accountId, modelId),
    );
  }

  private async readLicenses(accountId: string, modelId?: string): Promise<License[]> {
    const rows = modelId
      ? await this.many("SELECT * FROM licenses WHERE account_id = $1 AND model_id = $2 ORDER BY starts_at", [
          accountId,
          modelId,
        ])
      : await this.many("SELECT * FROM licenses WHERE account_id = $1 ORDER BY starts_at", [accountId]);
    return rows.map(toLicense);
  }

  async upsertPlan(p: Plan): Promise<"created" | "updated"> {
    const r = await this.changing(
      this.one(`${upsertPlanSql((i) => `$${i + 1}`)} RETURNING (xmax = 0) AS created`, planValues(p)),
    );
    return r?.created ? "created" : "updated";
  }

  async getPlan(id: string): Promise<Plan | null> {
    return this.remembered(`plan:${id}`, async () => {
      const r = await this.one("SELECT * FROM plans WHERE id = $1", [id]);
      return r ? toPlan(r) : null;
    });
  }

  async createSubscription(s: Subscription): Promise<void> {
    await this.changing(
      this.tx(async (c) => {
        await c.query(
          "INSERT INTO subscriptions (id, account_id, plan_id, activated_at, created_at) VALUES ($1, $2, $3, $4, $5)",
          [s.id, s.accountId, s.planId, s.activatedAt, s.createdAt],
        );
        await c.query("UPDATE accounts SET plan_id = $1 WHERE id = $2", [s.planId, s.accountId]);
      }),
    );
  }

  async listSubscriptions(accountId: string): Promise<Subscription[]> {
    return (
      await this.many("SELECT * FROM subscriptions WHERE account_id = $1 ORDER BY activated_at, created_at", [
        accountId,
      ])
    ).map(toSubscription);
  }

  async createPayment(p: Payment): Promise<void> {
    const { nano, atto } = splitCost(p.amountUsd);
    await this.pool.query(
      `INSERT INTO payments (id, account_id, amount_nano, amount_atto, paid_at, reference, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [p.id, p.accountId, nano.toString(), atto.toString(), p.paidAt, p.reference, p.createdAt],
    );
  }

  async listPayments(accountId: string): Promise<Payment[]> {
    return (
      await this.many("SELECT * FROM payments WHERE account_id = $1 ORDER BY paid_at, created_at", [
        accountId,
      ])
    ).map(toPayment);
  }

  private async applyRollups(c: pg.PoolClient, rows: RollupDeltaRow[]): Promise<void> {
    if (rows.length === 0) return;
    const ids = await this.resolveSeries(rows, c);
    await c.query(rollupUpsertSql(0), this.rollupArrays(rows, ids));
  }

  /**
   * The rollup_series id of every row's series, inserting missing ones through `db`. Through the
   * pool (autocommit) new ids are committed at once and remembered in `seriesIds`; inside a
   * transaction they are remembered only once it commits (`tx`), so the map never holds an id
   * that a rollback took back. Series rows never change.
   */
  private async resolveSeries(rows: RollupDeltaRow[], db: Db = this.pool): Promise<Map<string, number>> {
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
    const fresh = db === this.pool ? this.seriesIds : this.pendingSeries(db as pg.PoolClient);
    for (const f of found) {
      const key = seriesKeyOfColumns(f);
      ids.set(key, Number(f.id));
      fresh.set(key, Number(f.id));
    }
    return ids;
  }

  /** Series ids a transaction on `c` found or created, remembered once it commits. */
  private pendingSeries(c: pg.PoolClient): Map<string, number> {
    let pending = this.uncommittedSeries.get(c);
    if (!pending) {
      pending = new Map();
      this.uncommittedSeries.set(c, pending);
    }
    return pending;
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
    const sql = `WITH ev AS (${insertEventsSql()}),
      ro AS (${rollupUpsertSql(EVENT_COLUMNS.length, "WHERE EXISTS (SELECT 1 FROM ev)")})
      SELECT usage_id FROM ev`;
    const params = [...values.map((v) => [sqlValue(v)]), ...this.rollupArrays(deltas, ids)];
    const { rows } = await retryingConflicts(() => this.pool.query(sql, params));
    if (rows.length > 0) return { status: "inserted", usageId: e.usageId };
    const stored = await this.one(
      "SELECT usage_id FROM usage_events WHERE account_id = $1 AND event_id = $2",
      [e.accountId, e.eventId],
    );
    return { status: "duplicate", usageId: stored ? String(stored.usage_id) : e.usageId };
  }

  async appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]> {
    if (events.length === 1) return [await this.appendOne(events[0])];
    // the first of several events with one id in a batch wins; the rest are duplicates
    const firstIndex = new Map<string, number>();
    events.forEach((e, i) => {
      const k = `${e.accountId}\u0000${e.eventId}`;
      if (!firstIndex.has(k)) firstIndex.set(k, i);
    });
    // one global order for the unique-index locks, so concurrent groups never deadlock on them
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
      // an id already stored (a retried batch) or being stored by another writer: the COPY
      // stopped at it and its transaction rolled back; insert again, skipping stored ids
      if ((err as { code?: string }).code !== "23505") throw err;
      return this.appendBatch(events, unique, "merge");
    }
  }

  /**
   * Appends `unique` (the batch's first event per id, in lock order) in one transaction.
   * "copy" COPYs every event straight into the table and fails on any id already stored; "merge"
   * inserts with ON CONFLICT DO NOTHING and reports the rest as duplicates.
   */
  private appendBatch(
    events: UsageEvent[],
    unique: UsageEvent[],
    how: "copy" | "merge",
  ): Promise<AppendOutcome[]> {
    return this.tx(async (c) => {
      const values = unique.map(eventValues);
      let inserted = unique;
      if (how === "copy") {
        await copyRows(c, `COPY usage_events (${EVENT_COLUMNS.join(", ")}) FROM STDIN`, values);
      } else {
        const { rows } = await c.query(
          insertEventsSql(),
          EVENT_COLUMNS.map((_, col) => values.map((v) => sqlValue(v[col]))),
        );
        const ids = new Set(rows.map((r) => String(r.usage_id)));
        inserted = unique.filter((e) => ids.has(e.usageId));
      }
      await this.applyRollups(c, rollupDeltas(inserted));
      const insertedIds = new Set(inserted.map((e) => e.usageId));
      const duplicates = events.filter((e) => !insertedIds.has(e.usageId));
      const stored = new Map<string, string>();
      if (duplicates.length > 0) {
        const { rows: found } = await c.query(
          `SELECT account_id, event_id, usage_id FROM usage_events
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
  }

  async getEvent(accountId: string, usageId: string): Promise<UsageEvent | null> {
    const r = await this.one(
      "SELECT * FROM usage_events WHERE usage_id = $1 AND account_id = $2 AND deleted_at IS NULL",
      [usageId, accountId],
    );
    return r ? toEvent(r) : null;
  }

  async findEventByUsageId(usageId: string): Promise<UsageEvent | null> {
    const r = await this.one("SELECT * FROM usage_events WHERE usage_id = $1 AND deleted_at IS NULL", [
      usageId,
    ]);
    return r ? toEvent(r) : null;
  }

  async listEvents(page: EventPage): Promise<UsageEvent[]> {
    const rows = page.userId
      ? await this.many(
          `SELECT * FROM usage_events WHERE user_id = $1 AND account_id = $2 AND deleted_at IS NULL
           ORDER BY ts DESC, seq DESC LIMIT $3 OFFSET $4`,
          [page.userId, page.accountId, page.limit, page.skip],
        )
      : await this.many(
          `SELECT * FROM usage_events WHERE account_id = $1 AND deleted_at IS NULL
           ORDER BY ts DESC, seq DESC LIMIT $2 OFFSET $3`,
          [page.accountId, page.limit, page.skip],
        );
    return rows.map(toEvent);
  }

  private async writeAudit(c: pg.PoolClient, entry: AuditEntry): Promise<void> {
    await c.query(
      `INSERT INTO audit_log (id, account_id, usage_id, action, actor_key_id, actor_user_id, at, before, after)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        entry.id,
        entry.accountId,
        entry.usageId,
        entry.action,
        entry.actorKeyId,
        entry.actorUserId,
        entry.at,
        entry.before ? JSON.stringify(entry.before) : null,
        entry.after ? JSON.stringify(entry.after) : null,
      ],
    );
  }

  async updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null> {
    return this.tx(async (c) => {
      const r = await this.one(
        "SELECT * FROM usage_events WHERE usage_id = $1 AND account_id = $2 AND deleted_at IS NULL FOR UPDATE",
        [usageId, accountId],
        c,
      );
      if (!r) return null;
      const before = toEvent(r);
      const after = patchedEvent(before, patch, audit.at);
      const { nano, atto } = splitCost(after.cost);
      await c.query(
        `UPDATE usage_events SET quantity = $1, unit_price = $2, cost_nano = $3, cost_atto = $4, status_active = $5,
           updated_at = $6 WHERE usage_id = $7`,
        [
          toMicro(after.quantity).toString(),
          toPico(after.unitPrice).toString(),
          nano.toString(),
          atto.toString(),
          after.statusActive ? 1 : 0,
          after.updatedAt,
          usageId,
        ],
      );
      await this.applyRollups(
        c,
        [...rollupDeltas([before], -1), ...rollupDeltas([after])].reduce(mergeDeltas, []),
      );
      await this.writeAudit(c, { ...audit, before: eventSnapshot(before), after: eventSnapshot(after) });
      return after;
    });
  }

  async deleteEvent(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await this.one(
        "SELECT * FROM usage_events WHERE usage_id = $1 AND account_id = $2 AND deleted_at IS NULL FOR UPDATE",
        [usageId, accountId],
        c,
      );
      if (!r) return false;
      const before = toEvent(r);
      await c.query("UPDATE usage_events SET deleted_at = $1, updated_at = $1 WHERE usage_id = $2", [
        audit.at,
        usageId,
      ]);
      await this.applyRollups(c, rollupDeltas([before], -1));
      await this.writeAudit(c, { ...audit, before: eventSnapshot(before), after: null });
      return true;
    });
  }

  async listAudit(accountId: string, filter: { usageId?: string; limit: number }): Promise<AuditEntry[]> {
    const rows = filter.usageId
      ? await this.many(
          "SELECT * FROM audit_log WHERE account_id = $1 AND usage_id = $2 ORDER BY at DESC, id DESC LIMIT $3",
          [accountId, filter.usageId, filter.limit],
        )
      : await this.many("SELECT * FROM audit_log WHERE account_id = $1 ORDER BY at DESC, id DESC LIMIT $2", [
          accountId,
          filter.limit,
        ]);
    return rows.map(toAudit);
  }

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
      const rows = await this.many(
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
           HAVING SUM(requests * s.sign) <> 0)
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
      const rows = await this.many(
        `SELECT s.bucket, model_id, unit, unit_price, currency, kind, ${keyCols}, COUNT(*) AS requests, ${sums}
         FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS s(bucket, start_at, end_at)
         CROSS JOIN LATERAL (
           SELECT * FROM usage_events e WHERE e.account_id = $4 AND e.ts >= s.start_at AND e.ts < s.end_at
             AND e.status_active = 1 AND e.deleted_at IS NULL ${f.sql} OFFSET 0) e
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
    }
    return out;
  }

  async verifyRollups(): Promise<VerifyDifference[]> {
    const parts: string[] = [];
    for (const family of Object.values(FAMILY_CODE)) {
      for (const level of Object.values(LEVEL_CODE)) {
        const size = LEVEL_MS[level];
        const keyCols =
          family === FAMILY_CODE.key
            ? "COALESCE(key_id, '') AS key_id, COALESCE(user_id, '') AS user_id"
            : "'' AS key_id, '' AS user_id";
        parts.push(`SELECT account_id, ${family}::int8 AS family, ${level}::int8 AS level,
            (ts - (((ts % ${size}) + ${size}) % ${size})) AS bucket_start, model_id, unit, unit_price, currency, kind,
            ${keyCols}, COUNT(*) AS requests, SUM(quantity) AS quantity, SUM(cost_nano) AS cost_nano,
            SUM(cost_atto) AS cost_atto, SUM(tokens_prompt) AS tokens_prompt, SUM(tokens_completion) AS tokens_completion
          FROM usage_events WHERE status_active = 1 AND deleted_at IS NULL
          GROUP BY account_id, 4, model_id, unit, unit_price, currency, kind, 10, 11`);
      }
    }
    const expected = parts.join(" UNION ALL ");
    const diff = (a: string, b: string) =>
      this.many(
        `WITH expected AS (${expected}), actual AS (${WIDE_ROLLUPS})
         SELECT x.*, y.requests AS o_requests, y.quantity AS o_quantity, y.cost_nano AS o_cost_nano,
           y.cost_atto AS o_cost_atto, y.tokens_prompt AS o_tokens_prompt, y.tokens_completion AS o_tokens_completion
         FROM ${a} x LEFT JOIN ${b} y USING (${WIDE_ROLLUP_KEY})
             WHERE y.requests IS NULL OR x.requests <> y.requests OR x.quantity <> y.quantity
               OR x.tokens_prompt <> y.tokens_prompt OR x.tokens_completion <> y.tokens_completion
               OR (x.cost_nano - y.cost_nano) * 1000000000::numeric + (x.cost_atto - y.cost_atto) <> 0`,
      );
    const toBig = (rows: Row[]) =>
      rows.map((r) => {
        const o: Row = { ...r };
        for (const k of ["cost_nano", "cost_atto", "o_cost_nano", "o_cost_atto"])
          if (o[k] !== null && o[k] !== undefined) o[k] = BigInt(o[k] as string);
        return o;
      });
    return compareRollups(toBig(await diff("expected", "actual")), toBig(await diff("actual", "expected")));
  }
}

/**
 * Runs `attempt` again (a few times at most) when PostgreSQL aborted it for a deadlock or a
 * serialization failure: it was rolled back whole, so running it again is safe.
 */
async function retryingConflicts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === "40P01" || code === "40001") && n < 4) continue;
      throw err;
    }
  }
}

/** New events from one array parameter per column ($1..$25), skipping stored ids; returns usage ids. */
function insertEventsSql(): string {
  return `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")})
    SELECT * FROM unnest(${EVENT_COLUMNS.map((name, i) => `$${i + 1}::${EVENT_TYPES[name]}[]`).join(", ")})
    ON CONFLICT (account_id, event_id) DO NOTHING RETURNING usage_id`;
}

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

/** The channel the reference tables' triggers notify on (migration 3). */
const REFERENCE_CHANNEL = "tally_reference";

/** Moves keys' last use forward, from ids at $1 and instants at $2. */
const TOUCH_KEYS = `UPDATE api_keys k SET last_used_at = u.at FROM unnest($1::text[], $2::int8[]) AS u(id, at)
  WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`;

/**
 * Batches at least this large are COPYed straight into usage_events, which fails on the first id
 * already stored; smaller ones (a single license report) go in one INSERT over unnest(), since
 * COPY's extra round trips would cost them about 1 ms. COPY takes rows as they come, where
 * unnest() over 25 array parameters is parsed element by element, and no row is written twice:
 * batch ingest went from 41-46k to 57-58k events/s against COPY into a staging table followed by
 * INSERT .. SELECT ON CONFLICT (alternating runs, 1,000-event requests).
 */
const COPY_FROM = 100;

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
  created_at: "int8",
  updated_at: "int8",
};

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

function rollupOrderKey(r: RollupDeltaRow): string {
  return `${r.accountId}|${r.family}|${r.level}|${r.bucketStart}|${r.modelId}|${r.unit}|${r.unitPrice}|${r.currency}|${r.kind}|${r.keyId}|${r.userId}`;
}

/** Folds a correction's minus and plus rows on the same key into one (one statement may not touch a row twice). */
function mergeDeltas(acc: RollupDeltaRow[], row: RollupDeltaRow): RollupDeltaRow[] {
  const same = acc.find((r) => rollupOrderKey(r) === rollupOrderKey(row));
  if (!same) {
    acc.push({ ...row });
    return acc;
  }
  same.requests += row.requests;
  same.quantity += row.quantity;
  same.tokensPrompt += row.tokensPrompt;
  same.tokensCompletion += row.tokensCompletion;
  // keep the cost split canonical (0 <= atto < 1e9)
  const total = (same.costNano + row.costNano) * 1_000_000_000n + same.costAtto + row.costAtto;
  const { nano, atto } = splitCost(total);
  same.costNano = nano;
  same.costAtto = atto;
  return acc;
}
