import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach } from "vitest";
import { PG_URL } from "./stores.ts";

/**
 * For suites that drive PostgreSQL by hand (migrations, partitions): before each test a fresh
 * schema and a client whose search_path is it; after it, the schema is dropped. A suite's own
 * afterEach registered later runs first (vitest runs after-hooks as a stack), so stores it opened
 * can close before the drop.
 */
export function freshPgSchema(): { readonly schema: string; readonly client: pg.Client } {
  let schema = "";
  let client: pg.Client | null = null;
  beforeEach(async () => {
    schema = `tally_test_${randomBytes(6).toString("hex")}`;
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`SET search_path = ${schema}`);
  });
  afterEach(async () => {
    await client?.query(`DROP SCHEMA ${schema} CASCADE`);
    await client?.end();
    client = null;
  });
  return {
    get schema() {
      return schema;
    },
    get client() {
      if (!client) throw new Error("freshPgSchema: used outside a test");
      return client;
    },
  };
}
