import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { periodOfLabel } from "../domain/billing-period.ts";
import { type Dec, formatDec, parseDec } from "../domain/decimal.ts";
import { parsePlanBilling } from "./charge-schema.ts";
import type { UsageTotals } from "./invoice-builder.ts";
import { draftInvoice, type PeriodUsage, subscriptionSegments } from "./period-usage.ts";

interface FakeEvent {
  at: number;
  modelId: string;
  quantity: Dec;
  cost: Dec;
}

/** A PeriodUsage over a list of events, summing like the rollups would. */
function memoryUsage(events: FakeEvent[]): PeriodUsage & { calls: [number, number][] } {
  const calls: [number, number][] = [];
  return {
    calls,
    async usageTotals(_accountId, start, end) {
      calls.push([start, end]);
      const by = new Map<string, UsageTotals>();
      for (const e of events) {
        if (e.at < start || e.at >= end) continue;
        const row = by.get(e.modelId) ?? {
          modelId: e.modelId,
          meter: null,
          quantity: 0n,
          cost: 0n,
          events: 0,
        };
        row.quantity += e.quantity;
        row.cost += e.cost;
        row.events += 1;
        by.set(e.modelId, row);
      }
      return [...by.values()];
    },
  };
}

const MIN = 60_000;
const at = (iso: string) => Date.parse(iso);

describe("subscriptionSegments", () => {
  const nov = periodOfLabel("2026-11", "UTC");

  it("one plan all month is one segment; none before the first activation", () => {
    expect(subscriptionSegments(nov, [{ planId: "a", activatedAt: at("2026-01-01T00:00:00Z") }])).toEqual([
      { start: nov.start, end: nov.end, planId: "a" },
    ]);
    const mid = at("2026-11-10T12:00:00Z");
    expect(subscriptionSegments(nov, [{ planId: "a", activatedAt: mid }])).toEqual([
      { start: nov.start, end: mid, planId: null },
      { start: mid, end: nov.end, planId: "a" },
    ]);
    expect(subscriptionSegments(nov, [])).toEqual([{ start: nov.start, end: nov.end, planId: null }]);
  });

  it("cuts at changes inside the period, the later of two same-instant activations wins, and same-plan neighbours merge", () => {
    const t1 = at("2026-11-05T00:00:00Z");
    const t2 = at("2026-11-20T00:00:00Z");
    const segments = subscriptionSegments(nov, [
      { planId: "a", activatedAt: at("2026-10-01T00:00:00Z") },
      { planId: "b", activatedAt: t2 },
      { planId: "a", activatedAt: t1 },
      { planId: "c", activatedAt: t2 },
      { planId: "z", activatedAt: nov.end },
    ]);
    expect(segments).toEqual([
      { start: nov.start, end: t2, planId: "a" },
      { start: t2, end: nov.end, planId: "c" },
    ]);
  });

  it("an ended subscription stops at its end: an earlier one still running, or none, is in force after", () => {
    const t1 = at("2026-11-05T00:00:00Z");
    const t2 = at("2026-11-20T00:00:00Z");
    expect(
      subscriptionSegments(nov, [
        { planId: "a", activatedAt: at("2026-10-01T00:00:00Z") },
        { planId: "b", activatedAt: t1, endsAt: t2 },
      ]),
    ).toEqual([
      { start: nov.start, end: t1, planId: "a" },
      { start: t1, end: t2, planId: "b" },
      { start: t2, end: nov.end, planId: "a" },
    ]);
    expect(subscriptionSegments(nov, [{ planId: "a", activatedAt: 0, endsAt: t1 }])).toEqual([
      { start: nov.start, end: t1, planId: "a" },
      { start: t1, end: nov.end, planId: null },
    ]);
    expect(subscriptionSegments(nov, [{ planId: "a", activatedAt: 0, endsAt: nov.start }])).toEqual([
      { start: nov.start, end: nov.end, planId: null },
    ]);
  });

  it("segments tile the period", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            planId: fc.constantFrom("a", "b", "c"),
            activatedAt: fc.integer({ min: nov.start - 10 * MIN, max: nov.end + 10 * MIN }),
            endsAt: fc.option(fc.integer({ min: nov.start - 10 * MIN, max: nov.end + 10 * MIN })),
          }),
        ),
        (activations) => {
          const s = subscriptionSegments(nov, activations);
          expect(s[0].start).toBe(nov.start);
          expect(s[s.length - 1].end).toBe(nov.end);
          for (let i = 1; i < s.length; i++) {
            expect(s[i].start).toBe(s[i - 1].end);
            expect(s[i].planId).not.toBe(s[i - 1].planId);
          }
        },
      ),
    );
  });
});

describe("draftInvoice", () => {
  const images = parsePlanBilling({
    charges: [{ model_id: "flux", pricing: "standard", minimum_quantity: 2 }],
  });

  it("Los Angeles across the DST month end: events minutes either side of local midnight land in the right month", async () => {
    const midnight = at("2026-11-01T07:00:00Z"); // 00:00 PDT, the day DST ends
    const one = parseDec(1);
    const source = memoryUsage([
      { at: midnight - 2 * MIN, modelId: "flux", quantity: one, cost: parseDec("0.25") },
      { at: midnight + 2 * MIN, modelId: "flux", quantity: one, cost: parseDec("0.5") },
      { at: at("2026-11-01T09:30:00Z"), modelId: "flux", quantity: one, cost: parseDec("0.5") }, // 01:30 PST, the repeated hour
      { at: at("2026-12-01T07:58:00Z"), modelId: "flux", quantity: one, cost: parseDec("0.5") }, // 23:58 PST Nov 30
      { at: at("2026-12-01T08:02:00Z"), modelId: "flux", quantity: one, cost: parseDec("9") }, // 00:02 Dec 1
    ]);
    const input = { accountId: "acct_la", activations: [], planBilling: () => null };
    const oct = await draftInvoice(source, {
      ...input,
      id: "i1",
      period: periodOfLabel("2026-10", "America/Los_Angeles"),
    });
    const nov = await draftInvoice(source, {
      ...input,
      id: "i2",
      period: periodOfLabel("2026-11", "America/Los_Angeles"),
    });
    expect([formatDec(oct.lines[0].quantity), formatDec(oct.total)]).toEqual(["1", "0.25"]);
    expect([formatDec(nov.lines[0].quantity), nov.lines[0].events, formatDec(nov.total)]).toEqual([
      "3",
      3,
      "1.5",
    ]);
  });

  it("Kolkata (+05:30): 23:58 on the 30th is November, 00:02 on the 1st is December", async () => {
    const source = memoryUsage([
      { at: at("2026-11-30T18:28:00Z"), modelId: "flux", quantity: parseDec(3), cost: parseDec(3) },
      { at: at("2026-11-30T18:32:00Z"), modelId: "flux", quantity: parseDec(1), cost: parseDec(1) },
    ]);
    const input = {
      accountId: "acct_in",
      activations: [{ planId: "img", activatedAt: 0 }],
      planBilling: () => images,
    };
    const nov = await draftInvoice(source, {
      ...input,
      id: "i1",
      period: periodOfLabel("2026-11", "Asia/Kolkata"),
    });
    const dec = await draftInvoice(source, {
      ...input,
      id: "i2",
      period: periodOfLabel("2026-12", "Asia/Kolkata"),
    });
    expect(formatDec(nov.total)).toBe("3");
    // 1 image is at or below the minimum of 2: not billed
    expect([formatDec(dec.lines[0].quantity), formatDec(dec.total)]).toEqual(["1", "0"]);
  });

  it("queries usage once per plan segment and charges each under its plan", async () => {
    const period = periodOfLabel("2026-11", "UTC");
    const change = at("2026-11-16T00:00:00Z");
    const source = memoryUsage([
      { at: change - MIN, modelId: "flux", quantity: parseDec(2), cost: parseDec(2) },
      { at: change + MIN, modelId: "flux", quantity: parseDec(3), cost: parseDec(3) },
    ]);
    const inv = await draftInvoice(source, {
      id: "i",
      accountId: "a",
      period,
      activations: [
        { planId: "img", activatedAt: 0 },
        { planId: "free", activatedAt: change },
      ],
      planBilling: (id) => (id === "img" ? images : null),
    });
    expect(source.calls).toEqual([
      [period.start, change],
      [change, period.end],
    ]);
    // 2 images under plan img are at its minimum (0); 3 under a plan without charges are at the price book
    expect(inv.lines.map((l) => formatDec(l.amount))).toEqual(["0", "3"]);
  });
});
