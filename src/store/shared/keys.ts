import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** API keys. Last use is moved per dialect (touchKeys): it is batched, on every request. */

type KeyRow = Tables["api_keys"];
const KEY_COLUMNS = [
  "id",
  "user_id",
  "account_id",
  "is_root",
  "label",
  "prefix",
  "hash",
  "created_at",
  "last_used_at",
  "revoked_at",
  "previous_hash",
  "previous_expires_at",
] as const;

export const insertKey = query((db, r: KeyRow) => db.insertInto("api_keys").values(pick(r, KEY_COLUMNS)));

export const keyById = query((db, p: { id: string }) =>
  db.selectFrom("api_keys").selectAll().where("id", "=", p.id),
);

/** The key a digest belongs to: its current secret's, or the one a rotation replaced (the caller checks the grace). */
export const keyByHash = query((db, p: { hash: string }) =>
  db
    .selectFrom("api_keys")
    .selectAll()
    .where((eb) => eb.or([eb("hash", "=", p.hash), eb("previous_hash", "=", p.hash)]))
    .limit(1),
);

export const keysOfUser = query((db, p: { userId: string }) =>
  db.selectFrom("api_keys").selectAll().where("user_id", "=", p.userId).orderBy("created_at").orderBy("id"),
);

export const revokeKey = query((db, p: { id: string; at: number }) =>
  db.updateTable("api_keys").set({ revoked_at: p.at }).where("id", "=", p.id).where("revoked_at", "is", null),
);

export const liveRootKey = query((db) =>
  db.selectFrom("api_keys").select("id").where("is_root", "=", 1).where("revoked_at", "is", null).limit(1),
);
