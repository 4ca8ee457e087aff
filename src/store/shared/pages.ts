import { sql } from "kysely";
import { query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/**
 * The operator API's statements: every list in creation order, (created_at, id), read from its
 * cursor onwards through an index that ends in (created_at, id) so that each page is a range
 * scan; and the changes its PATCH routes make.
 */

/** Where a page starts: after the cursor item's (created_at, id), and how many rows to read. */
export interface PageArgs {
  afterCreatedAt: number;
  afterId: string;
  limit: number;
}

/** The row-value comparison both dialects index: rows strictly after the cursor. */
const after = (p: PageArgs) => sql<boolean>`(created_at, id) > (${p.afterCreatedAt}, ${p.afterId})`;

export const accountsPage = query((db, p: PageArgs & { prefix: string; prefixLength: number }) =>
  db
    .selectFrom("accounts")
    .selectAll()
    .where(after(p))
    .where(sql<boolean>`substr(name, 1, ${p.prefixLength}) = ${p.prefix}`)
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const usersPage = query((db, p: PageArgs & { accountId: string }) =>
  db
    .selectFrom("users")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const keysOfUserPage = query((db, p: PageArgs & { userId: string }) =>
  db
    .selectFrom("api_keys")
    .selectAll()
    .where("user_id", "=", p.userId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const keysOfAccountPage = query((db, p: PageArgs & { accountId: string }) =>
  db
    .selectFrom("api_keys")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const plansPage = query((db, p: PageArgs) =>
  db.selectFrom("plans").selectAll().where(after(p)).orderBy("created_at").orderBy("id").limit(p.limit),
);

export const licensesPage = query((db, p: PageArgs & { accountId: string }) =>
  db
    .selectFrom("licenses")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const licensesOfModelPage = query((db, p: PageArgs & { accountId: string; modelId: string }) =>
  db
    .selectFrom("licenses")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where("model_id", "=", p.modelId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const subscriptionsPage = query((db, p: PageArgs & { accountId: string }) =>
  db
    .selectFrom("subscriptions")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const paymentsPage = query((db, p: PageArgs & { accountId: string }) =>
  db
    .selectFrom("payments")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .where(after(p))
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const licenseById = query((db, p: { id: string }) =>
  db.selectFrom("licenses").selectAll().where("id", "=", p.id),
);

export const subscriptionById = query((db, p: { id: string }) =>
  db.selectFrom("subscriptions").selectAll().where("id", "=", p.id),
);

export const paymentById = query((db, p: { id: string }) =>
  db.selectFrom("payments").selectAll().where("id", "=", p.id),
);

export const refundsOfPayment = query((db, p: { paymentId: string }) =>
  db
    .selectFrom("payments")
    .selectAll()
    .where("refund_of", "=", p.paymentId)
    .orderBy("created_at")
    .orderBy("id"),
);

type AccountRow = Tables["accounts"];
export const updateAccount = query((db, r: AccountRow) =>
  db
    .updateTable("accounts")
    .set({
      name: r.name,
      is_enabled: r.is_enabled,
      billing_timezone: r.billing_timezone,
      billing_mode: r.billing_mode,
    })
    .where("id", "=", r.id),
);

type UserRow = Tables["users"];
export const updateUser = query((db, r: UserRow) =>
  db.updateTable("users").set({ username: r.username, role: r.role }).where("id", "=", r.id),
);

type KeyRow = Tables["api_keys"];
/** A key's label, and its digests and prefix (a rotation keeps the previous digest until it expires). */
export const updateKey = query((db, r: KeyRow) =>
  db
    .updateTable("api_keys")
    .set({
      label: r.label,
      prefix: r.prefix,
      hash: r.hash,
      previous_hash: r.previous_hash,
      previous_expires_at: r.previous_expires_at,
    })
    .where("id", "=", r.id),
);

export const endLicense = query((db, p: { id: string; endsAt: number | null }) =>
  db.updateTable("licenses").set({ ends_at: p.endsAt }).where("id", "=", p.id),
);

export const endSubscription = query((db, p: { id: string; endsAt: number | null }) =>
  db.updateTable("subscriptions").set({ ends_at: p.endsAt }).where("id", "=", p.id),
);

/** An account's audit entries, newest first (its index on (account_id, at)); an empty filter value matches every row. */
export const auditFiltered = query(
  (db, p: { accountId: string; resourceType: string; resourceId: string; usageId: string; limit: number }) =>
    db
      .selectFrom("audit_log")
      .selectAll()
      .where("account_id", "=", p.accountId)
      .where(sql<boolean>`(CAST(${p.resourceType} AS TEXT) = '' OR resource_type = ${p.resourceType})`)
      .where(sql<boolean>`(CAST(${p.resourceId} AS TEXT) = '' OR resource_id = ${p.resourceId})`)
      .where(sql<boolean>`(CAST(${p.usageId} AS TEXT) = '' OR usage_id = ${p.usageId})`)
      .orderBy("at", "desc")
      .orderBy("id", "desc")
      .limit(p.limit),
);
