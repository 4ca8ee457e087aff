import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { PostgresExecutor } from "../../src/store/postgres/executor.ts";
import { createPartitionsAhead, monthsMade, partitionName } from "../../src/store/postgres/partitions.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres/schema.ts";
import { EVENT_COLUMNS, eventValues } from "../../src/store/rows.ts";
import type { UsageEvent } from "../../src/store/store.ts";
import { captureLog } from "../support/capture-log.ts";
import { usageEvent } from "../support/events.ts";
import { freshPgSchema } from "../support/pg-schema.ts";
import { PG_URL } from "../support/stores.ts";

const DAY = 86_400_000;
const NOW = Date.now();
/** The start of the UTC month `n` months after the one of `at`. */
const monthStart = (at: number, n: number): number => {
  const d = new Date(at);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
};
/** The start of the UTC month `n` months from now's. */
const month = (n: number): number => monthStart(NOW, n);

const ev = (eventId: string, ts: number, over: Partial<UsageEvent> = {}): UsageEvent =>
  usageEvent({ accountId: "acct", eventId, ts, ...over });

/**
 * usage_events on PostgreSQL is partitioned by UTC month of ts, and event_ids decides
 * idempotency (docs/decisions/0020): rows land in their month (or the default partition), an id
 * retried with a time in another month stays a duplicate, the migration converts a database that
 * holds rows, and the months ahead are made idempotently, never out of the default partition.
 */
describe.runIf(PG_URL)("PostgreSQL event partitions (postgres)", () => {
  const pgSchema = freshPgSchema();
  const stores: PostgresStore[] = [];
  const open = async (migrate = true, log = captureLog()): Promise<PostgresStore> => {
    const store = new PostgresStore(PG_URL, { schema: pgSchema.schema, max: 4, log });
    stores.push(store);
    if (migrate) await store.migrate();
    return store;
  };
  const rows = async (sql: string, params: unknown[] = []) => (await pgSchema.client.query(sql, params)).rows;
  const count = async (sql: string, params: unknown[] = []) => Number((await rows(sql, params))[0].n);
  /** event_id -> the table that holds its row */
  const partitionsOf = async (): Promise<Record<string, string>> =>
    Object.fromEntries(
      (await rows("SELECT event_id, tableoid::regclass::text AS part FROM usage_events")).map((r) => [
        r.event_id,
        r.part,
      ]),
    );
  const partitions = async (): Promise<string[]> =>
    (
      await rows(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'usage_events'::regclass ORDER BY 1`,
      )
    ).map((r) => String(r.relname));

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  it("puts each event in its UTC month, and an instant no month covers in the default partition", async () => {
    const store = await open();
    expect(await partitions()).toEqual(
      [...monthsMade(NOW).map(partitionName), "usage_events_default"].sort(),
    );
    const lastMs = monthStart(NOW, 1) - 1;
    const events = [
      ev("now", NOW),
      ev("first-ms", month(0)),
      ev("last-ms", lastMs),
      ev("next", month(1) + DAY),
      ev("last-year", month(-11) + DAY),
      ev("past", Date.parse("2001-02-03T04:05:06Z")),
      ev("future", month(12)),
    ];
    // one by one (the per-event statement) and as a batch (the merge path)
    expect(await store.appendEvents([events[0]])).toEqual([
      { status: "inserted", usageId: events[0].usageId },
    ]);
    expect((await store.appendEvents(events.slice(1))).map((o) => o.status)).toEqual(
      Array(6).fill("inserted"),
    );
    expect(await partitionsOf()).toEqual({
      now: partitionName(month(0)),
      "first-ms": partitionName(month(0)),
      "last-ms": partitionName(month(0)),
      next: partitionName(month(1)),
      // a backfill within the year behind has its month; older ones go to the default partition
      "last-year": partitionName(month(-11)),
      past: "usage_events_default",
      future: "usage_events_default",
    });
    // a COPYed batch (100 or more) is routed the same way
    const big = Array.from({ length: 150 }, (_, i) => ev(`b-${i}`, i % 2 === 0 ? NOW : month(2) + i));
    expect((await store.appendEvents(big)).every((o) => o.status === "inserted")).toBe(true);
    const where = await partitionsOf();
    expect(where["b-0"]).toBe(partitionName(month(0)));
    expect(where["b-1"]).toBe(partitionName(month(2)));
    expect(await count("SELECT COUNT(*) AS n FROM event_ids")).toBe(157);
    expect(await store.verifyRollups()).toEqual([]);
  });

  it("verify names an event whose claim in event_ids is missing or names another row", async () => {
    const store = await open();
    await store.appendEvents([ev("v-1", NOW), ev("v-2", NOW), ev("v-3", NOW)]);
    expect(await store.verifyRollups()).toEqual([]);
    const [v1, v2] = await rows(
      "SELECT usage_id FROM usage_events WHERE event_id IN ('v-1', 'v-2') ORDER BY event_id",
    );
    await pgSchema.client.query("DELETE FROM event_ids WHERE event_id = 'v-1'");
    await pgSchema.client.query("UPDATE event_ids SET ts = ts + 1 WHERE event_id = 'v-2'");
    // a claim without its event (an archived month's) is not a difference
    await pgSchema.client.query(
      "INSERT INTO event_ids (account_id, event_id, usage_id, ts) SELECT account_id, 'archived', 'u-archived', ts FROM event_ids LIMIT 1",
    );
    const differences = await store.verifyRollups();
    expect(differences).toEqual([
      { table: "event_ids", key: "acct/v-1", expected: `${v1.usage_id} at ${NOW}`, actual: "no claim" },
      {
        table: "event_ids",
        key: "acct/v-2",
        expected: `${v2.usage_id} at ${NOW}`,
        actual: `${v2.usage_id} at ${NOW + 1}`,
      },
    ]);
  });

  it("answers an id retried in another month as a duplicate and stores it once, on every write path", async () => {
    const store = await open();
    const first = ev("e-1", NOW);
    await store.appendEvents([first]);
    // one event: the per-event statement
    const retry = ev("e-1", month(1) + 5);
    expect(await store.appendEvents([retry])).toEqual([{ status: "duplicate", usageId: first.usageId }]);
    // a small batch: the merge path
    const small = [ev("e-1", month(2)), ev("e-2", month(2))];
    const smallOut = await store.appendEvents(small);
    expect(smallOut).toEqual([
      { status: "duplicate", usageId: first.usageId },
      { status: "inserted", usageId: small[1].usageId },
    ]);
    // a big batch: COPY stops at the claimed id, and the batch is merged instead
    const big = [ev("e-2", month(3)), ...Array.from({ length: 120 }, (_, i) => ev(`c-${i}`, NOW - i))];
    const bigOut = await store.appendEvents(big);
    expect(bigOut[0]).toEqual({ status: "duplicate", usageId: small[1].usageId });
    expect(bigOut.slice(1).every((o) => o.status === "inserted")).toBe(true);
    // the same ids on a COPY with no id claimed yet, then the whole batch again
    const fresh = Array.from({ length: 120 }, (_, i) => ev(`d-${i}`, NOW));
    expect((await store.appendEvents(fresh)).every((o) => o.status === "inserted")).toBe(true);
    const again = await store.appendEvents(fresh.map((e) => ev(e.eventId, month(1))));
    expect(again).toEqual(fresh.map((e) => ({ status: "duplicate", usageId: e.usageId })));
    expect(await count("SELECT COUNT(*) AS n FROM usage_events WHERE event_id = 'e-1'")).toBe(1);
    expect(await count("SELECT COUNT(*) AS n FROM usage_events")).toBe(2 + 120 + 120);
    expect(await count("SELECT COUNT(*) AS n FROM event_ids")).toBe(2 + 120 + 120);
    // a deleted event keeps its id: a late retry in another month stays a duplicate
    expect(
      await store.deleteEvent("acct", first.usageId, {
        id: "a-1",
        accountId: "acct",
        usageId: first.usageId,
        action: "delete",
        actorKeyId: null,
        actorUserId: null,
        at: NOW,
      }),
    ).toBe(true);
    expect(await store.appendEvents([ev("e-1", month(2))])).toEqual([
      { status: "duplicate", usageId: first.usageId },
    ]);
    expect(await store.verifyRollups()).toEqual([]);
  });

  it("stores each id once when two instances append the same ids at once", async () => {
    const [a, b] = [await open(), await open()];
    const ids = Array.from({ length: 400 }, (_, i) => `x-${i}`);
    // each instance sends every id, with its own usage ids and times in different months, in
    // batches of 1 (per-event statement), 20 (merge) and 200 (COPY)
    const sends = (store: PostgresStore, at: number) => {
      const events = ids.map((id) => ev(id, at));
      return [
        ...events.slice(0, 20).map((e) => store.appendEvents([e])),
        store.appendEvents(events.slice(20, 40)),
        store.appendEvents(events.slice(40, 200)),
        store.appendEvents(events.slice(200, 400)),
      ];
    };
    const outcomes = (await Promise.all([...sends(a, NOW), ...sends(b, month(1) + 7)])).flat();
    const inserted = outcomes.filter((o) => o.status === "inserted");
    expect(inserted).toHaveLength(ids.length);
    expect(await count("SELECT COUNT(*) AS n FROM usage_events")).toBe(ids.length);
    expect(await count("SELECT COUNT(DISTINCT event_id) AS n FROM usage_events")).toBe(ids.length);
    expect(await count("SELECT COUNT(*) AS n FROM event_ids")).toBe(ids.length);
    // every duplicate names the stored usage id
    const stored = new Set((await rows("SELECT usage_id FROM usage_events")).map((r) => String(r.usage_id)));
    expect(outcomes.every((o) => stored.has(o.usageId))).toBe(true);
    expect(await a.verifyRollups()).toEqual([]);
  });

  it("converts a database the earlier migrations filled: rows, seq and its sequence, ids", async () => {
    await pgSchema.client.query("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    const before = POSTGRES_MIGRATIONS.length - 1;
    for (const m of POSTGRES_MIGRATIONS.slice(0, before)) await pgSchema.client.query(m);
    await pgSchema.client.query("INSERT INTO meta (key, value) VALUES ('schema_version', $1)", [
      String(before),
    ]);
    const old = [
      ev("o-1", Date.parse("2024-11-30T23:59:59.999Z"), { metadata: { note: 'tab\there "q"' } }),
      ev("o-2", Date.parse("2024-12-01T00:00:00Z"), { userId: "u", keyId: "k" }),
      ev("o-3", Date.parse("2024-12-15T00:00:00Z")),
      ev("o-4", NOW),
    ];
    for (const e of old) {
      await pgSchema.client.query(
        `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
        eventValues(e).map((v) => (typeof v === "bigint" ? v.toString() : v)),
      );
    }
    // a rolled-back insert moved the sequence past the last row: the new identity goes on from there
    await pgSchema.client.query("BEGIN");
    await pgSchema.client.query(
      `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
      eventValues(ev("gone", NOW)).map((v) => (typeof v === "bigint" ? v.toString() : v)),
    );
    await pgSchema.client.query("ROLLBACK");
    await pgSchema.client.query(
      "UPDATE usage_events SET deleted_at = 1, updated_at = 1 WHERE event_id = 'o-3'",
    );
    const columnsOf = async () =>
      (await pgSchema.client.query("SELECT * FROM usage_events LIMIT 0")).fields.map((f) => f.name);
    const columns = await columnsOf();
    const stored = await rows("SELECT * FROM usage_events ORDER BY seq");

    const store = await open();
    expect((await rows("SELECT value FROM meta WHERE key = 'schema_version'"))[0].value).toBe(
      String(POSTGRES_MIGRATIONS.length),
    );
    // the same columns in the same order, the same rows with their seq
    expect(await columnsOf()).toEqual(columns);
    expect(await rows("SELECT * FROM usage_events ORDER BY seq")).toEqual(stored);
    expect(await partitionsOf()).toEqual({
      "o-1": "usage_events_2024_11",
      "o-2": "usage_events_2024_12",
      "o-3": "usage_events_2024_12",
      "o-4": partitionName(month(0)),
    });
    expect(await rows("SELECT account_id, event_id, usage_id, ts FROM event_ids ORDER BY event_id")).toEqual(
      old.map((e) => ({ account_id: "acct", event_id: e.eventId, usage_id: e.usageId, ts: String(e.ts) })),
    );
    // the old table, its sequence and its unique index are gone; idempotency is event_ids'
    expect(
      await count(
        "SELECT COUNT(*) AS n FROM pg_class WHERE relname LIKE 'usage_events_unpartitioned%' AND relnamespace = $1::regnamespace",
        [pgSchema.schema],
      ),
    ).toBe(0);
    // old ids are duplicates (deleted ones too), in any month; the identity continues past the rolled-back number
    expect(await store.appendEvents([ev("o-1", NOW)])).toEqual([
      { status: "duplicate", usageId: old[0].usageId },
    ]);
    expect(await store.appendEvents([ev("o-3", month(1))])).toEqual([
      { status: "duplicate", usageId: old[2].usageId },
    ]);
    const next = ev("n-1", NOW);
    await store.appendEvents([next]);
    expect((await rows("SELECT seq FROM usage_events WHERE event_id = 'n-1'"))[0].seq).toBe(
      String(old.length + 2),
    );
  });

  it("makes the months ahead once, with two callers at once, and reports only what it made", async () => {
    const [a, b] = [await open(), await open()];
    const later = monthStart(NOW, 5);
    const wanted = monthsMade(later).map(partitionName);
    const [x, y] = [new PostgresExecutor(a.pool), new PostgresExecutor(b.pool)];
    const [made1, made2] = await Promise.all([
      createPartitionsAhead(x, a.pool, later),
      createPartitionsAhead(y, b.pool, later),
    ]);
    // months 4 to 8 are new (months -12 to 3 came with the migration); months -7 to 3 were there
    expect([...made1, ...made2].sort()).toEqual(
      [4, 5, 6, 7, 8].map((n) => partitionName(monthStart(NOW, n))).sort(),
    );
    expect(await createPartitionsAhead(x, a.pool, later)).toEqual([]);
    expect(await createPartitionsAhead(x, a.pool, NOW)).toEqual([]);
    const all = await partitions();
    for (const name of wanted) expect(all).toContain(name);
    expect(all).not.toContain(partitionName(monthStart(NOW, 9)));
    expect(all).not.toContain(partitionName(monthStart(NOW, -13)));
    // and new rows go into the months made
    await a.appendEvents([ev("late", later + DAY)]);
    expect((await partitionsOf()).late).toBe(partitionName(later));
  });

  it("leaves a month whose rows sit in the default partition there, and makes the others", async () => {
    const store = await open();
    const stray = ev("stray", monthStart(NOW, 6) + 3 * DAY);
    await store.appendEvents([stray]);
    expect((await partitionsOf()).stray).toBe("usage_events_default");
    const x = new PostgresExecutor(store.pool);
    const made = await createPartitionsAhead(x, store.pool, monthStart(NOW, 5));
    expect(made.sort()).toEqual([4, 5, 7, 8].map((n) => partitionName(monthStart(NOW, n))).sort());
    expect(await partitions()).not.toContain(partitionName(monthStart(NOW, 6)));
    // the month's later events join it in the default partition, and the id still decides
    await store.appendEvents([ev("stray-2", monthStart(NOW, 6) + DAY)]);
    expect((await partitionsOf())["stray-2"]).toBe("usage_events_default");
    expect(await store.appendEvents([ev("stray", NOW)])).toEqual([
      { status: "duplicate", usageId: stray.usageId },
    ]);
    // a second try is quiet: the month stays where it is
    expect(await createPartitionsAhead(x, store.pool, monthStart(NOW, 5))).toEqual([]);
  });

  it("makes a missing month at migrate and logs it; a month kept waiting for its lock is logged, not fatal", async () => {
    await open();
    const last = partitionName(month(3));
    await pgSchema.client.query(`DROP TABLE ${last}`);
    const log = captureLog();
    await open(true, log);
    expect(await partitions()).toContain(last);
    expect(log.lines).toContainEqual({
      level: "info",
      obj: { partitions: [last] },
      msg: "usage_events: months made",
    });

    // a long reader holds usage_events: the CREATE gives up after its lock_timeout
    await pgSchema.client.query(`DROP TABLE ${last}`);
    const reader = new pg.Client({ connectionString: PG_URL });
    await reader.connect();
    try {
      await reader.query(`SET search_path = ${pgSchema.schema}`);
      await reader.query("BEGIN");
      await reader.query("SELECT COUNT(*) FROM usage_events");
      const waited = captureLog();
      await open(true, waited);
      expect(waited.lines.map((l) => [l.level, l.msg])).toEqual([
        ["warn", "usage_events: a month ahead waited too long for its lock; the next tick tries again"],
      ]);
      expect(await partitions()).not.toContain(last);
    } finally {
      await reader.end();
    }
  });

  it("claims imported events' ids, so a retry after tally import is a duplicate", async () => {
    const source = await open();
    const events = [ev("i-1", NOW), ev("i-2", month(1))];
    await source.appendEvents(events);
    const { rows: exported } = await source.exportPage("usage_events", null, 100);
    await pgSchema.client.query(`DROP SCHEMA ${pgSchema.schema} CASCADE`);
    await pgSchema.client.query(`CREATE SCHEMA ${pgSchema.schema}`);
    const target = await open();
    await target.importRows("usage_events", exported);
    expect(await count("SELECT COUNT(*) AS n FROM event_ids")).toBe(2);
    expect(await target.appendEvents([ev("i-1", month(2)), ev("i-3", NOW)])).toEqual([
      { status: "duplicate", usageId: events[0].usageId },
      { status: "inserted", usageId: expect.any(String) },
    ]);
  });
});
