import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Dashboard sessions by token digest, and one-time portal links (issue 18). */

export const insertSession = query((db, r: Tables["dashboard_sessions"]) =>
  db
    .insertInto("dashboard_sessions")
    .values(
      pick(r, ["token_hash", "key_id", "is_root", "account_id", "user_id", "created_at", "expires_at"]),
    ),
);

export const liveSession = query((db, p: { hash: string; now: number }) =>
  db
    .selectFrom("dashboard_sessions")
    .selectAll()
    .where("token_hash", "=", p.hash)
    .where("expires_at", ">", p.now),
);

export const deleteSession = query((db, p: { hash: string }) =>
  db.deleteFrom("dashboard_sessions").where("token_hash", "=", p.hash),
);

export const deleteExpiredSessions = query((db, p: { now: number }) =>
  db.deleteFrom("dashboard_sessions").where("expires_at", "<=", p.now),
);

export const insertPortalLink = query((db, r: Omit<Tables["portal_links"], "used_at">) =>
  db
    .insertInto("portal_links")
    .values(pick(r, ["link_hash", "account_id", "user_id", "session_ttl_ms", "created_at", "expires_at"])),
);

/** Takes a link: only once, only before it expires; the row when this call took it. */
export const consumePortalLink = query((db, p: { hash: string; now: number }) =>
  db
    .updateTable("portal_links")
    .set({ used_at: p.now })
    .where("link_hash", "=", p.hash)
    .where("used_at", "is", null)
    .where("expires_at", ">", p.now)
    .returningAll(),
);

export const deleteExpiredPortalLinks = query((db, p: { now: number }) =>
  db.deleteFrom("portal_links").where("expires_at", "<=", p.now),
);
