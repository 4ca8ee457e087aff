import { pick, query } from "./sql.ts";
import type { Tables } from "./tables.ts";

/** Invoices (finalized once; only their status changes, to void) and the per-year number counter. */

type InvoiceRow = Tables["invoices"];
const INVOICE_COLUMNS = [
  "id",
  "account_id",
  "period",
  "period_start",
  "period_end",
  "timezone",
  "status",
  "number",
  "currency",
  "document",
  "pdf",
  "coverage",
  "issued_at",
] as const;

export const insertInvoice = query((db, r: InvoiceRow) =>
  db.insertInto("invoices").values(pick(r, INVOICE_COLUMNS)),
);

/**
 * Takes number `last` of `year`, only if `last - 1` was the last one given: when another
 * transaction took it first, nothing changes here and the invoice's UNIQUE number refuses it.
 */
export const takeInvoiceNumber = query((db, p: { year: number; last: number; previous: number }) =>
  db
    .insertInto("invoice_numbers")
    .values({ year: p.year, last: p.last })
    .onConflict((oc) =>
      oc
        .column("year")
        .doUpdateSet((eb) => ({ last: eb.ref("excluded.last") }))
        .where("invoice_numbers.last", "=", p.previous),
    ),
);

export const lastInvoiceNumber = query((db, p: { year: number }) =>
  db.selectFrom("invoice_numbers").select("last").where("year", "=", p.year),
);

export const invoiceById = query((db, p: { id: string }) =>
  db.selectFrom("invoices").selectAll().where("id", "=", p.id),
);

export const invoiceOfPeriod = query((db, p: { accountId: string; period: string }) =>
  db.selectFrom("invoices").selectAll().where("account_id", "=", p.accountId).where("period", "=", p.period),
);

export const invoicesOfAccount = query((db, p: { accountId: string }) =>
  db
    .selectFrom("invoices")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .orderBy("period_start")
    .orderBy("id"),
);

export const voidInvoice = query((db, p: { id: string }) =>
  db
    .updateTable("invoices")
    .set({ status: "void" })
    .where("id", "=", p.id)
    .where("status", "in", ["finalized", "no_charge"])
    .returning("id"),
);
