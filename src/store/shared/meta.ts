import { query, sql } from "./sql.ts";

/** The meta table: key/value pairs of the store itself (the schema version). Made before any migration. */
export const CREATE_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

export const schemaVersion = query((db) =>
  db.selectFrom("meta").select("value").where("key", "=", "schema_version"),
);

export const setSchemaVersion = query((db, p: { version: string }) =>
  db
    .insertInto("meta")
    .values({ key: "schema_version", value: p.version })
    .onConflict((oc) => oc.column("key").doUpdateSet((eb) => ({ value: eb.ref("excluded.value") }))),
);

/** The cheapest statement that needs the database to answer. */
export const ping = query((db) => db.selectNoFrom(sql<number>`1`.as("one")));
