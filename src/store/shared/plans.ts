import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Plans: request limits, model lists and included quantities. */

type PlanRow = Tables["plans"];
const PLAN_COLUMNS = [
  "id",
  "requests_per_minute",
  "requests_per_day",
  "validity_days",
  "model_whitelist",
  "model_blacklist",
  "included",
  "created_at",
  "updated_at",
  "billing",
] as const;

export const planById = query((db, p: { id: string }) =>
  db.selectFrom("plans").selectAll().where("id", "=", p.id),
);

/** Inserts a plan or replaces everything but its creation instant. */
export const upsertPlan = query((db, r: PlanRow) =>
  db
    .insertInto("plans")
    .values(pick(r, PLAN_COLUMNS))
    .onConflict((oc) =>
      oc.column("id").doUpdateSet((eb) => ({
        requests_per_minute: eb.ref("excluded.requests_per_minute"),
        requests_per_day: eb.ref("excluded.requests_per_day"),
        validity_days: eb.ref("excluded.validity_days"),
        model_whitelist: eb.ref("excluded.model_whitelist"),
        model_blacklist: eb.ref("excluded.model_blacklist"),
        included: eb.ref("excluded.included"),
        updated_at: eb.ref("excluded.updated_at"),
        billing: eb.ref("excluded.billing"),
      })),
    ),
);
