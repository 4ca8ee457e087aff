import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SQLITE_RECHECK_MS } from "../../src/store/sqlite/reference-cache.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import { AT, createReferenceRows, plan } from "./reference-rows.ts";

/** Longer than the memo's recheck interval for other connections' commits. */
const settle = () => new Promise((r) => setTimeout(r, SQLITE_RECHECK_MS + 5));

/**
 * The SQLite store remembers keys, users, accounts, plans and licenses between changes. A change
 * through the same store must show at once; one through another connection (the `tally` CLI, a
 * second server process) within the memo's recheck interval.
 */
describe("SQLite reference memo", () => {
  let dir: string;
  let path: string;
  let a: SqliteStore;
  let b: SqliteStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "tally-memo-"));
    path = join(dir, "t.db");
    a = new SqliteStore(path);
    b = new SqliteStore(path);
    await createReferenceRows(a);
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a key revoked through another connection is revoked here within the recheck interval", async () => {
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBeNull();
    await b.revokeKey("key-1", AT + 1);
    await settle();
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBe(AT + 1);
  });

  it("a key revoked through this store is revoked on the next read", async () => {
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBeNull();
    await a.revokeKey("key-1", AT + 2);
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBe(AT + 2);
  });

  it("a plan set through another connection shows on the account", async () => {
    expect((await a.getAccount("acct"))?.planId).toBeNull();
    await b.upsertPlan(plan("pro", 10));
    expect(await a.getPlan("pro")).not.toBeNull();
    await b.createSubscription({
      id: "s1",
      accountId: "acct",
      planId: "pro",
      activatedAt: AT,
      createdAt: AT,
    });
    await settle();
    expect((await a.getAccount("acct"))?.planId).toBe("pro");
  });

  it("a license granted through another connection counts", async () => {
    await a.upsertModel(
      { id: "m", unit: "image", kind: "image", reportingEnabled: true, createdAt: AT, updatedAt: AT },
      null,
    );
    expect(await a.listLicenses("acct", "m")).toEqual([]);
    await b.createLicense({
      id: "l1",
      accountId: "acct",
      modelId: "m",
      startsAt: AT,
      endsAt: null,
      createdAt: AT,
    });
    await settle();
    expect((await a.listLicenses("acct", "m")).map((l) => l.id)).toEqual(["l1"]);
  });

  it("a key's last use moves with touchKeys, and what a caller gets cannot be altered", async () => {
    const before = await a.findKeyByHash("digest-1");
    expect(before?.lastUsedAt).toBeNull();
    await a.touchKeys(new Map([["key-1", AT + 5]]));
    expect((await a.findKeyByHash("digest-1"))?.lastUsedAt).toBe(AT + 5);
    expect((await b.findKeyByHash("digest-1"))?.lastUsedAt).toBe(AT + 5);
    expect(() => {
      (before as { revokedAt: number | null }).revokedAt = null;
    }).toThrow(TypeError);
  });
});
