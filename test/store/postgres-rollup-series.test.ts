import { describe, expect, it } from "vitest";
import { ALL_TIME, QueryService } from "../../src/query/usage-query.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres/schema.ts";
import { LEVEL_CODE } from "../../src/store/rollup-delta.ts";
import { EVENT_COLUMNS as ALL_EVENT_COLUMNS, eventValues as allEventValues } from "../../src/store/rows.ts";
import type { UsageEvent } from "../../src/store/store.ts";
import { freshPgSchema } from "../support/pg-schema.ts";

// the event columns of the old schema these tests build by hand (meter lines came later, last)
const EVENT_COLUMNS = ALL_EVENT_COLUMNS.filter((c) => c !== "meters");
const eventValues = (e: UsageEvent) => allEventValues(e).slice(0, EVENT_COLUMNS.length);

import { PG_URL } from "../support/stores.ts";
import { event, schema1Rollups, T0, WIDE_ROLLUP_COLUMNS } from "./old-schema-events.ts";

const HOUR = 3_600_000;

/**
 * PostgreSQL keys rollup sums by an interned series id (migration 5). A database written by
 * schema 1 (wide rollup rows, no four-hour level) migrates with every sum intact, and series ids
 * created by a transaction that rolled back are not remembered.
 */
describe.runIf(PG_URL)("PostgreSQL rollup series (postgres)", () => {
  const pgSchema = freshPgSchema();

  it("keeps every rollup sum and fills the four-hour level", async () => {
    // 60 events 47 minutes apart: two UTC midnights, several four-hour blocks, two keys
    const events = Array.from({ length: 60 }, (_, i) =>
      event(i, { ts: T0 - 20 * HOUR + i * 47 * 60_000 + 1234 }),
    );
    await pgSchema.client.query("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    await pgSchema.client.query(POSTGRES_MIGRATIONS[0]);
    await pgSchema.client.query("INSERT INTO meta (key, value) VALUES ('schema_version', '1')");
    for (const e of events) {
      await pgSchema.client.query(
        `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
        eventValues(e).map((v) => (typeof v === "bigint" ? v.toString() : v)),
      );
    }
    // schema 1's rollups: wide rows, minute, hour and day only
    const old = schema1Rollups(events);
    for (const values of old) {
      await pgSchema.client.query(
        `INSERT INTO usage_rollups (${WIDE_ROLLUP_COLUMNS}) VALUES (${values.map((_, i) => `$${i + 1}`).join(", ")})`,
        values.map((v) => (typeof v === "bigint" ? v.toString() : v)),
      );
    }

    const store = new PostgresStore(PG_URL, { schema: pgSchema.schema, max: 2 });
    try {
      await store.migrate();
      expect(
        (await pgSchema.client.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value,
      ).toBe(String(POSTGRES_MIGRATIONS.length));
      expect(await store.verifyRollups()).toEqual([]);
      const count = async (sql: string) => Number((await pgSchema.client.query(sql)).rows[0].n);
      expect(
        await count(`SELECT COUNT(*) AS n FROM usage_rollups WHERE level <> ${LEVEL_CODE.fourHours}`),
      ).toBe(old.length);
      const query = new QueryService(store);
      const [line] = (await query.totals({ accountId: "acct", range: ALL_TIME })).filter(
        (l) => l.modelId === "m-a",
      );
      const mA = events.filter((e) => e.modelId === "m-a");
      expect(line.requests).toBe(mA.length);
      expect(line.cost).toBe(mA.reduce((s, e) => s + e.cost, 0n));
      // a New York day (04:00 to 04:00 UTC in June) reads the four-hour level
      const start = Date.parse("2025-06-01T04:00:00Z");
      const inDay = events.filter((e) => e.ts >= start && e.ts < start + 24 * HOUR);
      const [lines] = await query.series({ accountId: "acct", buckets: [{ start, end: start + 24 * HOUR }] });
      expect(lines.reduce((s, l) => s + l.requests, 0)).toBe(inDay.length);
      expect(lines.reduce((s, l) => s + l.cost, 0n)).toBe(inDay.reduce((s, e) => s + e.cost, 0n));
      // new events land on the migrated series, not on new ones
      const series = await count("SELECT COUNT(*) AS n FROM rollup_series");
      await store.appendEvents([event(100), event(101)]);
      expect(await count("SELECT COUNT(*) AS n FROM rollup_series")).toBe(series);
      expect(await store.verifyRollups()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("forgets series ids whose transaction rolled back", async () => {
    const store = new PostgresStore(PG_URL, { schema: pgSchema.schema, max: 2 });
    try {
      await store.migrate();
      await store.appendEvents([event(0), event(1)]);
      // a batch with a new model creates its series inside the transaction, then its rollups fail
      await pgSchema.client.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN RAISE EXCEPTION 'disk on fire'; END $f$`);
      await pgSchema.client.query(
        "CREATE TRIGGER refuse BEFORE INSERT ON usage_rollups FOR EACH ROW EXECUTE FUNCTION refuse()",
      );
      await expect(
        store.appendEvents([event(2, { modelId: "m-new" }), event(3, { modelId: "m-new" })]),
      ).rejects.toThrow("disk on fire");
      expect(
        Number(
          (await pgSchema.client.query("SELECT COUNT(*) AS n FROM rollup_series WHERE model_id = 'm-new'"))
            .rows[0].n,
        ),
      ).toBe(0);
      await pgSchema.client.query("DROP TRIGGER refuse ON usage_rollups");
      // had the rolled-back ids stayed remembered, these rollups would name series that are not there
      await store.appendEvents([event(4, { modelId: "m-new" }), event(5, { modelId: "m-new" })]);
      expect(await store.verifyRollups()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
