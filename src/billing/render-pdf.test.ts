import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { periodOfLabel } from "../domain/billing-period.ts";
import { parseDec } from "../domain/decimal.ts";
import { parsePlanBilling } from "./charge-schema.ts";
import {
  buildInvoice,
  chargeFor,
  finalizeInvoice,
  type Invoice,
  lateUsageAdjustment,
  type UsageTotals,
} from "./invoice-builder.ts";
import { renderInvoicePdf } from "./render-pdf.ts";

const d = parseDec;
const OPERATOR = {
  name: "Pixel Forge Ltd",
  address: ["12 Harbour Street", "Bristol BS1 4XX", "United Kingdom"],
  email: "billing@pixelforge.example",
};
const NOV = periodOfLabel("2026-11", "America/Los_Angeles");

const billing = parsePlanBilling({
  base_fee: 49,
  charges: [
    { model_id: "flux-1-dev", pricing: "standard", unit_price: "0.003", minimum_quantity: 100_000 },
    {
      model_id: "sdxl",
      pricing: "graduated",
      tiers: [
        { up_to: 10_000, unit_price: 0.001, flat_fee: 5 },
        { up_to: 50_000, unit_price: 0.0008 },
        { up_to: null, unit_price: 0.00075 },
      ],
    },
    { model_id: "upscaler", pricing: "package", package_size: 100, package_price: 5, included_quantity: 100 },
  ],
});

function invoice(extraModels = 0): Invoice {
  const usage: UsageTotals[] = [
    { modelId: "flux-1-dev", meter: null, quantity: d(100_001), cost: d("300.003"), events: 100_001 },
    { modelId: "sdxl", meter: null, quantity: d(65_000), cost: d(650), events: 65_000 },
    { modelId: "upscaler", meter: null, quantity: d(201), cost: d(2), events: 201 },
    { modelId: "gpt-4o", meter: "input_token", quantity: d(1_250_000), cost: d("3.125"), events: 412 },
    { modelId: "gpt-4o", meter: "output_token", quantity: d(310_000), cost: d("3.1"), events: 412 },
  ];
  for (let i = 0; i < extraModels; i++) {
    usage.push({
      modelId: `model-${String(i).padStart(3, "0")}`,
      meter: null,
      quantity: d(i + 1),
      cost: d("0.0125"),
      events: i + 1,
    });
  }
  const draft = buildInvoice({
    id: "inv_01JDPDF",
    accountId: "acct_acme",
    period: NOV,
    segments: [{ start: NOV.start, end: NOV.end, planId: "studio", billing, usage }],
    adjustments: [
      lateUsageAdjustment({
        period: "2026-10",
        charge: chargeFor(billing, "flux-1-dev", null),
        billed: { quantity: d(99_999), cost: d("299.997") },
        late: { quantity: d(3), cost: d("0.009") },
      }),
    ],
  });
  return finalizeInvoice(draft, Date.parse("2026-12-01T09:00:00Z"), "TLY-2026-000001");
}

const hasPoppler = spawnSync("which", ["pdftoppm"]).status === 0;

describe("renderInvoicePdf", () => {
  it("renders the same bytes for the same invoice, whatever the clock", async () => {
    const a = await renderInvoicePdf(invoice(), { operator: OPERATOR, accountName: "Acme Images" });
    await new Promise((r) => setTimeout(r, 20));
    const b = await renderInvoicePdf(invoice(), { operator: OPERATOR, accountName: "Acme Images" });
    expect(a.subarray(0, 5).toString()).toBe("%PDF-");
    expect(a.equals(b)).toBe(true);
    // and a different invoice is a different file
    const c = await renderInvoicePdf(invoice(1), { operator: OPERATOR, accountName: "Acme Images" });
    expect(c.equals(a)).toBe(false);
  });

  it.skipIf(!hasPoppler)(
    "reads as an invoice: operator, account, period, lines, tiers, adjustments, total (pdftoppm, pdftotext)",
    async () => {
      const dir = process.env.TALLY_INVOICE_PNG_DIR ?? mkdtempSync(join(tmpdir(), "tally-invoice-"));
      try {
        const pdf = join(dir, "invoice.pdf");
        writeFileSync(
          pdf,
          await renderInvoicePdf(invoice(), { operator: OPERATOR, accountName: "Acme Images" }),
        );
        execFileSync("pdftoppm", ["-png", "-r", "80", "-f", "1", "-l", "1", pdf, join(dir, "page")]);
        const png = readFileSync(join(dir, "page-1.png"));
        expect(png.subarray(1, 4).toString()).toBe("PNG");
        expect(png.length).toBeGreaterThan(10_000);
        const text = execFileSync("pdftotext", ["-layout", pdf, "-"]).toString();
        for (const expected of [
          "Pixel Forge Ltd",
          "Bristol BS1 4XX",
          "TLY-2026-000001",
          "Acme Images",
          "acct_acme",
          "2026-11: 2026-11-01 to 2026-11-30",
          "America/Los_Angeles",
          "Base fee",
          "100,001",
          "10,000 to 50,000: 40,000 × 0.0008",
          "above 50,000: 15,000 × 0.00075",
          "Late usage of 2026-10",
          "723.484",
          "723.48",
        ]) {
          expect(text).toContain(expected);
        }
      } finally {
        if (!process.env.TALLY_INVOICE_PNG_DIR) rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(hasPoppler)(
    "pdftoppm is not installed: the PNG check is skipped (apt-get install poppler-utils)",
    () => {
      expect(hasPoppler).toBe(false);
    },
  );

  it.skipIf(!hasPoppler)("breaks long invoices over pages", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-invoice-"));
    try {
      const pdf = join(dir, "long.pdf");
      writeFileSync(pdf, await renderInvoicePdf(invoice(120), { operator: OPERATOR }));
      const info = execFileSync("pdfinfo", [pdf]).toString();
      const pages = Number(/Pages:\s+(\d+)/.exec(info)?.[1]);
      expect(pages).toBeGreaterThan(2);
      const text = execFileSync("pdftotext", ["-layout", pdf, "-"]).toString();
      expect(text).toContain("model-119");
      expect(text).toContain(`page ${pages}`);
      expect(text).toContain("Total due");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
