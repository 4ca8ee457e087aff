import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import type { Store } from "../../src/store/store.ts";

/** A fresh, migrated store and the function that removes every trace of it. */
export interface TestStore {
  store: Store;
  /** For child processes: env that points a Tally server at this same store. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export interface StoreKind {
  name: "sqlite" | "postgres";
  create(): Promise<TestStore>;
}

export const PG_URL = process.env.TALLY_TEST_DATABASE_URL || "";
export const REDIS_URL = process.env.TALLY_TEST_REDIS_URL || "";

async function sqlite(): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), "tally-test-"));
  const path = join(dir, "tally.db");
  const store = new SqliteStore(path);
  await store.migrate();
  return {
    store,
    env: { TALLY_DB: path },
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Each PostgreSQL test store lives in its own schema, dropped afterwards. */
async function postgres(): Promise<TestStore> {
  const schema = `tally_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const store = new PostgresStore(PG_URL, { schema, max: 4 });
  await store.migrate();
  const url = new URL(PG_URL);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    store,
    env: { DATABASE_URL: url.toString() },
    async cleanup() {
      await store.close();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** SQLite always; PostgreSQL when TALLY_TEST_DATABASE_URL is set (CI sets it). */
export function storeKinds(): StoreKind[] {
  const kinds: StoreKind[] = [{ name: "sqlite", create: sqlite }];
  if (PG_URL) kinds.push({ name: "postgres", create: postgres });
  return kinds;
}
