import { describe, expect, it } from "vitest";
import { periodOfLabel } from "../domain/billing-period.ts";
import { formatDec, parseDec } from "../domain/decimal.ts";
import { parsePlanBilling } from "./charge-schema.ts";
import { buildInvoice, chargeFor, finalizeInvoice, lateUsageAdjustment } from "./invoice-builder.ts";
import { CSV_COLUMNS, renderInvoiceCsv } from "./render-csv.ts";

/** A strict RFC 4180 reader, so the test does not trust the writer's own assumptions. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
  }
  expect(field).toBe("");
  expect(row).toEqual([]);
  return rows;
}

const d = parseDec;
const NOV = periodOfLabel("2026-11", "Asia/Kolkata");
const billing = parsePlanBilling({
  base_fee: 20,
  charges: [
    {
      model_id: "sdxl",
      pricing: "graduated",
      tiers: [
        { up_to: 10_000, unit_price: 0.001, flat_fee: 1 },
        { up_to: 50_000, unit_price: 0.0008 },
        { up_to: null, unit_price: 0.00075 },
      ],
    },
    { model_id: "flux", pricing: "standard", minimum_quantity: 100_000 },
  ],
});

function invoice() {
  const draft = buildInvoice({
    id: "inv_csv",
    accountId: "acct_1",
    period: NOV,
    segments: [
      {
        start: NOV.start,
        end: NOV.end,
        planId: "pro",
        billing,
        usage: [
          { modelId: "sdxl", meter: null, quantity: d("65000.5"), cost: d(650), events: 812 },
          { modelId: "flux", meter: null, quantity: d(99_000), cost: d(297), events: 99_000 },
          { modelId: '=cmd|"x, y"', meter: "out\nput", quantity: d(3), cost: d("0.004444"), events: 3 },
        ],
      },
    ],
    adjustments: [
      lateUsageAdjustment({
        period: "2026-10",
        charge: chargeFor(billing, "sdxl", null),
        billed: { quantity: d(9_999), cost: d(0) },
        late: { quantity: d(2), cost: d(0) },
      }),
    ],
  });
  return finalizeInvoice(draft, Date.parse("2026-12-01T00:00:00Z"), "TLY-2026-000042");
}

describe("renderInvoiceCsv", () => {
  it("parses back: one row per line and tier, each adjustment, a rounding row; amounts sum to the total", () => {
    const inv = invoice();
    const [header, ...rows] = parseCsv(renderInvoiceCsv(inv));
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(rows.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
    const col = (r: string[], name: (typeof CSV_COLUMNS)[number]) => r[CSV_COLUMNS.indexOf(name)];
    expect(rows.map((r) => col(r, "row_type"))).toEqual([
      "tier",
      "tier",
      "line",
      "tier",
      "tier",
      "tier",
      "adjustment",
      "rounding",
    ]);
    const sum = rows.reduce((s, r) => s + d(col(r, "amount")), 0n);
    expect(sum).toBe(inv.total);
    expect(formatDec(inv.total)).toBe("74.26");
    // the exact tier amounts: 10 + 1 flat, 32, 15,000.5 x 0.00075 = 11.250375
    expect(rows.slice(3, 6).map((r) => col(r, "amount"))).toEqual(["11", "32", "11.250375"]);
    const odd = rows[1];
    expect(col(odd, "model_id")).toBe(`'=cmd|"x, y"`);
    expect(col(odd, "meter")).toBe("out\nput");
    expect(col(odd, "number")).toBe("TLY-2026-000042");
  });

  it("renders the same bytes for the same invoice", () => {
    expect(renderInvoiceCsv(invoice())).toBe(renderInvoiceCsv(invoice()));
  });
});
