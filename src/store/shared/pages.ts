import { query, sql } from "./sql.ts";
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

/**
 * One list in creation order: rows of `table` whose columns equal the named arguments
 * (`{account_id: "accountId"}`), strictly after the cursor. Every list but accounts' is one.
 */
function pageOf<F extends Record<string, string>>(
  table: "users" | "api_keys" | "plans" | "licenses" | "subscriptions" | "payments",
  equal: Readonly<Record<string, keyof F & string>>,
) {
  return query((db, p: PageArgs & F) => {
    let q = db.selectFrom(table).selectAll();
    for (const [column, arg] of Object.entries(equal)) {
      q = q.where(sql<boolean>`${sql.ref(column)} = ${p[arg]}`);
    }
    return q.where(after(p)).orderBy("created_at").orderBy("id").limit(p.limit);
  });
}

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
export const usersPage = pageOf<{ accountId: string }>("users", { account_id: "accountId" });
export const keysOfUserPage = pageOf<{ userId: string }>("api_keys", { user_id: "userId" });
export const keysOfAccountPage = pageOf<{ accountId: string }>("api_keys", { account_id: "accountId" });
export const plansPage = pageOf<Record<never, string>>("plans", {});
export const licensesPage = pageOf<{ accountId: string }>("licenses", { account_id: "accountId" });
export const licensesOfModelPage = pageOf<{ accountId: string; modelId: string }>("licenses", {
  account_id: "accountId",
  model_id: "modelId",
});
export const subscriptionsPage = pageOf<{ accountId: string }>("subscriptions", { account_id: "accountId" });
export const paymentsPage = pageOf<{ accountId: string }>("payments", { account_id: "accountId" });

export const licenseById = query((db, p: { id: string }) =>
  db.selectFrom("licenses").selectAll().where("id", "=", p.id),
);

export const subscriptionById = query((db, p: { id: string }) =>
  db.selectFrom("subscriptions").selectAll().where("id", "=", p.id),
);

export const paymentById = query((db, p: { id: string }) =>
  db.selectFrom("payments").selectAll().where("id", "=", p.id),
);

/**
 * A payment read to refund it: on PostgreSQL its row stays locked until the refund commits, so
 * refunds of one payment are checked one after another (SQLite's IMMEDIATE transaction does that).
 */
export const lockPayment = query((db, p: { id: string }, dialect) => {
  const q = db.selectFrom("payments").selectAll().where("id", "=", p.id);
  return dialect === "postgres" ? q.forUpdate() : q;
});

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

/**
 * A page of an account's audit entries, newest first: strictly before the cursor entry's
 * (at, id); an empty filter value matches every row. `at <= beforeAt` bounds the scan of the
 * index on (account_id, at), so a deep page is a range scan too; the first page's cursor is
 * (MAX_SAFE_INTEGER, "").
 */
export const auditFiltered = query(
  (
    db,
    p: {
      accountId: string;
      resourceType: string;
      resourceId: string;
      usageId: string;
      beforeAt: number;
      beforeId: string;
      limit: number;
    },
  ) =>
    db
      .selectFrom("audit_log")
      .selectAll()
      .where("account_id", "=", p.accountId)
      .where(sql<boolean>`(CAST(${p.resourceType} AS TEXT) = '' OR resource_type = ${p.resourceType})`)
      .where(sql<boolean>`(CAST(${p.resourceId} AS TEXT) = '' OR resource_id = ${p.resourceId})`)
      .where(sql<boolean>`(CAST(${p.usageId} AS TEXT) = '' OR usage_id = ${p.usageId})`)
      .where(sql<boolean>`at <= ${p.beforeAt}`)
      .where(sql<boolean>`(at, id) < (${p.beforeAt}, ${p.beforeId})`)
      .orderBy("at", "desc")
      .orderBy("id", "desc")
      .limit(p.limit),
);

export const auditById = query((db, p: { id: string }) =>
  db.selectFrom("audit_log").selectAll().where("id", "=", p.id),
);
