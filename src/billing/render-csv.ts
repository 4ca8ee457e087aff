import { formatDec } from "../domain/decimal.ts";
import type { Invoice } from "./invoice-builder.ts";

/**
 * An invoice as CSV (RFC 4180, CRLF): one row per line and tier (a line without tiers, billed
 * nothing, is one row), one per adjustment, and a last `rounding` row holding total - subtotal,
 * so the `amount` column sums exactly to the invoice's total. Decimals are exact text.
 */

export const CSV_COLUMNS = [
  "invoice_id",
  "number",
  "period",
  "row_type",
  "model_id",
  "meter",
  "description",
  "quantity",
  "included_quantity",
  "billable_quantity",
  "events",
  "tier_from",
  "tier_up_to",
  "tier_quantity",
  "unit_price",
  "flat_fee",
  "amount",
  "currency",
] as const;

type Row = Partial<Record<(typeof CSV_COLUMNS)[number], string | number | null>>;

export function renderInvoiceCsv(inv: Invoice): string {
  const common: Row = {
    invoice_id: inv.id,
    number: inv.number,
    period: inv.period.label,
    currency: inv.currency,
  };
  const rows: Row[] = [];
  for (const line of inv.lines) {
    const lineCells: Row = {
      ...common,
      model_id: line.modelId,
      meter: line.meter,
      description: line.description,
      quantity: formatDec(line.quantity),
      included_quantity: formatDec(line.includedQuantity),
      billable_quantity: formatDec(line.billableQuantity),
      events: line.events,
    };
    if (line.tiers.length === 0)
      rows.push({ ...lineCells, row_type: "line", amount: formatDec(line.amount) });
    for (const t of line.tiers) {
      rows.push({
        ...lineCells,
        row_type: "tier",
        tier_from: formatDec(t.from),
        tier_up_to: t.upTo === null ? "" : formatDec(t.upTo),
        tier_quantity: formatDec(t.quantity),
        unit_price: formatDec(t.unitPrice),
        flat_fee: formatDec(t.flatFee),
        amount: formatDec(t.amount),
      });
    }
  }
  for (const a of inv.adjustments) {
    rows.push({
      ...common,
      row_type: "adjustment",
      model_id: a.modelId,
      meter: a.meter,
      description: `${a.description} (${a.period})`,
      quantity: formatDec(a.quantity),
      amount: formatDec(a.amount),
    });
  }
  rows.push({
    ...common,
    row_type: "rounding",
    description: `Total rounded half-up to cents (subtotal ${formatDec(inv.subtotal)})`,
    amount: formatDec(inv.total - inv.subtotal),
  });
  const out = [CSV_COLUMNS.join(",")];
  for (const row of rows) out.push(CSV_COLUMNS.map((c) => cell(row[c], TEXT_COLUMNS.has(c))).join(","));
  return `${out.join("\r\n")}\r\n`;
}

/** Columns that carry free text (ids, descriptions): guarded against spreadsheet formulas. */
const TEXT_COLUMNS = new Set<string>(["invoice_id", "model_id", "meter", "description"]);

function cell(value: string | number | null | undefined, text: boolean): string {
  if (value === null || value === undefined) return "";
  let s = String(value);
  // a cell starting with = + - @ is run as a formula by spreadsheets
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
