import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AlertRule,
  alertPeriodContaining,
  crossingEventType,
  forecastData,
  forecastsDue,
  forecastThresholds,
  forecastWindow,
  parseAlertRule,
  ruleLimit,
  thresholdData,
  thresholdsToFire,
} from "./alerts.ts";
import { type Dec, ONE, parseDec } from "./decimal.ts";
import { DAY_MS } from "./time.ts";

const d = (v: number | string): Dec => parseDec(v);
const pcts = (...v: number[]) => v.map((x) => d(x));

describe("parseAlertRule", () => {
  it("reads a rule and sorts its thresholds", () => {
    expect(
      parseAlertRule({ metric: "cost", period: "month", thresholds: [100, 50, 80], basis: "budget" }),
    ).toEqual({
      metric: "cost",
      modelId: null,
      period: "month",
      thresholds: pcts(50, 80, 100),
      basis: "budget",
      value: null,
    });
    expect(
      parseAlertRule({
        metric: "requests",
        model_id: "flux-1-dev",
        period: "day",
        thresholds: [100],
        basis: "absolute",
        value: 5000,
      }),
    ).toMatchObject({ modelId: "flux-1-dev", value: d(5000), thresholds: pcts(100) });
  });

  it.each([
    [null, /JSON object/],
    [{ metric: "tokens", period: "day", thresholds: [50], basis: "absolute", value: 1 }, /^metric: /],
    [{ metric: "cost", period: "week", thresholds: [50], basis: "absolute", value: 1 }, /^period: /],
    [{ metric: "cost", period: "day", thresholds: [50], basis: "plan", value: 1 }, /^basis: /],
    [{ metric: "cost", period: "day", thresholds: [], basis: "absolute", value: 1 }, /^thresholds: /],
    [{ metric: "cost", period: "day", thresholds: [50, 0], basis: "absolute", value: 1 }, /^thresholds\.1: /],
    [{ metric: "cost", period: "day", thresholds: [1001], basis: "absolute", value: 1 }, /^thresholds\.0: /],
    [{ metric: "cost", period: "day", thresholds: ["x"], basis: "absolute", value: 1 }, /^thresholds\.0: /],
    [{ metric: "cost", period: "day", thresholds: [80, 80], basis: "absolute", value: 1 }, /distinct/],
    [{ metric: "cost", period: "day", thresholds: [80], basis: "absolute" }, /^value: .*required/],
    [{ metric: "cost", period: "day", thresholds: [80], basis: "absolute", value: -5 }, /^value: /],
    [
      { metric: "requests", period: "day", thresholds: [80], basis: "absolute", value: 1.5 },
      /^value: .*whole/,
    ],
    [{ metric: "cost", period: "month", thresholds: [80], basis: "budget", value: 10 }, /^value: .*only/],
    [{ metric: "quantity", period: "month", thresholds: [80], basis: "budget" }, /^metric: .*cost/],
    [{ metric: "cost", period: "day", thresholds: [80], basis: "budget" }, /^period: /],
    [{ metric: "cost", model_id: "m", period: "month", thresholds: [80], basis: "budget" }, /^model_id: /],
    [{ metric: "quantity", period: "month", thresholds: [80], basis: "included" }, /^model_id: .*required/],
    [{ metric: "cost", model_id: "m", period: "month", thresholds: [80], basis: "included" }, /^metric: /],
    [
      { metric: "quantity", model_id: "", period: "month", thresholds: [80], basis: "included" },
      /^model_id: /,
    ],
  ])("refuses %j naming the field", (body, message) => {
    expect(() => parseAlertRule(body)).toThrow(message);
  });
});

describe("limits and event types", () => {
  const base = { metric: "quantity", modelId: "m", period: "month", thresholds: pcts(80) } as const;
  it("takes the limit from the basis; none (or zero) leaves the rule inert", () => {
    const sources = { includedQuantity: d(1000), monthlyBudget: d(50) };
    expect(ruleLimit({ ...base, basis: "included", value: null }, sources)).toBe(d(1000));
    expect(ruleLimit({ ...base, metric: "cost", basis: "budget", value: null }, sources)).toBe(d(50));
    expect(ruleLimit({ ...base, basis: "absolute", value: d(7) }, sources)).toBe(d(7));
    expect(
      ruleLimit({ ...base, basis: "included", value: null }, { ...sources, includedQuantity: null }),
    ).toBeNull();
    expect(
      ruleLimit({ ...base, basis: "included", value: null }, { ...sources, includedQuantity: 0n }),
    ).toBeNull();
    expect(crossingEventType({ ...base, metric: "cost", basis: "budget", value: null })).toBe(
      "budget.threshold_crossed",
    );
    expect(crossingEventType({ ...base, basis: "included", value: null })).toBe("usage.threshold_crossed");
  });
});

describe("thresholdsToFire", () => {
  const thresholds = pcts(50, 80, 100);

  it("fires percentage thresholds exactly at the boundary, not a hair below", () => {
    const limit = d(1000); // e.g. 1000 included images
    expect(thresholdsToFire(thresholds, limit, d("799.999999"), new Set())).toEqual(pcts(50));
    expect(thresholdsToFire(thresholds, limit, d(800), new Set())).toEqual(pcts(50, 80));
    expect(thresholdsToFire(thresholds, limit, d(800), new Set(pcts(50)))).toEqual(pcts(80));
  });

  it("fires against an absolute value and an exact money limit", () => {
    expect(thresholdsToFire(pcts(100), d(5000), d(5000), new Set())).toEqual(pcts(100));
    // 80 % of a budget of 0.0043 USD is 0.00344 exactly
    expect(thresholdsToFire(pcts(80), d("0.0043"), d("0.00344"), new Set())).toEqual(pcts(80));
    expect(thresholdsToFire(pcts(80), d("0.0043"), d("0.003439999999999999"), new Set())).toEqual([]);
    expect(thresholdsToFire([d("33.33")], d(3), d("0.9999"), new Set())).toEqual([d("33.33")]);
    expect(thresholdsToFire([d("33.33")], d(3), d("0.9998"), new Set())).toEqual([]);
  });

  it("a jump past several thresholds fires each of them once", () => {
    expect(thresholdsToFire(thresholds, d(10), d(25), new Set())).toEqual(pcts(50, 80, 100));
  });

  it("a correction below a fired threshold does not re-arm it within the period", () => {
    const fired = new Set<Dec>();
    const evaluate = (total: number) => {
      const now = thresholdsToFire(thresholds, d(100), d(total), fired);
      for (const t of now) fired.add(t);
      return now;
    };
    expect(evaluate(85)).toEqual(pcts(50, 80));
    expect(evaluate(40)).toEqual([]); // corrected down
    expect(evaluate(90)).toEqual([]); // crossing 80 % again in the same period: nothing
    expect(evaluate(100)).toEqual(pcts(100));
  });

  // the model of a period: signed increments (usage and corrections, live or backfilled) arrive in
  // some order; after each one the total is evaluated and what fires is recorded
  const increments = fc.array(fc.integer({ min: -50, max: 200 }), { minLength: 1, maxLength: 40 });
  const ruleThresholds = fc.uniqueArray(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 });

  function replay(steps: number[], ts: Dec[], limit: Dec) {
    const fired = new Set<Dec>();
    const log: Dec[] = [];
    let total = 0n;
    let maxTotal = 0n;
    for (const step of steps) {
      total += BigInt(step) * ONE;
      if (total > maxTotal) maxTotal = total;
      for (const t of thresholdsToFire(ts, limit, total, fired)) {
        fired.add(t);
        log.push(t);
      }
    }
    return { log, maxTotal, total };
  }

  it("law: whatever the order of increments, each threshold fires at most once per period", () => {
    fc.assert(
      fc.property(increments, ruleThresholds, fc.integer({ min: 1, max: 1000 }), (steps, raw, lim) => {
        const ts = raw.map((x) => d(x)).sort((a, b) => (a < b ? -1 : 1));
        const { log, maxTotal } = replay(steps, ts, d(lim));
        expect(new Set(log).size).toBe(log.length);
        // and exactly the thresholds the running total ever reached fired
        const reached = ts.filter((t) => maxTotal * 100n * ONE >= d(lim) * t);
        expect([...log].sort((a, b) => (a < b ? -1 : 1))).toEqual(reached);
      }),
    );
  });

  it("law: with usage only (no corrections), any order of the same increments fires the same thresholds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 30 }),
        ruleThresholds,
        fc.integer({ min: 1, max: 1000 }),
        fc.infiniteStream(fc.nat()),
        (steps, raw, lim, noise) => {
          const ts = raw.map((x) => d(x));
          const shuffled = [...steps];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = noise.next().value % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
          }
          const a = new Set(replay(steps, ts, d(lim)).log);
          const b = new Set(replay(shuffled, ts, d(lim)).log);
          expect(b).toEqual(a);
        },
      ),
    );
  });

  it("law: a backfill that crosses a threshold fires it, in the period of the backfilled events", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 27 }),
        (before, backfill, dayOfMonth) => {
          const zone = "Asia/Kolkata";
          const now = Date.UTC(2026, 10, 15, 12);
          // events dated in October, arriving in November: October's period is evaluated
          const eventAt = Date.UTC(2026, 9, dayOfMonth, 6);
          const october = alertPeriodContaining(eventAt, "month", zone);
          expect(october.end).toBeLessThanOrEqual(alertPeriodContaining(now, "month", zone).start);
          const firedInOctober = new Set<Dec>();
          const crossed = thresholdsToFire(pcts(100), d(100), d(before + backfill), firedInOctober);
          expect(crossed).toEqual(before + backfill >= 100 ? pcts(100) : []);
        },
      ),
    );
  });
});

describe("periods and data", () => {
  it("periods are local days and months in the billing timezone, +05:30 included", () => {
    const at = Date.UTC(2026, 10, 30, 20); // 01:30 on Dec 1 in Kolkata
    expect(alertPeriodContaining(at, "day", "Asia/Kolkata")).toEqual({
      start: Date.UTC(2026, 10, 30, 18, 30),
      end: Date.UTC(2026, 11, 1, 18, 30),
    });
    expect(alertPeriodContaining(at, "month", "Asia/Kolkata")).toEqual({
      start: Date.UTC(2026, 10, 30, 18, 30),
      end: Date.UTC(2026, 11, 31, 18, 30),
    });
    expect(alertPeriodContaining(at, "month", "UTC").start).toBe(Date.UTC(2026, 10, 1));
    expect(() => alertPeriodContaining(at, "day", "Mars/Olympus")).toThrow(/billing_timezone/);
  });

  it("builds the message data of DESIGN.md", () => {
    const rule: AlertRule = {
      id: "rule_1",
      accountId: "acc_1",
      metric: "quantity",
      modelId: "flux-1-dev",
      period: "month",
      thresholds: pcts(80),
      basis: "included",
      value: null,
    };
    const period = alertPeriodContaining(Date.UTC(2026, 10, 10), "month", "Europe/Paris");
    const data = thresholdData(rule, period, "Europe/Paris", d(80), d(812), d(1000));
    expect(data).toEqual({
      account_id: "acc_1",
      rule_id: "rule_1",
      metric: "quantity",
      model_id: "flux-1-dev",
      period: { start: "2026-11-01T00:00:00+01:00", end: "2026-12-01T00:00:00+01:00" },
      threshold: d(80),
      value: d(812),
      limit: d(1000),
    });
    expect(forecastData(data, Date.UTC(2026, 10, 20, 6)).forecast_at).toBe("2026-11-20T06:00:00.000Z");
  });
});

describe("forecast", () => {
  const now = Date.UTC(2026, 10, 10, 12);
  const periodEnd = Date.UTC(2026, 11, 1);
  const week = (...v: number[]) => v.map((x) => d(x));

  it("the window is the 7 complete local days before today", () => {
    expect(forecastWindow(now, "UTC")).toEqual({ start: Date.UTC(2026, 10, 3), end: Date.UTC(2026, 10, 10) });
    // Paris leaves summer time on 2026-10-25: that day has 25 hours and the window still holds 7 days
    const paris = forecastWindow(Date.UTC(2026, 9, 28, 12), "Europe/Paris");
    expect(paris).toEqual({ start: Date.UTC(2026, 9, 20, 22), end: Date.UTC(2026, 9, 27, 23) });
  });

  it("projects linearly on the 7-day average rate from the total now", () => {
    // 350 over the week = 50/day; 500 of 1000 used: 80 % (800) in 6 days, 100 % in 10 days
    const outlook = forecastThresholds({
      thresholds: pcts(50, 80, 100),
      limit: d(1000),
      total: d(500),
      dailyTotals: week(0, 100, 50, 0, 100, 50, 50),
      now,
      periodEnd,
    });
    expect(outlook).toEqual([
      { threshold: d(50), status: "crossed" },
      { threshold: d(80), status: "projected", at: now + 6 * DAY_MS },
      { threshold: d(100), status: "projected", at: now + 10 * DAY_MS },
    ]);
  });

  it("rounds up to the first millisecond the line reaches the threshold", () => {
    // rate 3/day; 1 to go: a third of a day = 28,800,000 ms exactly; 2 to go: 57,600,000
    const [o] = forecastThresholds({
      thresholds: pcts(100),
      limit: d(10),
      total: d(9),
      dailyTotals: week(3, 3, 3, 3, 3, 3, 3),
      now,
      periodEnd,
    });
    expect(o).toEqual({ threshold: d(100), status: "projected", at: now + 28_800_000 });
    const [p] = forecastThresholds({
      thresholds: pcts(100),
      limit: d(1),
      total: 0n,
      dailyTotals: week(7, 0, 0, 0, 0, 0, 0), // 1/day: 86,400,000 ms
      now,
      periodEnd,
    });
    expect(p).toEqual({ threshold: d(100), status: "projected", at: now + DAY_MS });
  });

  it("is not projected past the period's end or without any usage in the week", () => {
    const base = { thresholds: pcts(100), limit: d(1000), total: d(0), now, periodEnd };
    expect(forecastThresholds({ ...base, dailyTotals: week(1, 1, 1, 1, 1, 1, 1) })[0].status).toBe(
      "not_projected",
    );
    expect(forecastThresholds({ ...base, dailyTotals: week(0, 0, 0, 0, 0, 0, 0) })[0].status).toBe(
      "not_projected",
    );
    expect(() => forecastThresholds({ ...base, dailyTotals: week(1, 2) })).toThrow(/7 daily totals/);
  });

  it("a forecast is due within 3 days, once per period, never for a crossed threshold", () => {
    const outlook = forecastThresholds({
      thresholds: pcts(50, 80, 90, 100),
      limit: d(1000),
      total: d(700),
      dailyTotals: week(50, 50, 50, 50, 50, 50, 50), // 80 % in 2 days, 90 % in 4, 100 % in 6
      now,
      periodEnd,
    });
    expect(forecastsDue(outlook, now, new Set()).map((o) => o.threshold)).toEqual(pcts(80));
    expect(forecastsDue(outlook, now, new Set(pcts(80)))).toEqual([]);
    // a day later 90 % comes within 3 days
    expect(forecastsDue(outlook, now + DAY_MS, new Set(pcts(80))).map((o) => o.threshold)).toEqual(pcts(90));
  });
});
