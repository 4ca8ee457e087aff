import type { ExpressionBuilder, Kysely } from "kysely";
import { type Dialect, pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/**
 * Reads and corrections of stored usage events, and the audit log. Appending events is a hot
 * path and stays per dialect (sqlite/append.ts, postgres/append.ts).
 */

/**
 * PostgreSQL partitions usage_events by month and indexes no usage_id alone (docs/decisions/0020):
 * an event's account and time come from its row in event_ids, so a lookup by usage_id reads one
 * month's (account_id, ts) index instead of probing every month.
 */
const idRow = (db: Kysely<Tables>, usageId: string) =>
  db.selectFrom("event_ids").where("usage_id", "=", usageId);
const onPostgres = (dialect: Dialect) => dialect === "postgres";

/** On PostgreSQL, the condition that leads a lookup by usage_id to its account's month (always true on SQLite). */
const located =
  (db: Kysely<Tables>, usageId: string, dialect: Dialect) =>
  (eb: ExpressionBuilder<Tables, "usage_events">) =>
    onPostgres(dialect)
      ? eb.and([
          eb("account_id", "=", idRow(db, usageId).select("account_id")),
          eb("ts", "=", idRow(db, usageId).select("ts")),
        ])
      : eb.and([]);

const live = (db: Kysely<Tables>, p: { accountId: string; usageId: string }, dialect: Dialect) =>
  db
    .selectFrom("usage_events")
    .selectAll()
    .where("usage_id", "=", p.usageId)
    .where("account_id", "=", p.accountId)
    .$if(onPostgres(dialect), (q) => q.where("ts", "=", idRow(db, p.usageId).select("ts")))
    .where("deleted_at", "is", null);

/** An account's event unless deleted. */
export const liveEvent = query(live);

/** `liveEvent` read by a correction: on PostgreSQL the row is locked until it commits (SQLite's write lock covers it). */
export const eventToCorrect = query((db, p: { accountId: string; usageId: string }, dialect) =>
  onPostgres(dialect) ? live(db, p, dialect).forUpdate() : live(db, p, dialect),
);

export const eventByUsageId = query((db, p: { usageId: string }, dialect) =>
  db
    .selectFrom("usage_events")
    .selectAll()
    .where("usage_id", "=", p.usageId)
    .where(located(db, p.usageId, dialect))
    .where("deleted_at", "is", null),
);

export const eventsOfAccount = query((db, p: { accountId: string; limit: number; skip: number }) =>
  db
    .selectFrom("usage_events")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where("deleted_at", "is", null)
    .orderBy("ts", "desc")
    .orderBy("seq", "desc")
    .limit(p.limit)
    .offset(p.skip),
);

export const eventsOfUser = query(
  (db, p: { accountId: string; userId: string; limit: number; skip: number }) =>
    db
      .selectFrom("usage_events")
      .selectAll()
      .where("user_id", "=", p.userId)
      .where("account_id", "=", p.accountId)
      .where("deleted_at", "is", null)
      .orderBy("ts", "desc")
      .orderBy("seq", "desc")
      .limit(p.limit)
      .offset(p.skip),
);

type EventRow = Tables["usage_events"];

/** Writes a correction's new figures. */
export const correctEvent = query(
  (
    db,
    r: Pick<
      EventRow,
      "usage_id" | "quantity" | "unit_price" | "cost_nano" | "cost_atto" | "status_active" | "updated_at"
    >,
    dialect,
  ) =>
    db
      .updateTable("usage_events")
      .set(pick(r, ["quantity", "unit_price", "cost_nano", "cost_atto", "status_active", "updated_at"]))
      .where("usage_id", "=", r.usage_id)
      .where(located(db, r.usage_id, dialect)),
);

/** Soft delete: the row keeps its idempotency key, so a late retry of the same event stays a duplicate. */
export const deleteEvent = query((db, p: { usageId: string; at: number }, dialect) =>
  db
    .updateTable("usage_events")
    .set({ deleted_at: p.at, updated_at: p.at })
    .where("usage_id", "=", p.usageId)
    .where(located(db, p.usageId, dialect)),
);

type AuditRow = Tables["audit_log"];

export const insertAudit = query((db, r: AuditRow) =>
  db
    .insertInto("audit_log")
    .values(
      pick(r, [
        "id",
        "account_id",
        "usage_id",
        "action",
        "actor_key_id",
        "actor_user_id",
        "at",
        "before",
        "after",
        "resource_type",
        "resource_id",
      ]),
    ),
);
