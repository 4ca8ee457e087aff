import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import type { Store } from "../../src/store/store.ts";

export type StoreName = "sqlite" | "postgres";

/** A fresh, migrated store for one benchmark, and how a server process reaches it. */
export interface BenchStore {
  name: StoreName;
  store: Store;
  env: { TALLY_DB?: string; DATABASE_URL?: string };
  /** SQLite file path, or PostgreSQL URL with its search_path */
  path: string;
  schema: string | null;
  cleanup(): Promise<void>;
}

export function pgUrl(): string {
  const url = process.env.TALLY_TEST_DATABASE_URL || process.env.DATABASE_URL || "";
  if (!url) throw new Error("--store postgres needs TALLY_TEST_DATABASE_URL or DATABASE_URL");
  return url;
}

const cleanups = new Set<() => Promise<void>>();

/** Runs every pending cleanup (also on Ctrl-C). */
export async function cleanupAll(): Promise<void> {
  for (const c of [...cleanups]) await c().catch(() => {});
}

export async function createBenchStore(name: StoreName, label: string): Promise<BenchStore> {
  if (name === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), `tally-bench-${label}-`));
    const path = join(dir, "tally.db");
    const store = new SqliteStore(path);
    await store.migrate();
    const cleanup = async () => {
      cleanups.delete(cleanup);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    };
    cleanups.add(cleanup);
    return { name, store, env: { TALLY_DB: path }, path, schema: null, cleanup };
  }
  const base = pgUrl();
  const schema = `tally_bench_${label.replace(/\W/g, "_")}_${randomBytes(4).toString("hex")}`;
  await withPg(base, (c) => c.query(`CREATE SCHEMA ${schema}`));
  const store = new PostgresStore(base, { schema, max: 4 });
  const url = new URL(base);
  url.searchParams.set("options", `-c search_path=${schema}`);
  const cleanup = async () => {
    cleanups.delete(cleanup);
    await store.close().catch(() => {});
    await withPg(base, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  };
  cleanups.add(cleanup);
  await store.migrate();
  return { name, store, env: { DATABASE_URL: url.toString() }, path: url.toString(), schema, cleanup };
}

export async function withPg<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

/**
 * After a bulk load, what a running PostgreSQL does by itself within a minute: gather the
 * planner's statistics (autovacuum's ANALYZE). Without them the first plans of a freshly loaded
 * table are guesses (a bitmap scan of every row of the account and a sort, 40 ms for a page of
 * the usage log at 100k events, against 0.1 ms with them), which no installation lives with.
 */
export async function analyzeAfterLoad(bs: BenchStore): Promise<void> {
  if (bs.name === "postgres") await withPg(bs.path, (c) => c.query("ANALYZE"));
}
