import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { DomainError } from "../../domain/errors.ts";
import { correctionDeltas } from "../rollup-delta.ts";
import { auditRow, correctedRow, eventSnapshot, patchedEvent, toEvent } from "../rows.ts";
import { correctEvent, deleteEvent, eventToCorrect, insertAudit } from "../shared/events.ts";
import { CREATE_META, schemaVersion, setSchemaVersion } from "../shared/meta.ts";
import { SqlStore } from "../shared/sql-store.ts";
import type {
  AggregateQuery,
  AggregateRow,
  AppendOutcome,
  AuditEntry,
  EventPatch,
  UsageEvent,
} from "../store.ts";
import { guardedSync, storeError, withCause } from "../store-errors.ts";
import { SqliteAggregator } from "./aggregate.ts";
import { SqliteAppender } from "./append.ts";
import { SqliteExecutor } from "./executor.ts";
import { SqliteReferenceCache } from "./reference-cache.ts";
import { SQLITE_MIGRATIONS } from "./schema.ts";

export { DEDUP_WINDOW_MS } from "./append.ts";

/**
 * Embedded store: better-sqlite3 in WAL mode with synchronous=FULL, so a commit is on disk.
 * The shared statements (shared/) run through `SqliteExecutor`; append and aggregate are
 * hand-tuned here (append.ts, aggregate.ts). Every write is synchronous, so a transaction is a
 * plain function that nothing can interleave with.
 */
export class SqliteStore extends SqlStore {
  readonly dialect = "sqlite" as const;
  readonly db: Database.Database;
  protected readonly x: SqliteExecutor;
  protected readonly refs: SqliteReferenceCache;
  private readonly appender: SqliteAppender;
  private readonly aggregator: SqliteAggregator;

  constructor(path: string) {
    super();
    this.db = openDatabase(path);
    this.x = new SqliteExecutor(this.db);
    guardedSync(() => this.migrateSync());
    this.refs = new SqliteReferenceCache(this.db);
    this.appender = new SqliteAppender(this.db);
    this.aggregator = new SqliteAggregator(this.x);
  }

  private migrateSync(): void {
    const row = this.x.firstSync(schemaVersion, {});
    const current = row ? Number(row.value) : 0;
    for (let i = current; i < SQLITE_MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(SQLITE_MIGRATIONS[i]);
        this.x.allSync(setSchemaVersion, { version: String(i + 1) });
      })();
    }
  }

  async migrate(): Promise<void> {
    guardedSync(() => this.migrateSync());
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Runs a write transaction; if it fails, what it cached (series ids, reference rows) is forgotten. */
  private writing<T>(tx: () => T): T {
    try {
      return tx();
    } catch (err) {
      this.appender.failed();
      this.refs.forget();
      throw storeError(err);
    }
  }

  async touchKeys(uses: Map<string, number>): Promise<void> {
    if (uses.size === 0) return;
    this.writing(this.db.transaction(() => this.refs.touchKeys(uses)));
  }

  async appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]> {
    return this.appender.append(events, (tx) => this.writing(tx));
  }

  async aggregate(q: AggregateQuery): Promise<AggregateRow[]> {
    return guardedSync(() => this.aggregator.aggregate(q));
  }

  async updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null> {
    return this.writing(
      this.db.transaction(() => {
        const r = this.x.firstSync(eventToCorrect, { accountId, usageId });
        if (!r) return null;
        const before = toEvent(r);
        const after = patchedEvent(before, patch, audit.at);
        this.x.allSync(correctEvent, correctedRow(after));
        this.appender.applyRollups(correctionDeltas(before, after));
        this.x.allSync(
          insertAudit,
          auditRow({ ...audit, before: eventSnapshot(before), after: eventSnapshot(after) }),
        );
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
        const r = this.x.firstSync(eventToCorrect, { accountId, usageId });
        if (!r) return false;
        const before = toEvent(r);
        this.x.allSync(deleteEvent, { usageId, at: audit.at });
        this.appender.applyRollups(correctionDeltas(before, null));
        this.x.allSync(insertAudit, auditRow({ ...audit, before: eventSnapshot(before), after: null }));
        return true;
      }),
    );
  }
}

/**
 * Opens the database file, making its directory if missing. A directory that cannot be made or
 * written answers UNAVAILABLE naming the path, not a bare driver code.
 */
function openDatabase(path: string): Database.Database {
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    db.pragma("cache_size = -65536");
    db.pragma("foreign_keys = ON");
    // the first write: a file or directory that cannot be written fails here, naming the path
    db.exec(CREATE_META);
    return db;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw withCause(new DomainError("UNAVAILABLE", `cannot open SQLite database ${path}: ${reason}`), err);
  }
}
