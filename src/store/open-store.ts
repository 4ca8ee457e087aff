import type { Config } from "../config.ts";
import type { Log } from "../ops/log.ts";
import { PostgresStore } from "./postgres/postgres-store.ts";
import { SqliteStore } from "./sqlite/sqlite-store.ts";
import type { Store } from "./store.ts";

/**
 * SQLite at config.sqlitePath unless DATABASE_URL names PostgreSQL; migrations applied. `log`
 * hears what the store does on its own (PostgreSQL: the months of usage_events it makes).
 */
export async function openStore(
  config: Pick<Config, "databaseUrl" | "sqlitePath"> & Partial<Pick<Config, "databaseTimeouts">>,
  log?: Log,
): Promise<Store> {
  const store: Store = config.databaseUrl
    ? new PostgresStore(config.databaseUrl, { ...config.databaseTimeouts, log })
    : new SqliteStore(config.sqlitePath);
  await store.migrate();
  return store;
}
