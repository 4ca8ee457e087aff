import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ALL_TIME, QueryService } from "../../src/query/usage-query.ts";
import { LEVEL_CODE } from "../../src/store/rollup-delta.ts";
import { EVENT_COLUMNS as ALL_EVENT_COLUMNS, eventValues as allEventValues } from "../../src/store/rows.ts";
import type { UsageEvent } from "../../src/store/store.ts";

// the event columns of the old schema these tests build by hand (meter lines came later, last)
const EVENT_COLUMNS = ALL_EVENT_COLUMNS.filter((c) => c !== "meters");
const eventValues = (e: UsageEvent) => allEventValues(e).slice(0, EVENT_COLUMNS.length);

import { SQLITE_MIGRATIONS } from "../../src/store/sqlite/schema.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import { event, schema1Rollups, WIDE_ROLLUP_COLUMNS } from "./old-schema-events.ts";

/**
 * SQLite keys rollup sums by an interned series id (migration 2). These pin down that a database
 * written before the change keeps its rollups, and that ids created by a failed transaction are
 * not reused.
 */
describe("SQLite rollup series", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tally-series-"));
    path = join(dir, "t.db");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("migrates a schema-1 database: rollups keep their sums and still match the events", async () => {
    const events = Array.from({ length: 40 }, (_, i) => event(i));
    // a database as schema 1 wrote it: wide rollup rows keyed by their dimensions
    const v1 = new Database(path);
    v1.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    v1.exec(SQLITE_MIGRATIONS[0]);
    v1.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '1')").run();
    const insert = v1.prepare(
      `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`,
    );
    const rollup = v1.prepare(
      `INSERT INTO usage_rollups (${WIDE_ROLLUP_COLUMNS}) VALUES (${WIDE_ROLLUP_COLUMNS.split(", ")
        .map(() => "?")
        .join(", ")})`,
    );
    v1.transaction(() => {
      for (const e of events) insert.run(...eventValues(e));
      // schema 1 had no four-hour level (a later migration fills it from the hours)
      for (const values of schema1Rollups(events)) rollup.run(...values);
    })();
    const wideRows = Number((v1.prepare("SELECT COUNT(*) AS n FROM usage_rollups").get() as { n: number }).n);
    v1.close();

    const store = new SqliteStore(path);
    try {
      expect(await store.verifyRollups()).toEqual([]);
      const db = store.db;
      expect(
        Number(
          db.prepare("SELECT COUNT(*) FROM usage_rollups WHERE level <> ?").pluck().get(LEVEL_CODE.fourHours),
        ),
      ).toBe(wideRows);
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe(
        String(SQLITE_MIGRATIONS.length),
      );
      const totals = await new QueryService(store).totals({ accountId: "acct", range: ALL_TIME });
      const byModel = Object.fromEntries(totals.map((l) => [l.modelId, l]));
      const expected = (model: string) => events.filter((e) => e.modelId === model);
      for (const model of ["m-a", "m-b"]) {
        expect(byModel[model].requests).toBe(expected(model).length);
        expect(byModel[model].cost).toBe(expected(model).reduce((s, e) => s + e.cost, 0n));
      }
      // new events land on the migrated series, not on new ones
      const seriesBefore = db.prepare("SELECT COUNT(*) FROM rollup_series").pluck().get();
      await store.appendEvents([event(100), event(101)]);
      expect(db.prepare("SELECT COUNT(*) FROM rollup_series").pluck().get()).toBe(seriesBefore);
      expect(await store.verifyRollups()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("forgets series ids whose transaction rolled back", async () => {
    const store = new SqliteStore(path);
    try {
      await store.appendEvents([event(0)]);
      // the next append creates a new series (a new model), then fails inside the same transaction
      // (its series row goes in first, then its rollup rows, which fail)
      store.db.exec(
        "CREATE TRIGGER fail_rollups BEFORE INSERT ON usage_rollups BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
      );
      await expect(store.appendEvents([event(1, { modelId: "m-new" })])).rejects.toThrow("disk on fire");
      expect(
        store.db.prepare("SELECT COUNT(*) FROM rollup_series WHERE model_id = 'm-new'").pluck().get(),
      ).toBe(0);
      store.db.exec("DROP TRIGGER fail_rollups");
      // had the rolled-back id stayed cached, these rollups would point at a series that is not there
      await store.appendEvents([event(2, { modelId: "m-new" })]);
      expect(await store.verifyRollups()).toEqual([]);
      const totals = await new QueryService(store).totals({ accountId: "acct", range: ALL_TIME });
      expect(totals.find((l) => l.modelId === "m-new")?.requests).toBe(1);
    } finally {
      await store.close();
    }
  });
});
