import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** The gateway's upstreams (their secrets are never stored: only an environment variable's name). */

export const insertUpstream = query((db, r: Tables["upstreams"]) =>
  db.insertInto("upstreams").values(pick(r, ["id", "base_url", "api_key_env", "timeout_ms", "created_at"])),
);

export const upstreamById = query((db, p: { id: string }) =>
  db.selectFrom("upstreams").selectAll().where("id", "=", p.id),
);

export const allUpstreams = query((db) =>
  db.selectFrom("upstreams").selectAll().orderBy("created_at").orderBy("id"),
);
