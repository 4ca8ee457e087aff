import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
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
  seriesValues,
  WIDE_ROLLUP_KEY,
  WIDE_ROLLUPS,
} from "../rollup-delta.ts";
import {
  type AggregateDims,
  EVENT_COLUMNS,
  eventSnapshot,
  eventValues,
  KEY_COLUMNS,
  keyValues,
  patchedEvent,
  planValues,
  toAccount,
  toAggregate,
  toAggregateDims,
  toAggregateSums,
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
import { EventIdIndex, idHash } from "./event-id-index.ts";
import { SQLITE_MIGRATIONS } from "./schema.ts";

/** Event ids are unique per account for at least this long after the event was recorded. */
export const DEDUP_WINDOW_MS = 40 * 86_400_000;

type Row = Record<string, unknown>;

const ROLLUP_UPSERT = `
INSERT INTO usage_rollups (account_id, family, level, bucket_start, series_id, requests, quantity, cost_nano, cost_atto,
  tokens_prompt, tokens_completion)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id, family, level, bucket_start, series_id)
DO UPDATE SET requests = requests + excluded.requests, quantity = quantity + excluded.quantity,
  cost_nano = cost_nano + excluded.cost_nano, cost_atto = cost_atto + excluded.cost_atto,
  tokens_prompt = tokens_prompt + excluded.tokens_prompt, tokens_completion = tokens_completion + excluded.tokens_completion`;

/** Embedded store: better-sqlite3 in WAL mode with synchronous=FULL, so a commit is on disk. */
export class SqliteStore implements Store {
  readonly dialect = "sqlite" as const;
  readonly db: Database.Database;
  private readonly insertEvent: Database.Statement;
  private readonly upsertRollup: Database.Statement;
  private readonly touchKey: Database.Statement;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly dataVersion: Database.Statement;
  private readonly appendTx: Database.Transaction<
    (events: UsageEvent[], added: [number, number][]) => AppendOutcome[]
  >;
  private readonly eventIdentity: Database.Statement;
  private readonly findSeries: Database.Statement;
  private readonly insertSeries: Database.Statement;
  /**
   * rollup_series ids by dimensions. Series rows never change once committed, so the cache is
   * never stale; a transaction that fails clears it, since it may hold ids that rolled back.
   */
  private readonly seriesIds = new Map<string, number>();
  /** rollup_series dimensions by id, for reads (see seriesDims) */
  private readonly dimsById = new Map<number, AggregateDims>();
  /** keys, users, accounts, plans and licenses as every request reads them; see reference-memo.ts */
  private readonly memo: ReferenceMemo;
  /** key id -> digest, for keys the memo holds (their last use moves about once a second) */
  private readonly memoKeyHashes = new Map<string, string>();
  /** idempotency: (account, event id) -> seq, see event-id-index.ts; built on first append */
  private ids: EventIdIndex | null = null;
  private idsSeq = 0;
  private idsDataVersion = -1;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("cache_size = -65536");
    this.db.pragma("foreign_keys = ON");
    this.db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.migrateSync();
    this.insertEvent = this.db.prepare(
      `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`,
    );
    this.upsertRollup = this.db.prepare(ROLLUP_UPSERT);
    this.dataVersion = this.db.prepare("PRAGMA data_version").pluck();
    this.memo = new ReferenceMemo(() => Number(this.dataVersion.get()));
    this.appendTx = this.db.transaction((events, added) => this.appendSync(events, added));
    this.eventIdentity = this.db.prepare(
      "SELECT account_id, event_id, usage_id FROM usage_events WHERE seq = ?",
    );
    this.findSeries = this.db
      .prepare(`SELECT id FROM rollup_series WHERE ${SERIES_COLUMNS.map((c) => `${c} = ?`).join(" AND ")}`)
      .pluck();
    this.insertSeries = this.db.prepare(
      `INSERT INTO rollup_series (${SERIES_COLUMNS.join(", ")}) VALUES (${SERIES_COLUMNS.map(() => "?").join(", ")})`,
    );
    this.touchKey = this.db.prepare(
      "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    );
  }

  private migrateSync(): void {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
      | Row
      | undefined;
    const current = row ? Number(row.value) : 0;
    for (let i = current; i < SQLITE_MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(SQLITE_MIGRATIONS[i]);
        this.db
          .prepare(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          )
          .run(String(i + 1));
      })();
    }
  }

  async migrate(): Promise<void> {
    this.migrateSync();
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // int64 columns come back as bigint: money columns exceed 2^53 (a price of 9007.2 in pico units)
  /** Prepared once per SQL text: preparing costs more than running most of these statements. */
  private statement(sql: string, safeIntegers = true): Database.Statement {
    const key = safeIntegers ? sql : `raw:${sql}`;
    let stmt = this.statements.get(key);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (safeIntegers && stmt.reader) stmt.safeIntegers(true);
      this.statements.set(key, stmt);
    }
    return stmt;
  }

  private get(sql: string, ...params: unknown[]): Row | undefined {
    return this.statement(sql).get(...params) as Row | undefined;
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.statement(sql).all(...params) as Row[];
  }

  /** Every write but event appends goes through here, so it also forgets remembered reference rows. */
  private run(sql: string, ...params: unknown[]): Database.RunResult {
    this.forgetReferences();
    return this.statement(sql, false).run(...params);
  }

  private forgetReferences(): void {
    this.memo.clear();
    this.memoKeyHashes.clear();
  }

  async createAccount(a: Account): Promise<void> {
    this.run(
      "INSERT INTO accounts (id, name, is_enabled, plan_id, created_at) VALUES (?, ?, ?, ?, ?)",
      a.id,
      a.name,
      a.isEnabled ? 1 : 0,
      a.planId,
      a.createdAt,
    );
  }

  async getAccount(id: string): Promise<Account | null> {
    return this.memo.get(`account:${id}`, () => {
      const r = this.get("SELECT * FROM accounts WHERE id = ?", id);
      return r ? toAccount(r) : null;
    });
  }

  async setAccountPlan(accountId: string, planId: string | null): Promise<void> {
    this.run("UPDATE accounts SET plan_id = ? WHERE id = ?", planId, accountId);
  }

  async createUser(u: User): Promise<void> {
    this.run(
      "INSERT INTO users (id, account_id, username, role, node_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      u.id,
      u.accountId,
      u.username,
      u.role,
      u.nodeId,
      u.createdAt,
    );
  }

  async getUser(id: string): Promise<User | null> {
    return this.memo.get(`user:${id}`, () => {
      const r = this.get("SELECT * FROM users WHERE id = ?", id);
      return r ? toUser(r) : null;
    });
  }

  async createKey(k: ApiKey): Promise<void> {
    this.run(
      `INSERT INTO api_keys (${KEY_COLUMNS.join(", ")}) VALUES (${KEY_COLUMNS.map(() => "?").join(", ")})`,
      ...keyValues(k),
    );
  }

  async getKey(id: string): Promise<ApiKey | null> {
    const r = this.get("SELECT * FROM api_keys WHERE id = ?", id);
    return r ? toKey(r) : null;
  }

  async listKeys(userId: string): Promise<ApiKey[]> {
    return this.all("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id", userId).map(toKey);
  }

  async findKeyByHash(hash: string): Promise<ApiKey | null> {
    return this.memo.get(`key:${hash}`, () => {
      const r = this.get("SELECT * FROM api_keys WHERE hash = ?", hash);
      const key = r ? toKey(r) : null;
      if (key) this.memoKeyHashes.set(key.id, hash);
      return key;
    });
  }

  async revokeKey(id: string, at: number): Promise<void> {
    this.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", at, id);
  }

  async hasRootKey(): Promise<boolean> {
    return (
      this.get("SELECT 1 AS one FROM api_keys WHERE is_root = 1 AND revoked_at IS NULL LIMIT 1") !== undefined
    );
  }

  async touchKeys(uses: Map<string, number>): Promise<void> {
    if (uses.size === 0) return;
    this.writing(this.db.transaction(() => this.touchKeysSync(uses)));
  }

  private touchKeysSync(uses: Map<string, number>): void {
    for (const [id, at] of uses) {
      this.touchKey.run(at, id, at);
      const hash = this.memoKeyHashes.get(id);
      if (hash === undefined) continue;
      this.memo.update<ApiKey | null>(`key:${hash}`, (k) =>
        k && (k.lastUsedAt === null || k.lastUsedAt < at) ? { ...k, lastUsedAt: at } : k,
      );
    }
  }

  async upsertModel(m: Model, price: PriceVersion | null): Promise<"created" | "updated"> {
    return this.db.transaction(() => {
      const existing = this.get("SELECT 1 AS one FROM models WHERE id = ?", m.id);
      if (existing) {
        this.run(
          "UPDATE models SET unit = ?, kind = ?, reporting_enabled = ?, updated_at = ? WHERE id = ?",
          m.unit,
          m.kind,
          m.reportingEnabled ? 1 : 0,
          m.updatedAt,
          m.id,
        );
      } else {
        this.run(
          "INSERT INTO models (id, unit, kind, reporting_enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
          m.id,
          m.unit,
          m.kind,
          m.reportingEnabled ? 1 : 0,
          m.createdAt,
          m.updatedAt,
        );
      }
      if (price) {
        this.run(
          `INSERT INTO model_prices (model_id, effective_from, unit_price, currency) VALUES (?, ?, ?, ?)
           ON CONFLICT (model_id, effective_from) DO UPDATE SET unit_price = excluded.unit_price, currency = excluded.currency`,
          price.modelId,
          price.effectiveFrom,
          toPico(price.unitPrice),
          price.currency,
        );
      }
      return existing ? "updated" : "created";
    })();
  }

  async getModel(id: string): Promise<Model | null> {
    const r = this.get("SELECT * FROM models WHERE id = ?", id);
    return r ? toModel(r) : null;
  }

  async listModels(): Promise<Model[]> {
    return this.all("SELECT * FROM models ORDER BY id").map(toModel);
  }

  async listPrices(modelId?: string): Promise<PriceVersion[]> {
    const rows = modelId
      ? this.all("SELECT * FROM model_prices WHERE model_id = ? ORDER BY effective_from", modelId)
      : this.all("SELECT * FROM model_prices ORDER BY model_id, effective_from");
    return rows.map(toPrice);
  }

  async createLicense(l: License): Promise<void> {
    this.run(
      "INSERT INTO licenses (id, account_id, model_id, starts_at, ends_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      l.id,
      l.accountId,
      l.modelId,
      l.startsAt,
      l.endsAt,
      l.createdAt,
    );
  }

  async listLicenses(accountId: string, modelId?: string): Promise<License[]> {
    return this.memo.get(`licenses:${accountId}\u0000${modelId ?? ""}`, () =>
      this.readLicenses(accountId, modelId),
    );
  }

  private readLicenses(accountId: string, modelId?: string): License[] {
    const rows = modelId
      ? this.all(
          "SELECT * FROM licenses WHERE account_id = ? AND model_id = ? ORDER BY starts_at",
          accountId,
          modelId,
        )
      : this.all("SELECT * FROM licenses WHERE account_id = ? ORDER BY starts_at", accountId);
    return rows.map(toLicense);
  }

  async upsertPlan(p: Plan): Promise<"created" | "updated"> {
    return this.db.transaction(() => {
      const existing = this.get("SELECT 1 AS one FROM plans WHERE id = ?", p.id);
      this.run(
        upsertPlanSql(() => "?"),
        ...planValues(p),
      );
      return existing ? "updated" : "created";
    })();
  }

  async getPlan(id: string): Promise<Plan | null> {
    return this.memo.get(`plan:${id}`, () => {
      const r = this.get("SELECT * FROM plans WHERE id = ?", id);
      return r ? toPlan(r) : null;
    });
  }

  async createSubscription(s: Subscription): Promise<void> {
    this.db.transaction(() => {
      this.run(
        "INSERT INTO subscriptions (id, account_id, plan_id, activated_at, created_at) VALUES (?, ?, ?, ?, ?)",
        s.id,
        s.accountId,
        s.planId,
        s.activatedAt,
        s.createdAt,
      );
      this.run("UPDATE accounts SET plan_id = ? WHERE id = ?", s.planId, s.accountId);
    })();
  }

  async listSubscriptions(accountId: string): Promise<Subscription[]> {
    return this.all(
      "SELECT * FROM subscriptions WHERE account_id = ? ORDER BY activated_at, created_at",
      accountId,
    ).map(toSubscription);
  }

  async createPayment(p: Payment): Promise<void> {
    const { nano, atto } = splitCost(p.amountUsd);
    this.run(
      "INSERT INTO payments (id, account_id, amount_nano, amount_atto, paid_at, reference, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      p.id,
      p.accountId,
      nano,
      atto,
      p.paidAt,
      p.reference,
      p.createdAt,
    );
  }

  async listPayments(accountId: string): Promise<Payment[]> {
    return this.all(
      "SELECT * FROM payments WHERE account_id = ? ORDER BY paid_at, created_at",
      accountId,
    ).map(toPayment);
  }

  private applyRollups(rows: RollupDeltaRow[]): void {
    for (const r of rows) {
      this.upsertRollup.run(
        r.accountId,
        r.family,
        r.level,
        r.bucketStart,
        this.seriesId(r),
        r.requests,
        r.quantity,
        r.costNano,
        r.costAtto,
        r.tokensPrompt,
        r.tokensCompletion,
      );
    }
  }

  /** The rollup_series id of a row's dimensions, created on first use (inside the caller's transaction). */
  private seriesId(r: RollupDeltaRow): number {
    const key = seriesKey(r);
    let id = this.seriesIds.get(key);
    if (id !== undefined) return id;
    const dims = seriesValues(r);
    const found = this.findSeries.get(...dims) as number | bigint | undefined;
    id = found !== undefined ? Number(found) : Number(this.insertSeries.run(...dims).lastInsertRowid);
    this.seriesIds.set(key, id);
    return id;
  }

  /**
   * A series' dimensions, as aggregate lines carry them. Read once per series and remembered:
   * building them from text columns for every result row cost more than the sums. Only ids read
   * from committed rollups reach here, and a committed series row never changes.
   */
  private seriesDims(id: number): AggregateDims {
    let dims = this.dimsById.get(id);
    if (!dims) {
      const r = this.statement("SELECT * FROM rollup_series WHERE id = ?").get(id) as Row | undefined;
      if (!r) throw new Error(`rollup series ${id} not found`);
      dims = toAggregateDims(r);
      this.dimsById.set(id, dims);
    }
    return dims;
  }

  /** Runs a write transaction; if it fails, series ids it created are forgotten with it. */
  private writing<T>(tx: () => T): T {
    try {
      return tx();
    } catch (err) {
      this.seriesIds.clear();
      this.forgetReferences();
      throw err;
    }
  }

  async appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]> {
    const added: [number, number][] = [];
    // IMMEDIATE: take the write lock first, so the id index is current for the whole transaction
    const outcomes = this.writing(() => this.appendTx.immediate(events, added));
    // only what committed enters the index
    for (const [hash, seq] of added) this.ids!.add(hash, seq);
    if (added.length > 0) this.idsSeq = Math.max(this.idsSeq, added[added.length - 1][1]);
    return outcomes;
  }

  private appendSync(events: UsageEvent[], added: [number, number][]): AppendOutcome[] {
    const ids = this.currentIds();
    const out: AppendOutcome[] = [];
    const inserted: UsageEvent[] = [];
    const inBatch = new Map<string, string>();
    for (const e of events) {
      const batchKey = `${e.accountId}\u0000${e.eventId}`;
      const hash = idHash(e.accountId, e.eventId);
      const stored = inBatch.get(batchKey) ?? this.storedUsageId(ids, hash, e);
      if (stored !== null) {
        out.push({ status: "duplicate", usageId: stored });
        continue;
      }
      const seq = Number(this.insertEvent.run(...eventValues(e)).lastInsertRowid);
      added.push([hash, seq]);
      inBatch.set(batchKey, e.usageId);
      inserted.push(e);
      out.push({ status: "inserted", usageId: e.usageId });
    }
    // rollup rows are updated in the events' transaction, so a crash never leaves them apart
    this.applyRollups(rollupDeltas(inserted));
    return out;
  }

  /** The usage_id already stored under this event's (account, id), or null. */
  private storedUsageId(ids: EventIdIndex, hash: number, e: UsageEvent): string | null {
    for (const seq of ids.candidates(hash)) {
      const r = this.eventIdentity.get(seq) as Row | undefined;
      if (r && r.account_id === e.accountId && r.event_id === e.eventId) return String(r.usage_id);
    }
    return null;
  }

  /**
   * The id index, built on first use from the events created within the dedup window, and caught
   * up with rows that another connection committed since (PRAGMA data_version tells).
   */
  private currentIds(): EventIdIndex {
    const version = Number(this.dataVersion.get());
    if (this.ids && version === this.idsDataVersion) return this.ids;
    if (!this.ids) {
      const ids = new EventIdIndex();
      const newest =
        (this.db.prepare("SELECT MAX(created_at) AS at, MAX(seq) AS seq FROM usage_events").get() as Row) ??
        {};
      if (newest.at !== null) {
        const recent = this.db
          .prepare("SELECT seq, account_id, event_id FROM usage_events WHERE created_at >= ?")
          .raw()
          .iterate(Number(newest.at) - DEDUP_WINDOW_MS);
        for (const [seq, accountId, eventId] of recent as Iterable<[number, string, string]>) {
          ids.add(idHash(accountId, eventId), seq);
        }
      }
      this.ids = ids;
      this.idsSeq = Number(newest.seq ?? 0);
    }
    const rows = this.db
      .prepare("SELECT seq, account_id, event_id FROM usage_events WHERE seq > ? ORDER BY seq")
      .raw()
      .iterate(this.idsSeq);
    for (const [seq, accountId, eventId] of rows as Iterable<[number, string, string]>) {
      this.ids.add(idHash(accountId, eventId), seq);
      this.idsSeq = seq;
    }
    this.idsDataVersion = version;
    return this.ids;
  }

  async getEvent(accountId: string, usageId: string): Promise<UsageEvent | null> {
    return this.liveEvent(accountId, usageId);
  }

  /** An account's event by usage id, unless deleted. */
  private liveEvent(accountId: string, usageId: string): UsageEvent | null {
    const r = this.get(
      "SELECT * FROM usage_events WHERE usage_id = ? AND account_id = ? AND deleted_at IS NULL",
      usageId,
      accountId,
    );
    return r ? toEvent(r) : null;
  }

  async findEventByUsageId(usageId: string): Promise<UsageEvent | null> {
    const r = this.get("SELECT * FROM usage_events WHERE usage_id = ? AND deleted_at IS NULL", usageId);
    return r ? toEvent(r) : null;
  }

  async listEvents(page: EventPage): Promise<UsageEvent[]> {
    const rows = page.userId
      ? this.all(
          `SELECT * FROM usage_events WHERE user_id = ? AND account_id = ? AND deleted_at IS NULL
           ORDER BY ts DESC, seq DESC LIMIT ? OFFSET ?`,
          page.userId,
          page.accountId,
          page.limit,
          page.skip,
        )
      : this.all(
          `SELECT * FROM usage_events WHERE account_id = ? AND deleted_at IS NULL ORDER BY ts DESC, seq DESC LIMIT ? OFFSET ?`,
          page.accountId,
          page.limit,
          page.skip,
        );
    return rows.map(toEvent);
  }

  private writeAudit(entry: AuditEntry): void {
    this.run(
      `INSERT INTO audit_log (id, account_id, usage_id, action, actor_key_id, actor_user_id, at, before, after)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      entry.id,
      entry.accountId,
      entry.usageId,
      entry.action,
      entry.actorKeyId,
      entry.actorUserId,
      entry.at,
      entry.before ? JSON.stringify(entry.before) : null,
      entry.after ? JSON.stringify(entry.after) : null,
    );
  }

  async updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null> {
    return this.writing(
      this.db.transaction(() => {
        const before = this.liveEvent(accountId, usageId);
        if (!before) return null;
        const after = patchedEvent(before, patch, audit.at);
        const { nano, atto } = splitCost(after.cost);
        this.run(
          `UPDATE usage_events SET quantity = ?, unit_price = ?, cost_nano = ?, cost_atto = ?, status_active = ?, updated_at = ?
         WHERE usage_id = ?`,
          toMicro(after.quantity),
          toPico(after.unitPrice),
          nano,
          atto,
          after.statusActive ? 1 : 0,
          after.updatedAt,
          usageId,
        );
        this.applyRollups(rollupDeltas([before], -1));
        this.applyRollups(rollupDeltas([after]));
        this.writeAudit({ ...audit, before: eventSnapshot(before), after: eventSnapshot(after) });
        return after;
      }),
    );
  }

  async deleteEvent(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<boolean> {
    return this.writing(
      this.db.transaction(() => {
        const before = this.liveEvent(accountId, usageId);
        if (!before) return false;
        // soft delete: the row keeps its idempotency key, so a late retry of the same event stays a duplicate
        this.run(
          "UPDATE usage_events SET deleted_at = ?, updated_at = ? WHERE usage_id = ?",
          audit.at,
          audit.at,
          usageId,
        );
        this.applyRollups(rollupDeltas([before], -1));
        this.writeAudit({ ...audit, before: eventSnapshot(before), after: null });
        return true;
      }),
    );
  }

  async listAudit(accountId: string, filter: { usageId?: string; limit: number }): Promise<AuditEntry[]> {
    const rows = filter.usageId
      ? this.all(
          "SELECT * FROM audit_log WHERE account_id = ? AND usage_id = ? ORDER BY at DESC, id DESC LIMIT ?",
          accountId,
          filter.usageId,
          filter.limit,
        )
      : this.all(
          "SELECT * FROM audit_log WHERE account_id = ? ORDER BY at DESC, id DESC LIMIT ?",
          accountId,
          filter.limit,
        );
    return rows.map(toAudit);
  }

  async aggregate(q: AggregateQuery): Promise<AggregateRow[]> {
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
    const fromRollups = this.statement(
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
    const fromEvents = this.statement(
      `SELECT model_id, unit, unit_price, currency, kind, ${rawKeyCols}, COUNT(*) AS requests, ${sums}
       FROM usage_events
       WHERE account_id = ? AND ts >= ? AND ts < ? AND status_active = 1 AND deleted_at IS NULL
         ${where.replaceAll("key_id", "COALESCE(key_id, '')").replaceAll("user_id", "COALESCE(user_id, '')")}
       GROUP BY model_id, unit, unit_price, currency, kind${q.family === "key" ? ", 6, 7" : ""}`,
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
    }
    return out;
  }

  async verifyRollups(): Promise<VerifyDifference[]> {
    // recompute into a temporary table with the same shape, then diff both ways
    return this.db.transaction(() => {
      this.db.exec(`DROP TABLE IF EXISTS temp.expected_rollups;
        DROP TABLE IF EXISTS temp.actual_rollups;
        CREATE TEMP TABLE expected_rollups AS SELECT * FROM (${WIDE_ROLLUPS}) WHERE 0;
        CREATE TEMP TABLE actual_rollups AS ${WIDE_ROLLUPS};`);
      const levels = Object.values(LEVEL_CODE);
      for (const family of Object.values(FAMILY_CODE)) {
        for (const level of levels) {
          const size = LEVEL_MS[level];
          const keyCols =
            family === FAMILY_CODE.key ? "COALESCE(key_id, ''), COALESCE(user_id, '')" : "'', ''";
          this.db.exec(`INSERT INTO expected_rollups
            SELECT account_id, ${family}, ${level}, (ts - (((ts % ${size}) + ${size}) % ${size})) AS b, model_id, unit, unit_price,
              currency, kind, ${keyCols}, COUNT(*), SUM(quantity), SUM(cost_nano), SUM(cost_atto), SUM(tokens_prompt),
              SUM(tokens_completion)
            FROM usage_events WHERE status_active = 1 AND deleted_at IS NULL
            GROUP BY account_id, b, model_id, unit, unit_price, currency, kind, 10, 11`);
        }
      }
      // only rows that differ leave the database: a consistent store sends nothing to compare
      const diff = (a: string, b: string) =>
        this.db
          .prepare(
            `SELECT x.*, y.requests AS o_requests, y.quantity AS o_quantity, y.cost_nano AS o_cost_nano,
               y.cost_atto AS o_cost_atto, y.tokens_prompt AS o_tokens_prompt, y.tokens_completion AS o_tokens_completion
             FROM ${a} x LEFT JOIN ${b} y USING (${WIDE_ROLLUP_KEY})
             WHERE y.requests IS NULL OR x.requests <> y.requests OR x.quantity <> y.quantity
               OR x.tokens_prompt <> y.tokens_prompt OR x.tokens_completion <> y.tokens_completion
               OR (x.cost_nano - y.cost_nano) * 1000000000 + (x.cost_atto - y.cost_atto) <> 0`,
          )
          .safeIntegers(true)
          .all() as Row[];
      return compareRollups(
        diff("temp.expected_rollups", "temp.actual_rollups"),
        diff("temp.actual_rollups", "temp.expected_rollups"),
      );
    })();
  }
}
