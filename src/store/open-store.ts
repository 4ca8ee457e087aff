import type { Config } from "../config.ts";
import { PostgresStore } from "./postgres/postgres-store.ts";
import { SqliteStore } from "./sqlite/sqlite-store.ts";
import type { Store } from "./store.ts";

/** SQLite at config.sqlitePath unless DATABASE_URL names PostgreSQL; migrations applied. */
export async function openStore(
  config: Pick<Config, "databaseUrl" | "sqlitePath"> & Partial<Pick<Config, "databaseTimeouts">>,
): Promise<Store> {
  const store: Store = config.databaseUrl
    ? new PostgresStore(config.databaseUrl, config.databaseTimeouts)
    : new SqliteStore(config.sqlitePath);
  await store.migrate();
  return store;
}
