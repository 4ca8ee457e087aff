import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEDUP_WINDOW_MS, SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import type { UsageEvent } from "../../src/store/store.ts";
import { usageEvent } from "../support/events.ts";

let seq = 0;
function event(eventId: string, createdAt = Date.parse("2025-06-01T00:00:00Z")): UsageEvent {
  seq++;
  return usageEvent({ usageId: `u-${seq}-${eventId}`, accountId: "acct", eventId, ts: createdAt });
}

/** The SQLite store decides duplicates with an in-memory index; these pin down its edges. */
describe("SQLite idempotency without a unique index", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tally-idem-"));
    path = join(dir, "t.db");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("remembers ids across a reopen (the index is rebuilt from the events)", async () => {
    const a = new SqliteStore(path);
    const [first] = await a.appendEvents([event("x")]);
    await a.close();
    const b = new SqliteStore(path);
    const [again] = await b.appendEvents([event("x")]);
    expect(again).toEqual({ status: "duplicate", usageId: first.usageId });
    await b.close();
  });

  it("sees ids committed by another connection to the same file", async () => {
    const a = new SqliteStore(path);
    const b = new SqliteStore(path);
    await a.appendEvents([event("warm-a")]);
    await b.appendEvents([event("warm-b")]);
    const [fromA] = await a.appendEvents([event("shared")]);
    const [fromB] = await b.appendEvents([event("shared")]);
    expect(fromA.status).toBe("inserted");
    expect(fromB).toEqual({ status: "duplicate", usageId: fromA.usageId });
    await a.close();
    await b.close();
  });

  it("keeps ids for the whole dedup window after a reopen", async () => {
    const a = new SqliteStore(path);
    const now = Date.parse("2025-06-01T00:00:00Z");
    await a.appendEvents([event("old", now - DEDUP_WINDOW_MS + 1000), event("new", now)]);
    await a.close();
    const b = new SqliteStore(path);
    const out = await b.appendEvents([event("old", now), event("new", now)]);
    expect(out.map((o) => o.status)).toEqual(["duplicate", "duplicate"]);
    await b.close();
  });

  it("does not remember ids of a transaction that failed", async () => {
    const a = new SqliteStore(path);
    const bad = { ...event("bad"), unit: null as unknown as string };
    await expect(a.appendEvents([event("rolled-back"), bad])).rejects.toThrow();
    const [retry] = await a.appendEvents([event("rolled-back")]);
    expect(retry.status).toBe("inserted");
    await a.close();
  });
});
