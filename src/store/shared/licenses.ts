import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Licenses: an account's right to use a model over a period. */

type LicenseRow = Tables["licenses"];

export const insertLicense = query((db, r: LicenseRow) =>
  db
    .insertInto("licenses")
    .values(pick(r, ["id", "account_id", "model_id", "starts_at", "ends_at", "created_at"])),
);

export const licensesOfAccount = query((db, p: { accountId: string }) =>
  db.selectFrom("licenses").selectAll().where("account_id", "=", p.accountId).orderBy("starts_at"),
);

export const licensesOfModel = query((db, p: { accountId: string; modelId: string }) =>
  db
    .selectFrom("licenses")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where("model_id", "=", p.modelId)
    .orderBy("starts_at"),
);
