import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { PG_URL } from "../support/stores.ts";
import { AT, createReferenceRows, plan } from "./reference-rows.ts";

/** Polls `f` until it returns true, for at most `ms`; the elapsed time, or fails. */
async function within(ms: number, f: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (!(await f())) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** Whether a second read of the key goes to the database. */
async function cached(store: PostgresStore): Promise<boolean> {
  await store.findKeyByHash("digest-1");
  const query = vi.spyOn(store.pool, "query");
  try {
    await store.findKeyByHash("digest-1");
    return query.mock.calls.length === 0;
  } finally {
    query.mockRestore();
  }
}

async function admin<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

/**
 * The PostgreSQL store remembers keys, users, accounts, plans and licenses while it hears the
 * reference tables' change notifications. Two stores on one schema stand for two instances.
 */
describe.runIf(PG_URL)("PostgreSQL reference memo (postgres)", () => {
  let schema: string;
  let a: PostgresStore;
  let b: PostgresStore;
  beforeEach(async () => {
    schema = `tally_test_${randomBytes(6).toString("hex")}`;
    await admin((c) => c.query(`CREATE SCHEMA ${schema}`));
    a = new PostgresStore(PG_URL, { schema, max: 2 });
    b = new PostgresStore(PG_URL, { schema, max: 2 });
    await a.migrate();
    await b.migrate();
    await createReferenceRows(a);
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await admin((c) => c.query(`DROP SCHEMA ${schema} CASCADE`));
  });

  it("reads a key once while nothing changes", async () => {
    // the setup's own writes notify too: wait until they have arrived
    await within(2_000, () => cached(a));
    const query = vi.spyOn(a.pool, "query");
    for (let i = 0; i < 5; i++) expect((await a.findKeyByHash("digest-1"))?.id).toBe("key-1");
    expect(query).not.toHaveBeenCalled();
  });

  it("a key revoked by another instance is refused here as soon as its notification arrives", async () => {
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBeNull();
    await b.revokeKey("key-1", AT + 1);
    await within(2_000, async () => (await a.findKeyByHash("digest-1"))?.revokedAt === AT + 1);
  });

  it("an account disabled, or a key rotated, by another instance is seen here once notified", async () => {
    await within(2_000, () => cached(a));
    expect((await a.getAccount("acct"))?.isEnabled).toBe(true);
    const account = (await b.getAccount("acct"))!;
    const entry = {
      id: "audit-1",
      accountId: "acct",
      usageId: "",
      action: "update" as const,
      actorKeyId: null,
    };
    const audit = {
      ...entry,
      actorUserId: null,
      at: AT + 1,
      before: null,
      after: null,
      resourceType: "account",
    };
    await b.updateAccount({ ...account, isEnabled: false }, { ...audit, resourceId: "acct" });
    await within(2_000, async () => (await a.getAccount("acct"))?.isEnabled === false);
    const key = (await b.getKey("key-1"))!;
    await b.updateKey(
      { ...key, hash: "digest-2" },
      { ...audit, id: "audit-2", resourceType: "key", resourceId: "key-1" },
    );
    await within(2_000, async () => (await a.findKeyByHash("digest-1")) === null);
    expect((await a.findKeyByHash("digest-2"))?.id).toBe("key-1");
  });

  it("a subscription ended by another instance is seen here once notified", async () => {
    await a.upsertPlan(plan("p", 5));
    await a.createSubscription({
      id: "sub-1",
      accountId: "acct",
      planId: "p",
      activatedAt: AT,
      createdAt: AT,
    });
    // once the setup's notifications have arrived, a remembers the subscriptions it reads
    await within(2_000, () => cached(a));
    expect((await a.listSubscriptions("acct"))[0]?.endsAt ?? null).toBeNull();
    const audit = {
      id: "audit-s",
      accountId: "acct",
      usageId: "",
      action: "update" as const,
      actorKeyId: null,
      actorUserId: null,
      at: AT + 1,
      before: null,
      after: null,
      resourceType: "subscription",
      resourceId: "sub-1",
    };
    await b.endSubscription("sub-1", AT + 1, audit);
    await within(2_000, async () => (await a.listSubscriptions("acct"))[0]?.endsAt === AT + 1);
  });

  it("a change through this instance shows at once", async () => {
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBeNull();
    await a.revokeKey("key-1", AT + 1);
    expect((await a.findKeyByHash("digest-1"))?.revokedAt).toBe(AT + 1);
    await a.upsertPlan(plan("p", 5));
    expect((await a.getPlan("p"))?.requestsPerMinute).toBe(5);
  });

  it("remembers nothing while its listener is gone, and listens again", async () => {
    // the setup's notifications must have arrived, or one of them would empty a's memo below
    await new Promise((r) => setTimeout(r, 200));
    await within(2_000, () => cached(a));
    await within(2_000, () => cached(b));
    // the database drops a's listening connection
    const listener = (a as unknown as { listener: pg.Client & { processID: number } }).listener;
    await admin((c) => c.query("SELECT pg_terminate_backend($1)", [listener.processID]));
    // a change made without any instance hearing it: straight into the table, triggers off
    await admin(async (c) => {
      await c.query(`SET search_path = ${schema}`);
      await c.query("SET session_replication_role = replica");
      await c.query("UPDATE api_keys SET revoked_at = $1", [AT + 2]);
    });
    // b still listens but heard nothing (such maintenance needs a restart, decision 0010);
    // a, without a listener, reads the table
    expect((await b.findKeyByHash("digest-1"))?.revokedAt).toBeNull();
    // (well before its listener is back, a second later, which would also empty its memo)
    await within(500, async () => (await a.findKeyByHash("digest-1"))?.revokedAt === AT + 2);
    // and a remembers again once it listens again
    await within(5_000, () => cached(a));
  });
});
