import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Accounts and their users. */

type AccountRow = Tables["accounts"];
const ACCOUNT_COLUMNS = [
  "id",
  "name",
  "is_enabled",
  "plan_id",
  "created_at",
  "billing_timezone",
  "billing_mode",
] as const;

export const insertAccount = query((db, r: AccountRow) =>
  db.insertInto("accounts").values(pick(r, ACCOUNT_COLUMNS)),
);

export const accountById = query((db, p: { id: string }) =>
  db.selectFrom("accounts").selectAll().where("id", "=", p.id),
);

/** The monthly budget; null clears it. */
export const setAccountBudget = query(
  (db, p: { accountId: string; nano: bigint | null; atto: bigint | null; mode: string | null }) =>
    db
      .updateTable("accounts")
      .set({ budget_nano: p.nano, budget_atto: p.atto, budget_mode: p.mode })
      .where("id", "=", p.accountId),
);

export const setAccountPlan = query((db, p: { accountId: string; planId: string | null }) =>
  db.updateTable("accounts").set({ plan_id: p.planId }).where("id", "=", p.accountId),
);

export const setBillingTimezone = query((db, p: { accountId: string; timezone: string }) =>
  db.updateTable("accounts").set({ billing_timezone: p.timezone }).where("id", "=", p.accountId),
);

export const allAccountIds = query((db) =>
  db.selectFrom("accounts").select("id").orderBy("created_at").orderBy("id"),
);

type UserRow = Tables["users"];
const USER_COLUMNS = ["id", "account_id", "username", "role", "node_id", "created_at"] as const;

export const insertUser = query((db, r: UserRow) => db.insertInto("users").values(pick(r, USER_COLUMNS)));

export const userById = query((db, p: { id: string }) =>
  db.selectFrom("users").selectAll().where("id", "=", p.id),
);
