import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import { storeError } from "../../src/store/store-errors.ts";
import { PG_URL } from "../support/stores.ts";

/** What the core sees of a driver error: CONFLICT, UNAVAILABLE with the driver's error as cause, or the error itself. */
const seen = (err: unknown) =>
  err instanceof DomainError
    ? { code: err.code, cause: (err as { cause?: unknown }).cause }
    : { code: "PASSED" };

const driverError = (code: string, message = `driver says ${code}`) =>
  Object.assign(new Error(message), { code });

describe("driver errors inside the store", () => {
  it.each([
    ["23505", "CONFLICT"],
    ["SQLITE_CONSTRAINT_UNIQUE", "CONFLICT"],
    ["SQLITE_CONSTRAINT_PRIMARYKEY", "CONFLICT"],
    ["ECONNREFUSED", "UNAVAILABLE"],
    ["ECONNRESET", "UNAVAILABLE"],
    ["ETIMEDOUT", "UNAVAILABLE"],
    ["57014", "UNAVAILABLE"], // statement_timeout
    ["57P01", "UNAVAILABLE"], // admin shutdown
    ["08006", "UNAVAILABLE"], // connection failure
    ["53300", "UNAVAILABLE"], // too many connections
    ["SQLITE_FULL", "UNAVAILABLE"],
    ["SQLITE_IOERR", "UNAVAILABLE"],
    ["SQLITE_IOERR_WRITE", "UNAVAILABLE"],
    ["SQLITE_READONLY", "UNAVAILABLE"],
    ["SQLITE_READONLY_DBMOVED", "UNAVAILABLE"],
    ["SQLITE_BUSY", "UNAVAILABLE"],
    ["SQLITE_BUSY_SNAPSHOT", "UNAVAILABLE"],
    ["SQLITE_CONSTRAINT_FOREIGNKEY", "PASSED"],
    ["42P01", "PASSED"], // undefined table: a bug, not an outage
    ["SQLITE_ERROR", "PASSED"],
  ])("%s -> %s", (code, expected) => {
    const err = driverError(code);
    const out = seen(storeError(err));
    expect(out.code).toBe(expected);
    if (expected !== "PASSED") expect(out.cause).toBe(err);
    else expect(storeError(err)).toBe(err);
  });

  it.each([
    "Connection terminated unexpectedly",
    "Connection terminated due to connection timeout",
    "timeout exceeded when trying to connect",
    "Query read timeout",
  ])("pg's '%s' (no code) is UNAVAILABLE", (message) => {
    expect(seen(storeError(new Error(message))).code).toBe("UNAVAILABLE");
    expect(seen(storeError(new Error("something else"))).code).toBe("PASSED");
  });

  it("a SQLite file whose directory cannot be made fails naming the path", () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-err-"));
    try {
      const file = join(dir, "not-a-dir");
      writeFileSync(file, "x");
      const path = join(file, "sub", "tally.db");
      const err = (() => {
        try {
          new SqliteStore(path);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).code).toBe("UNAVAILABLE");
      expect((err as DomainError).message).toContain(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === "linux")(
    "a SQLite file in a read-only directory fails naming the path",
    () => {
      // /proc takes no new files, not even from root
      const path = "/proc/tally-test.db";
      expect(() => new SqliteStore(path)).toThrow(expect.objectContaining({ code: "UNAVAILABLE" }));
      expect(() => new SqliteStore(path)).toThrow(path);
    },
  );

  it("a duplicate username is a CONFLICT on SQLite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-err-"));
    const store = new SqliteStore(join(dir, "t.db"));
    try {
      await store.createAccount({ id: "a", name: "A", isEnabled: true, planId: null, createdAt: 1 });
      const user = {
        id: "u1",
        accountId: "a",
        username: "x",
        role: "admin" as const,
        nodeId: null,
        createdAt: 1,
      };
      await store.createUser(user);
      const err = await store.createUser({ ...user, id: "u2" }).catch((e: unknown) => e);
      expect(seen(err).code).toBe("CONFLICT");
      expect((seen(err).cause as { code?: string }).code).toBe("SQLITE_CONSTRAINT_UNIQUE");
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("PostgreSQL that does not answer", () => {
  /** A server that accepts connections and never says a word: a frozen database. */
  let silent: Server;
  const sockets: Socket[] = [];
  let port = 0;
  beforeAll(async () => {
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    port = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("a refused connection is UNAVAILABLE with the driver's error as cause", async () => {
    // the silent server's port, closed again: nothing listens there
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const closed = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const store = new PostgresStore(`postgres://postgres@127.0.0.1:${closed}/x`);
    try {
      const err = await store.ping().catch((e: unknown) => e);
      expect(seen(err).code).toBe("UNAVAILABLE");
      expect((seen(err).cause as { code?: string }).code).toBe("ECONNREFUSED");
    } finally {
      await store.close();
    }
  });

  it("a frozen server gives an error within the connect timeout, not a hang", async () => {
    const store = new PostgresStore(`postgres://postgres@127.0.0.1:${port}/x`, { connectTimeoutMs: 300 });
    const started = performance.now();
    try {
      const err = await store.getAccount("a").catch((e: unknown) => e);
      expect(seen(err).code).toBe("UNAVAILABLE");
      expect(performance.now() - started).toBeLessThan(3_000);
    } finally {
      await store.close();
    }
  });

  it.runIf(PG_URL)("a statement held up beyond the statement timeout is UNAVAILABLE", async () => {
    const schema = `tally_test_timeout_${process.pid}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const store = new PostgresStore(PG_URL, { schema, statementTimeoutMs: 300 });
    try {
      await store.migrate();
      // another session holds the table: reads wait for it
      await admin.query("BEGIN");
      await admin.query(`LOCK TABLE ${schema}.models IN ACCESS EXCLUSIVE MODE`);
      const started = performance.now();
      const err = await store.getModel("m").catch((e: unknown) => e);
      expect(seen(err).code).toBe("UNAVAILABLE");
      expect((seen(err).cause as { code?: string }).code).toBe("57014");
      expect(performance.now() - started).toBeLessThan(3_000);
      await admin.query("ROLLBACK");
      expect(await store.getModel("m")).toBeNull();
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});
