import type pg from "pg";
import type { PostgresExecutor } from "./executor.ts";

/**
 * usage_events on PostgreSQL is partitioned by UTC month of `ts` (docs/decisions/0020): one
 * partition per month, named usage_events_YYYY_MM, and usage_events_default for any instant no
 * month covers (backfills older than the months made). Tally creates the months itself, at
 * migrate and on a timer: the year behind, so a backfill of recent history (an import, a client's
 * spooled events) lands in its month, and the months ahead, so live traffic always has its month.
 */

/** Months created beyond the current one: the timer may miss two months of ticks and traffic still has its month. */
const MONTHS_AHEAD = 3;

/** Months created before the current one (empty tables cost a catalog row and a few pages each). */
const MONTHS_BEHIND = 12;

/** The partition of the UTC month starting at `start` (epoch ms); the migration names them the same way. */
export function partitionName(start: number): string {
  const d = new Date(start);
  return `usage_events_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** The starts (epoch ms) of the UTC months Tally keeps made: MONTHS_BEHIND before `now`'s to MONTHS_AHEAD after. */
export function monthsMade(now: number): number[] {
  const d = new Date(now);
  return Array.from({ length: MONTHS_BEHIND + MONTHS_AHEAD + 1 }, (_, i) =>
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - MONTHS_BEHIND + i, 1),
  );
}

const nextMonth = (start: number): number => {
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
};

/**
 * Creating a partition takes an ACCESS EXCLUSIVE lock on usage_events. Queued behind a long
 * reader (verify, an export page), it would hold every append behind itself; with this bound it
 * gives up instead, and the next tick tries again (months are made MONTHS_AHEAD early).
 */
const LOCK_WAIT_MS = 2_000;

/** The CREATE gave up after LOCK_WAIT_MS (lock_not_available): the month is left to the next tick. */
export const gaveUpWaiting = (err: unknown): boolean => (err as { code?: string }).code === "55P03";

/**
 * Errors that mean the month is covered, or must stay where it is:
 * 42P07 / 23505: another instance created the same table between our look and our CREATE (the
 * race ends on the name check or on the catalog's unique index); 42P17: a partition already
 * covers the range; 23514: the default partition holds rows of that month, so the month stays in
 * it (PostgreSQL refuses to create it: "updated partition constraint for default partition would
 * be violated by some row").
 */
const COVERED = new Set(["42P07", "23505", "42P17", "23514"]);

/**
 * Creates the partitions of monthsMade(now) that are missing (a month whose rows already sit in
 * the default partition stays there);
 * the names it created. Idempotent and safe with several instances at once. When every month
 * exists (nearly every tick) it is one catalog read and takes no lock.
 */
export async function createPartitionsAhead(
  x: PostgresExecutor,
  db: pg.Pool,
  now: number,
): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'usage_events'::regclass`,
  );
  const existing = new Set(rows.map((r) => String(r.relname)));
  const created: string[] = [];
  for (const start of monthsMade(now)) {
    const name = partitionName(start);
    if (existing.has(name)) continue;
    try {
      await x.tx(async (c) => {
        await c.query(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
        await c.query(
          `CREATE TABLE ${name} PARTITION OF usage_events FOR VALUES FROM (${start}) TO (${nextMonth(start)})`,
        );
      });
      created.push(name);
    } catch (err) {
      if (!COVERED.has((err as { code?: string }).code ?? "")) throw err;
    }
  }
  return created;
}

/**
 * The migration to a partitioned usage_events, in the migration runner's transaction: the old
 * table is set aside, the partitioned one made LIKE it (the same columns in the same order, with
 * their defaults and the identity `seq`, so nothing here restates them) and the same indexes
 * (built after the rows are in, which is faster than growing them row by row), a partition for
 * every month that holds rows (the store's migrate then makes the other months of monthsMade, in
 * one place for both), rows moved with their `seq` and the
 * identity continuing where the old one stood, and event ids copied into event_ids, which decides idempotency from
 * now on: a unique index on a partitioned table must contain the partition key, and the same
 * event id may come back with another time. usage_id stays unique through event_ids, which also
 * says where an event's row is (account and time): usage_events has no index on usage_id alone,
 * whose upkeep cost appends a tenth of their speed, and a lookup through event_ids reads one
 * month (shared/events.ts).
 */
export const partitionEvents = (): string => `
ALTER TABLE usage_events RENAME TO usage_events_unpartitioned;
ALTER TABLE usage_events_unpartitioned RENAME CONSTRAINT usage_events_pkey TO usage_events_unpartitioned_pkey;
ALTER SEQUENCE usage_events_seq_seq RENAME TO usage_events_unpartitioned_seq_seq;
DROP INDEX usage_events_usage_id, usage_events_idempotency, usage_events_account_ts, usage_events_user_ts;
CREATE TABLE usage_events (LIKE usage_events_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY)
  PARTITION BY RANGE (ts);
CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT;
DO $months$
DECLARE
  month timestamp;
BEGIN
  FOR month IN
    SELECT DISTINCT date_trunc('month', to_timestamp(ts / 1000) AT TIME ZONE 'UTC') FROM usage_events_unpartitioned
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%s) TO (%s)',
      'usage_events_' || to_char(month, 'YYYY_MM'),
      extract(epoch FROM month)::bigint * 1000,
      extract(epoch FROM month + interval '1 month')::bigint * 1000);
  END LOOP;
END
$months$;
INSERT INTO usage_events OVERRIDING SYSTEM VALUE SELECT * FROM usage_events_unpartitioned;
SELECT setval(pg_get_serial_sequence('usage_events', 'seq'), last_value, is_called) FROM usage_events_unpartitioned_seq_seq;
ALTER TABLE usage_events ADD PRIMARY KEY (seq, ts);
CREATE INDEX usage_events_account_ts ON usage_events(account_id, ts, seq);
CREATE INDEX usage_events_user_ts ON usage_events(user_id, ts, seq);
CREATE TABLE event_ids (
  account_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  usage_id TEXT NOT NULL,
  ts BIGINT NOT NULL
);
INSERT INTO event_ids (account_id, event_id, usage_id, ts)
  SELECT account_id, event_id, usage_id, ts FROM usage_events_unpartitioned;
ALTER TABLE event_ids ADD PRIMARY KEY (account_id, event_id), ADD UNIQUE (usage_id);
DROP TABLE usage_events_unpartitioned;
`;

/**
 * Events whose idempotency claim in event_ids is missing or names another row: such an event
 * could be stored a second time by a retry. `tally verify` lists them beside the rollups.
 * (A claim without its event is allowed: an archived month's claims are kept on purpose.)
 */
export const UNCLAIMED_EVENTS = `
SELECT e.account_id, e.event_id, e.usage_id, e.ts, i.usage_id AS claimed_usage_id, i.ts AS claimed_ts
FROM usage_events e
LEFT JOIN event_ids i ON i.account_id = e.account_id AND i.event_id = e.event_id
WHERE i.usage_id IS DISTINCT FROM e.usage_id OR i.ts IS DISTINCT FROM e.ts
ORDER BY e.account_id, e.event_id
LIMIT 1000`;
