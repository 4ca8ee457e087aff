import { describe, expect, it } from "vitest";
import { type AlertRule, alertPeriodContaining, forecastWindow } from "../domain/alerts.ts";
import { type Dec, parseDec } from "../domain/decimal.ts";
import { DAY_MS } from "../domain/time.ts";
import {
  outboxRows,
  outlookJson,
  planCrossings,
  planForecasts,
  ruleOutlook,
  subscribers,
} from "./alert-evaluation.ts";

const d = (v: number | string): Dec => parseDec(v);
const now = Date.UTC(2026, 10, 10, 12);
const zone = "Europe/Paris";
const rule = (over: Partial<AlertRule> = {}): AlertRule => ({
  id: "rule_1",
  accountId: "acc_1",
  metric: "quantity",
  modelId: "flux-1-dev",
  period: "month",
  thresholds: [d(50), d(80), d(100)],
  basis: "included",
  value: null,
  ...over,
});
const body = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

describe("planCrossings", () => {
  const period = alertPeriodContaining(now, "month", zone);

  it("plans one firing and message per newly reached threshold", () => {
    const plans = planCrossings({
      rule: rule(),
      timezone: zone,
      period,
      limit: d(1000),
      total: d(812),
      now,
      fired: new Set([d(50)]),
    });
    expect(plans.map((p) => [p.kind, p.threshold, p.periodStart])).toEqual([
      ["crossed", d(80), period.start],
    ]);
    expect(body(plans[0].message.body)).toEqual({
      type: "usage.threshold_crossed",
      timestamp: "2026-11-10T12:00:00.000Z",
      data: {
        account_id: "acc_1",
        rule_id: "rule_1",
        metric: "quantity",
        model_id: "flux-1-dev",
        period: { start: "2026-11-01T00:00:00+01:00", end: "2026-12-01T00:00:00+01:00" },
        threshold: 80,
        value: 812,
        limit: 1000,
      },
    });
  });

  it("a budget rule sends budget.threshold_crossed; a rule without a limit plans nothing", () => {
    const budget = rule({ metric: "cost", modelId: null, basis: "budget", thresholds: [d(100)] });
    const [p] = planCrossings({
      rule: budget,
      timezone: zone,
      period,
      limit: d("5.5"),
      total: d("5.5"),
      now,
      fired: new Set(),
    });
    expect(p.message.type).toBe("budget.threshold_crossed");
    expect(
      planCrossings({
        rule: rule(),
        timezone: zone,
        period,
        limit: null,
        total: d(10 ** 6),
        now,
        fired: new Set(),
      }),
    ).toEqual([]);
  });

  it("an absolute rule fires at its value", () => {
    const abs = rule({
      metric: "requests",
      basis: "absolute",
      value: d(5000),
      thresholds: [d(100)],
      period: "day",
    });
    const day = alertPeriodContaining(now, "day", zone);
    expect(
      planCrossings({
        rule: abs,
        timezone: zone,
        period: day,
        limit: d(5000),
        total: d(4999),
        now,
        fired: new Set(),
      }),
    ).toEqual([]);
    const [p] = planCrossings({
      rule: abs,
      timezone: zone,
      period: day,
      limit: d(5000),
      total: d(5000),
      now,
      fired: new Set(),
    });
    expect(body(p.message.body).data).toMatchObject({
      metric: "requests",
      threshold: 100,
      value: 5000,
      limit: 5000,
    });
  });
});

describe("forecasts", () => {
  const period = alertPeriodContaining(now, "month", zone);
  const week = Array.from({ length: 7 }, () => d(50));

  it("reports the outlook per threshold and plans a forecast 3 days out, once", () => {
    const input = {
      rule: rule(),
      timezone: zone,
      period,
      limit: d(1000),
      total: d(700),
      now,
      dailyTotals: week,
    };
    expect(ruleOutlook(input)?.map(outlookJson)).toEqual([
      { threshold: "50", status: "crossed", forecast_at: null },
      { threshold: "80", status: "projected", forecast_at: new Date(now + 2 * DAY_MS).toISOString() },
      { threshold: "100", status: "projected", forecast_at: new Date(now + 6 * DAY_MS).toISOString() },
    ]);
    const [p, ...rest] = planForecasts({ ...input, forecastFired: new Set() });
    expect(rest).toEqual([]);
    expect(p.kind).toBe("forecast");
    expect(body(p.message.body)).toMatchObject({
      type: "usage.threshold_forecast",
      data: { threshold: 80, value: 700, limit: 1000, forecast_at: new Date(now + 2 * DAY_MS).toISOString() },
    });
    expect(planForecasts({ ...input, forecastFired: new Set([d(80)]) })).toEqual([]);
    expect(forecastWindow(now, zone).end).toBeLessThanOrEqual(now);
  });
});

describe("fan-out", () => {
  const endpoints = [
    { id: "ep_root", accountId: null, events: ["usage.threshold_crossed" as const], disabled: false },
    {
      id: "ep_acc1",
      accountId: "acc_1",
      events: ["usage.threshold_crossed" as const, "key.created" as const],
      disabled: false,
    },
    { id: "ep_acc2", accountId: "acc_2", events: ["usage.threshold_crossed" as const], disabled: false },
    { id: "ep_off", accountId: "acc_1", events: ["usage.threshold_crossed" as const], disabled: true },
    { id: "ep_keys", accountId: "acc_1", events: ["key.created" as const], disabled: false },
  ];

  it("sends to enabled subscribers of the type, of the account or of no account, each under its own id", () => {
    const subs = subscribers(endpoints, "usage.threshold_crossed", "acc_1");
    expect(subs.map((e) => e.id)).toEqual(["ep_root", "ep_acc1"]);
    const [p] = planCrossings({
      rule: rule(),
      timezone: zone,
      period: alertPeriodContaining(now, "month", zone),
      limit: d(10),
      total: d(5),
      now,
      fired: new Set(),
    });
    const rows = outboxRows(p.message, subs);
    expect(rows.map((r) => r.endpointId)).toEqual(["ep_root", "ep_acc1"]);
    expect(rows[0].id).toBe(p.message.id);
    expect(rows[1].id).not.toBe(rows[0].id);
    expect(rows[1].body).toBe(rows[0].body);
  });
});
