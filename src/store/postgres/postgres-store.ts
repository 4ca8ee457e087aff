import pg from "pg";
import { type Log, SILENT_LOG } from "../../ops/log.ts";
import { correctionDeltas } from "../rollup-delta.ts";
import { auditRow, correctedRow, eventSnapshot, patchedEvent, toEvent } from "../rows.ts";
import { correctEvent, deleteEvent, eventToCorrect, insertAudit } from "../shared/events.ts";
import { CREATE_META, schemaVersion, setSchemaVersion } from "../shared/meta.ts";
import { query, type Step, sql, step } from "../shared/sql.ts";
import { SqlStore } from "../shared/sql-store.ts";
import type {
  AggregateQuery,
  AggregateRow,
  AppendOutcome,
  AuditEntry,
  EventPatch,
  UsageEvent,
  VerifyDifference,
} from "../store.ts";
import { guarded } from "../store-errors.ts";
import type { TransferRow } from "../transfer-store.ts";
import { PostgresAggregator } from "./aggregate.ts";
import { PostgresAppender } from "./append.ts";
import { PostgresExecutor } from "./executor.ts";
import { createPartitionsAhead, gaveUpWaiting, UNCLAIMED_EVENTS } from "./partitions.ts";
import { PostgresReferenceCache } from "./reference-cache.ts";
import { POSTGRES_MIGRATIONS } from "./schema.ts";

export interface PostgresOptions {
  /** search_path of every connection (tests give each store its own schema) */
  schema?: string;
  /** pool size */
  max?: number;
  /** how long to wait for a connection, pool slot included (ms) */
  connectTimeoutMs?: number;
  /** server-side statement_timeout, and a client-side limit a little above it for a frozen server (ms) */
  statementTimeoutMs?: number;
  /** an idle pooled connection is closed after this long (ms) */
  idleTimeoutMs?: number;
  /** where the store reports what it does on its own (event partitions made, and their failures) */
  log?: Log;
}

/**
 * Bounds that turn a database that does not answer into an UNAVAILABLE error instead of a
 * request that hangs (docs/decisions/0015). A statement is cancelled by the server after
 * `statementTimeoutMs`; the client gives up a second later if the server itself is frozen.
 */
const POSTGRES_TIMEOUTS = {
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 15_000,
  idleTimeoutMs: 10_000,
};

/** How often each instance makes the months ahead of usage_events (partitions.ts); months are made three early. */
const PARTITIONS_EVERY_MS = 60 * 60_000;

/**
 * PostgreSQL store for production and for several stateless Tally instances. The shared
 * statements (shared/) run through `PostgresExecutor`; append and aggregate are hand-tuned here
 * (append.ts, aggregate.ts).
 */
export class PostgresStore extends SqlStore {
  readonly dialect = "postgres" as const;
  readonly pool: pg.Pool;
  protected readonly x: PostgresExecutor;
  protected readonly refs: PostgresReferenceCache;
  private readonly appender: PostgresAppender;
  private readonly aggregator: PostgresAggregator;
  /** what every connection of this store is opened with, the listener's and the migrator's included */
  private readonly connection: pg.ClientConfig;
  private readonly log: Log;
  /** makes the months ahead of usage_events while the store is open */
  private partitionTimer: NodeJS.Timeout | undefined;

  constructor(connectionString: string, options: PostgresOptions = {}) {
    super();
    const t = {
      connectTimeoutMs: options.connectTimeoutMs ?? POSTGRES_TIMEOUTS.connectTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs ?? POSTGRES_TIMEOUTS.statementTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs ?? POSTGRES_TIMEOUTS.idleTimeoutMs,
    };
    // what every connection of this store is opened with, the listener's included
    const connection: pg.ClientConfig = {
      connectionString,
      options: options.schema ? `-c search_path=${options.schema}` : undefined,
      connectionTimeoutMillis: t.connectTimeoutMs,
    };
    this.connection = connection;
    this.log = options.log ?? SILENT_LOG;
    this.pool = new pg.Pool({
      ...connection,
      max: options.max ?? 10,
      idleTimeoutMillis: t.idleTimeoutMs,
      statement_timeout: t.statementTimeoutMs,
      query_timeout: t.statementTimeoutMs > 0 ? t.statementTimeoutMs + 1_000 : undefined,
    });
    // an idle client's error must not crash the process; the next query reports it
    this.pool.on("error", () => {});
    this.x = new PostgresExecutor(this.pool);
    this.refs = new PostgresReferenceCache(connection);
    this.appender = new PostgresAppender(this.pool, this.x);
    this.aggregator = new PostgresAggregator(this.x);
  }

  /** The connection that listens for reference changes (a test ends it to see the store do without). */
  get listener(): pg.Client | null {
    return this.refs.listener;
  }

  /**
   * Applies missing migrations under an advisory lock, on a connection of its own without the
   * pool's statement timeouts: a migration may wait for the lock or rewrite a large table.
   */
  async migrate(): Promise<void> {
    await guarded(async () => {
      const client = new pg.Client(this.connection);
      // a lost connection rejects the statement in flight; unheard, its 'error' would end the process
      client.on("error", () => {});
      await client.connect();
      try {
        await client.query("SELECT pg_advisory_lock(827364501)");
        await client.query(CREATE_META);
        const [row] = await this.x.on(client, schemaVersion, {});
        const current = row ? Number(row.value) : 0;
        for (let i = current; i < POSTGRES_MIGRATIONS.length; i++) {
          await client.query("BEGIN");
          try {
            await client.query(POSTGRES_MIGRATIONS[i]);
            await this.x.on(client, setSchemaVersion, { version: String(i + 1) });
            await client.query("COMMIT");
          } catch (err) {
            await client.query("ROLLBACK");
            throw err;
          }
        }
      } finally {
        await client.query("SELECT pg_advisory_unlock(827364501)").catch(() => {});
        await client.end().catch(() => {});
      }
    });
    await guarded(() => this.makePartitionsAhead());
    this.partitionTimer ??= setInterval(() => {
      this.makePartitionsAhead().catch((err) => {
        this.log.error(
          { err },
          "usage_events: the months ahead could not be made; the next tick tries again",
        );
      });
    }, PARTITIONS_EVERY_MS).unref();
    await this.refs.listen();
  }

  /**
   * Makes the months of usage_events ahead that are missing (partitions.ts). One that gave up
   * waiting for its lock behind a long reader is left to the next tick: months are made three
   * early, so a missed tick costs nothing.
   */
  private async makePartitionsAhead(): Promise<void> {
    try {
      const created = await createPartitionsAhead(this.x, this.pool, Date.now());
      if (created.length > 0) this.log.info({ partitions: created }, "usage_events: months made");
    } catch (err) {
      if (!gaveUpWaiting(err)) throw err;
      this.log.warn(
        { err },
        "usage_events: a month ahead waited too long for its lock; the next tick tries again",
      );
    }
  }

  async close(): Promise<void> {
    clearInterval(this.partitionTimer);
    this.partitionTimer = undefined;
    await this.refs.close();
    await this.pool.end();
  }

  /** Imported events claim their ids in event_ids in the same transaction, as appends do. */
  protected override importSteps(table: string, rows: TransferRow[]): Step[] {
    const steps = super.importSteps(table, rows);
    if (table !== "usage_events") return steps;
    const column = (name: string) => rows.map((r) => r[name]);
    return [
      ...steps,
      step(claimImportedIds, {
        accountIds: column("account_id"),
        eventIds: column("event_id"),
        usageIds: column("usage_id"),
        ts: column("ts"),
      }),
    ];
  }

  /** The rollups, and every event's claim in event_ids (decision 0020): a missing one could be stored twice. */
  override async verifyRollups(): Promise<VerifyDifference[]> {
    const differences = await super.verifyRollups();
    const { rows } = await guarded(() => this.pool.query(UNCLAIMED_EVENTS));
    for (const r of rows) {
      differences.push({
        table: "event_ids",
        key: `${r.account_id}/${r.event_id}`,
        expected: `${r.usage_id} at ${r.ts}`,
        actual: r.claimed_usage_id === null ? "no claim" : `${r.claimed_usage_id} at ${r.claimed_ts}`,
      });
    }
    return differences;
  }

  async touchKeys(uses: Map<string, number>): Promise<void> {
    if (uses.size === 0) return;
    await guarded(() => this.pool.query(TOUCH_KEYS, [[...uses.keys()], [...uses.values()]]));
  }

  appendEvents(events: UsageEvent[]): Promise<AppendOutcome[]> {
    return guarded(() => this.appender.append(events));
  }

  aggregate(q: AggregateQuery): Promise<AggregateRow[]> {
    return guarded(() => this.aggregator.aggregate(q));
  }

  updateEvent(
    accountId: string,
    usageId: string,
    patch: EventPatch,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<UsageEvent | null> {
    return this.correcting(accountId, usageId, audit, (before) => patchedEvent(before, patch, audit.at));
  }

  async deleteEvent(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
  ): Promise<boolean> {
    return (await this.correcting(accountId, usageId, audit, () => null)) !== null;
  }

  /**
   * A correction (`change` gives the corrected event) or deletion (`change` gives null) of a live
   * event, its rollups and its audit entry in one transaction; null when there is no such event.
   */
  private correcting(
    accountId: string,
    usageId: string,
    audit: Omit<AuditEntry, "before" | "after">,
    change: (before: UsageEvent) => UsageEvent | null,
  ): Promise<UsageEvent | null> {
    return guarded(async () => {
      let pending = new Map<string, number>();
      const result = await this.x.tx(async (c) => {
        pending = new Map();
        const [r] = await this.x.on(c, eventToCorrect, { accountId, usageId });
        if (!r) return null;
        const before = toEvent(r);
        const after = change(before);
        if (after) await this.x.on(c, correctEvent, correctedRow(after));
        else await this.x.on(c, deleteEvent, { usageId, at: audit.at });
        await this.appender.applyRollups(c, correctionDeltas(before, after), pending);
        const snapshot = after ? eventSnapshot(after) : null;
        await this.x.on(
          c,
          insertAudit,
          auditRow({ ...audit, before: eventSnapshot(before), after: snapshot }),
        );
        return after ?? before;
      });
      this.appender.committed(pending);
      return result;
    });
  }
}

/** event_ids rows of imported events, from one array per column (an import goes into an empty store). */
const claimImportedIds = query(
  (db, p: { accountIds: unknown[]; eventIds: unknown[]; usageIds: unknown[]; ts: unknown[] }) => ({
    compile: () =>
      sql`INSERT INTO event_ids (account_id, event_id, usage_id, ts)
      SELECT * FROM unnest(${p.accountIds}::text[], ${p.eventIds}::text[], ${p.usageIds}::text[], ${p.ts}::int8[])`.compile(
        db,
      ),
  }),
);

/** Moves keys' last use forward, from ids at $1 and instants at $2 (one statement per batch). */
const TOUCH_KEYS = `UPDATE api_keys k SET last_used_at = u.at FROM unnest($1::text[], $2::int8[]) AS u(id, at)
  WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`;
