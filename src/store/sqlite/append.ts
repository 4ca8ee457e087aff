import type Database from "better-sqlite3";
import {
  type RollupDeltaRow,
  rollupDeltas,
  SERIES_COLUMNS,
  seriesKey,
  seriesValues,
} from "../rollup-delta.ts";
import { EVENT_COLUMNS, eventValues } from "../rows.ts";
import type { AppendOutcome, UsageEvent } from "../store.ts";
import { EventIdIndex, idHash } from "./event-id-index.ts";

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

/**
 * The SQLite write path (hot): events appended with their rollup rows in one IMMEDIATE
 * transaction, duplicates decided by the in-memory id index (event-id-index.ts), rollup
 * dimensions interned as rollup_series ids (docs/decisions/0007).
 */
export class SqliteAppender {
  private readonly insertEvent: Database.Statement;
  private readonly upsertRollup: Database.Statement;
  private readonly eventIdentity: Database.Statement;
  private readonly findSeries: Database.Statement;
  private readonly insertSeries: Database.Statement;
  private readonly dataVersion: Database.Statement;
  private readonly appendTx: Database.Transaction<
    (events: UsageEvent[], added: [number, number][]) => AppendOutcome[]
  >;
  /**
   * rollup_series ids by dimensions. Series rows never change once committed, so the cache is
   * never stale; a transaction that fails clears it (`failed`), since it may hold ids that rolled back.
   */
  private readonly seriesIds = new Map<string, number>();
  /** idempotency: (account, event id) -> seq, see event-id-index.ts; built on first append */
  private ids: EventIdIndex | null = null;
  private idsSeq = 0;
  private idsDataVersion = -1;

  constructor(private readonly db: Database.Database) {
    this.insertEvent = db.prepare(
      `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`,
    );
    this.upsertRollup = db.prepare(ROLLUP_UPSERT);
    this.dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.appendTx = db.transaction((events, added) => this.appendSync(events, added));
    this.eventIdentity = db.prepare("SELECT account_id, event_id, usage_id FROM usage_events WHERE seq = ?");
    this.findSeries = db
      .prepare(`SELECT id FROM rollup_series WHERE ${SERIES_COLUMNS.map((c) => `${c} = ?`).join(" AND ")}`)
      .pluck();
    this.insertSeries = db.prepare(
      `INSERT INTO rollup_series (${SERIES_COLUMNS.join(", ")}) VALUES (${SERIES_COLUMNS.map(() => "?").join(", ")})`,
    );
  }

  /** A write transaction failed: series ids it created rolled back with it. */
  failed(): void {
    this.seriesIds.clear();
  }

  /** Appends in one IMMEDIATE transaction (`writing` forgets what a failed one cached). */
  append(events: UsageEvent[], writing: <T>(tx: () => T) => T): AppendOutcome[] {
    const added: [number, number][] = [];
    // IMMEDIATE: take the write lock first, so the id index is current for the whole transaction
    const outcomes = writing(() => this.appendTx.immediate(events, added));
    // only what committed enters the index
    for (const [hash, seq] of added) this.ids!.add(hash, seq);
    if (added.length > 0) this.idsSeq = Math.max(this.idsSeq, added[added.length - 1][1]);
    return outcomes;
  }

  /** Adds rollup increments (inside the caller's transaction). */
  applyRollups(rows: RollupDeltaRow[]): void {
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
}
