import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Subscriptions (an account's plan over time) and payments. */

type SubscriptionRow = Tables["subscriptions"];

export const insertSubscription = query((db, r: SubscriptionRow) =>
  db
    .insertInto("subscriptions")
    .values(pick(r, ["id", "account_id", "plan_id", "activated_at", "ends_at", "created_at"])),
);

export const subscriptionsOf = query((db, p: { accountId: string }) =>
  db
    .selectFrom("subscriptions")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .orderBy("activated_at")
    .orderBy("created_at"),
);

type PaymentRow = Tables["payments"];

export const insertPayment = query((db, r: PaymentRow) =>
  db
    .insertInto("payments")
    .values(
      pick(r, [
        "id",
        "account_id",
        "amount_nano",
        "amount_atto",
        "paid_at",
        "reference",
        "created_at",
        "refund_of",
      ]),
    ),
);

export const paymentsOf = query((db, p: { accountId: string }) =>
  db
    .selectFrom("payments")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .orderBy("paid_at")
    .orderBy("created_at"),
);
