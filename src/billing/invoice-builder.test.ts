import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BillingPeriod, periodOfLabel } from "../domain/billing-period.ts";
import { type Dec, formatDec, parseDec } from "../domain/decimal.ts";
import { type PlanBilling, parsePlanBilling } from "./charge-schema.ts";
import {
  buildInvoice,
  chargeFor,
  finalizeInvoice,
  formatInvoiceNumber,
  type Invoice,
  invoiceDocument,
  invoiceFromDocument,
  lateUsageAdjustment,
  needsNumber,
  type PlanSegment,
  roundToCents,
  type UsageTotals,
  voidInvoice,
} from "./invoice-builder.ts";

const d = (v: string | number): Dec => parseDec(v);
const NOV = periodOfLabel("2026-11", "America/Los_Angeles");

const usage = (
  modelId: string,
  quantity: string | number,
  cost: string | number,
  events = 1,
  meter: string | null = null,
): UsageTotals => ({
  modelId,
  meter,
  quantity: d(quantity),
  cost: d(cost),
  events,
});

function invoiceOf(billing: PlanBilling | null, rows: UsageTotals[], period: BillingPeriod = NOV): Invoice {
  return buildInvoice({
    id: "inv_1",
    accountId: "acct_1",
    period,
    segments: [
      { start: period.start, end: period.end, planId: billing ? "pro" : null, billing, usage: rows },
    ],
  });
}

/** Seed 002: images invoiced only above 100,000 a month, at the price book. */
const SEED_002 = parsePlanBilling({
  charges: [{ model_id: "flux-1-dev", pricing: "standard", minimum_quantity: 100_000 }],
});

describe("buildInvoice", () => {
  it("seed 002: 100,000 images under a 100,000 minimum finalize as no_charge without a number", () => {
    const draft = invoiceOf(SEED_002, [usage("flux-1-dev", 100_000, 300, 100_000)]);
    expect(draft.status).toBe("draft");
    expect(draft.lines).toHaveLength(1);
    const [line] = draft.lines;
    expect([line.billableQuantity, line.amount, line.events]).toEqual([0n, 0n, 100_000]);
    expect(line.description).toMatch(/not billed at or below 100000/);
    expect(needsNumber(draft)).toBe(false);
    const closed = finalizeInvoice(draft, Date.parse("2026-12-01T09:00:00Z"), null);
    expect(closed.status).toBe("no_charge");
    expect(closed.number).toBeNull();
  });

  it("seed 002: 100,001 images are all billed at their own cost", () => {
    const draft = invoiceOf(SEED_002, [usage("flux-1-dev", 100_001, "300.003", 100_001)]);
    expect(formatDec(draft.lines[0].billableQuantity)).toBe("100001");
    expect(formatDec(draft.total)).toBe("300");
    expect(formatDec(draft.subtotal)).toBe("300.003");
    const closed = finalizeInvoice(draft, Date.parse("2026-12-01T09:00:00Z"), formatInvoiceNumber(2026, 1));
    expect([closed.status, closed.number]).toEqual(["finalized", "TLY-2026-000001"]);
  });

  it("without charges the total is the price-book cost of the month, rounded once half-up to cents", () => {
    const rows = [
      usage("gpt-4o", 1200, "0.00018", 3, "input_token"),
      usage("gpt-4o", 300, "0.00018", 3, "output_token"),
      usage("flux-1-dev", 1, "0.004640000000000001", 1),
    ];
    const inv = invoiceOf(null, rows);
    expect(inv.lines.map((l) => [l.modelId, l.meter, formatDec(l.amount)])).toEqual([
      ["flux-1-dev", null, "0.004640000000000001"],
      ["gpt-4o", "input_token", "0.00018"],
      ["gpt-4o", "output_token", "0.00018"],
    ]);
    expect(formatDec(inv.subtotal)).toBe("0.005000000000000001");
    expect(formatDec(inv.total)).toBe("0.01");
    expect(inv.lines[0].rollupQuery).toBe(
      "/v1/models/usage?account_id=acct_1&endpoint_id=flux-1-dev&start=2026-11-01T07%3A00%3A00.000Z&end=2026-12-01T08%3A00%3A00.000Z&timezone=America%2FLos_Angeles&timeframe=month&bound_to_timeframe=false",
    );
  });

  it("rounds half-up exactly at the half cent, once for the whole invoice", () => {
    expect(formatDec(roundToCents(d("1.005")))).toBe("1.01");
    expect(formatDec(roundToCents(d("1.004999999999999999")))).toBe("1");
    // three lines of 0.004: rounding each would give 0, rounding once gives 0.01
    const inv = invoiceOf(null, [usage("a", 1, "0.004"), usage("b", 1, "0.004"), usage("c", 1, "0.004")]);
    expect(formatDec(inv.total)).toBe("0.01");
  });

  it("bills charged models by their charge and the others at the price book, with the base fee first", () => {
    const billing = parsePlanBilling({
      base_fee: 49,
      charges: [
        {
          model_id: "sdxl",
          pricing: "graduated",
          tiers: [
            { up_to: 10_000, unit_price: 0.001 },
            { up_to: 50_000, unit_price: 0.0008 },
            { up_to: null, unit_price: 0.00075 },
          ],
        },
      ],
    });
    const inv = invoiceOf(billing, [usage("sdxl", 65_000, 650, 65_000), usage("whisper", 10, "0.06", 2)]);
    expect(inv.lines.map((l) => [l.modelId, l.description, formatDec(l.amount)])).toEqual([
      [null, "Base fee", "49"],
      ["sdxl", "sdxl, graduated tiers", "53.25"],
      ["whisper", "whisper, price book", "0.06"],
    ]);
    expect(inv.lines[1].tiers).toHaveLength(3);
    expect(formatDec(inv.total)).toBe("102.31");
  });

  it("a plan change mid-month: each segment's usage under its own plan, the base fee by time in force", () => {
    const utcNov = periodOfLabel("2026-11", "UTC");
    const mid = Date.parse("2026-11-16T00:00:00Z");
    const basic = parsePlanBilling({
      base_fee: 10,
      charges: [{ model_id: "m", pricing: "standard", unit_price: 1 }],
    });
    const pro = parsePlanBilling({
      base_fee: 30,
      charges: [{ model_id: "m", pricing: "standard", unit_price: "0.5", included_quantity: 5 }],
    });
    const segments: PlanSegment[] = [
      {
        start: utcNov.start,
        end: mid,
        planId: "basic",
        billing: basic,
        usage: [usage("m", 10, 0, 4), usage("x", 1, "0.25")],
      },
      { start: mid, end: utcNov.end, planId: "pro", billing: pro, usage: [usage("m", 10, 0, 6)] },
    ];
    const inv = buildInvoice({ id: "inv_2", accountId: "acct_1", period: utcNov, segments });
    expect(inv.lines.map((l) => [l.modelId, formatDec(l.quantity), formatDec(l.amount)])).toEqual([
      [null, "0.5", "5"],
      ["m", "10", "10"],
      ["x", "1", "0.25"],
      [null, "0.5", "15"],
      ["m", "10", "2.5"],
    ]);
    expect(inv.lines[1].description).toBe(
      "m, at 1 per unit [plan basic, 2026-11-01 00:00 to 2026-11-16 00:00]",
    );
    expect(inv.lines[4].rollupQuery).toContain("start=2026-11-16T00%3A00%3A00.000Z");
    expect(formatDec(inv.total)).toBe("32.75");
  });

  it("a base fee for part of a month is prorated to a 6-place share, and quantity x fee = amount exactly", () => {
    const utcNov = periodOfLabel("2026-11", "UTC");
    const billing = parsePlanBilling({ base_fee: "99.99" });
    const start = Date.parse("2026-11-21T00:00:00Z"); // 10 of 30 days
    const inv = buildInvoice({
      id: "i",
      accountId: "a",
      period: utcNov,
      segments: [{ start, end: utcNov.end, planId: "p", billing, usage: [] }],
    });
    const [fee] = inv.lines;
    expect(formatDec(fee.quantity)).toBe("0.333333");
    expect(formatDec(fee.amount)).toBe("33.32996667");
    expect(fee.tiers[0].amount).toBe(fee.amount);
  });

  it("adjustments count in the total; late usage is re-rated over the closed period's whole quantity", () => {
    const charge = chargeFor(SEED_002, "flux-1-dev", null);
    const adj = lateUsageAdjustment({
      period: "2026-10",
      charge,
      billed: { quantity: d(99_999), cost: d("299.997") },
      late: { quantity: d(2), cost: d("0.006") },
    });
    expect(formatDec(adj.amount)).toBe("300.003");
    expect(adj.description).toBe("Late usage of 2026-10: +2 flux-1-dev");
    const inv = buildInvoice({
      id: "i",
      accountId: "a",
      period: NOV,
      segments: [
        {
          start: NOV.start,
          end: NOV.end,
          planId: "p",
          billing: SEED_002,
          usage: [usage("flux-1-dev", 10, "0.03")],
        },
      ],
      adjustments: [adj],
    });
    expect(formatDec(inv.subtotal)).toBe("300.003");
    expect(formatDec(inv.total)).toBe("300");
  });

  it("line order does not depend on the order usage arrives in", () => {
    const rows = [usage("b", 1, 1), usage("a", 1, 1, 1, "y"), usage("a", 1, 1, 1, "x"), usage("a", 1, 1)];
    const one = invoiceOf(null, rows);
    const two = invoiceOf(null, [...rows].reverse());
    expect(two).toEqual(one);
    expect(one.lines.map((l) => `${l.modelId}/${l.meter}`)).toEqual(["a/null", "a/x", "a/y", "b/null"]);
  });

  it("the total is the rounded exact sum of lines and adjustments; without charges the lines are the costs", () => {
    const cost = fc.bigInt({ min: 0n, max: 10n ** 24n });
    fc.assert(
      fc.property(fc.array(cost, { maxLength: 20 }), (costs) => {
        const inv = invoiceOf(
          null,
          costs.map((c, i) => ({
            modelId: `m${String(i).padStart(2, "0")}`,
            meter: null,
            quantity: d(1),
            cost: c,
            events: 1,
          })),
        );
        const sum = costs.reduce((s, c) => s + c, 0n);
        expect(inv.subtotal).toBe(sum);
        expect(inv.total).toBe(roundToCents(sum));
        expect(inv.total % 10n ** 16n).toBe(0n);
        expect(inv.total - sum <= 5n * 10n ** 15n && sum - inv.total < 5n * 10n ** 15n).toBe(true);
      }),
    );
  });
});

describe("finalizing and numbers", () => {
  it("refuses a number for a zero total and requires one above zero", () => {
    const zero = invoiceOf(null, []);
    expect(() => finalizeInvoice(zero, 0, "TLY-2026-000001")).toThrow(/number/);
    const paid = invoiceOf(null, [usage("m", 1, 1)]);
    expect(() => finalizeInvoice(paid, 0, null)).toThrow(/number/);
    const closed = finalizeInvoice(paid, 0, "TLY-2026-000002");
    expect(() => finalizeInvoice(closed, 0, "TLY-2026-000003")).toThrow(/not a draft/);
  });

  it("voids only a finalized invoice, keeping its number and amounts", () => {
    const paid = finalizeInvoice(invoiceOf(null, [usage("m", 1, 1)]), 0, "TLY-2026-000009");
    const voided = voidInvoice(paid);
    expect(voided).toEqual({ ...paid, status: "void" });
    expect(() => voidInvoice(voided)).toThrow(/only a finalized/);
    expect(() => voidInvoice(invoiceOf(null, []))).toThrow(/only a finalized/);
  });

  it("formats gapless numbers per year", () => {
    expect(formatInvoiceNumber(2026, 1)).toBe("TLY-2026-000001");
    expect(formatInvoiceNumber(2027, 123_456)).toBe("TLY-2027-123456");
    expect(formatInvoiceNumber(2027, 1_234_567)).toBe("TLY-2027-1234567");
    expect(() => formatInvoiceNumber(2026, 0)).toThrow();
  });
});

describe("the document", () => {
  it("has DESIGN.md's shape and round-trips exactly through its stored form", () => {
    const billing = parsePlanBilling({
      base_fee: 5,
      charges: [
        {
          model_id: "sdxl",
          pricing: "volume",
          tiers: [
            { up_to: 10, unit_price: 1, flat_fee: 2 },
            { up_to: null, unit_price: "0.5" },
          ],
        },
      ],
    });
    const draft = invoiceOf(billing, [
      usage("sdxl", "12.5", 0, 3),
      usage("gpt", 7, "0.000000000000000007", 1, "input_token"),
    ]);
    const inv = finalizeInvoice(draft, Date.parse("2026-12-01T09:00:00Z"), "TLY-2026-000007");
    const doc = invoiceDocument(inv, { decimal: formatDec });
    expect(Object.keys(doc)).toEqual([
      "id",
      "number",
      "account_id",
      "period",
      "status",
      "currency",
      "lines",
      "adjustments",
      "subtotal",
      "total",
      "issued_at",
    ]);
    expect(doc.period).toEqual({
      label: "2026-11",
      start: "2026-11-01T00:00:00-07:00",
      end: "2026-12-01T00:00:00-08:00",
      timezone: "America/Los_Angeles",
    });
    expect(Object.keys(doc.lines[1])).toEqual([
      "model_id",
      "meter",
      "description",
      "pricing",
      "quantity",
      "included_quantity",
      "billable_quantity",
      "tiers",
      "amount",
      "events",
      "rollup_query",
    ]);
    expect(doc.lines[2].tiers).toEqual([
      { from: "10", up_to: null, quantity: "12.5", unit_price: "0.5", flat_fee: "0", amount: "6.25" },
    ]);
    expect(doc.issued_at).toBe("2026-12-01T09:00:00.000Z");
    const back = invoiceFromDocument(JSON.parse(JSON.stringify(doc)));
    expect(back).toEqual(inv);
  });
});
