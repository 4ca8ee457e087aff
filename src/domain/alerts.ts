import { COST_PLACES, type Dec, DecimalError, ONE, parseDec, QUANTITY_PLACES, sumDec } from "./decimal.ts";
import { DomainError } from "./errors.ts";
import { DAY_MS, floorTo, formatLocal, formatUtc, isValidZone, nextBoundary } from "./time.ts";

/**
 * Alert rules: pure decisions about usage thresholds and their forecast.
 *
 * A rule watches one metric (quantity, cost or requests) of an account, for one model or all, over
 * a period (the local day or the billing month, in the account's `billing_timezone`). Its thresholds
 * are percentages of a limit: the plan's included quantity (`basis: "included"`), the monthly budget
 * (`"budget"`), or the rule's own `value` (`"absolute"`, so `{value: 1000, thresholds: [100]}`
 * fires at 1000).
 *
 * Firing is edge-free on purpose: a threshold fires when the period total is at or above it and it
 * has not fired in this period yet. It depends only on the total now and the set of firings
 * already recorded, not on the previous total, so increments in any order, a backfill landing
 * late, a retried batch or a crash between two evaluations can neither skip a threshold nor fire
 * one twice; and a correction that takes the total back below does not re-arm it within the
 * period. Exactly-once across instances is the store's part: a firing is a row unique on
 * (rule, period start, threshold), inserted in the transaction of the usage that crossed it.
 */

export const ALERT_METRICS = ["quantity", "cost", "requests"] as const;
export type AlertMetric = (typeof ALERT_METRICS)[number];
export const ALERT_PERIODS = ["day", "month"] as const;
export type AlertPeriod = (typeof ALERT_PERIODS)[number];
export const ALERT_BASES = ["included", "budget", "absolute"] as const;
export type AlertBasis = (typeof ALERT_BASES)[number];

/** What a rule is, as created; thresholds are percentages, ascending and distinct. */
export interface AlertRuleSpec {
  metric: AlertMetric;
  modelId: string | null;
  period: AlertPeriod;
  thresholds: Dec[];
  basis: AlertBasis;
  /** the limit of an `absolute` rule; null otherwise */
  value: Dec | null;
}

export interface AlertRule extends AlertRuleSpec {
  id: string;
  accountId: string;
}

const MAX_THRESHOLDS = 10;
/** 1000 %: a threshold far above the limit is still meaningful (10x the budget), beyond that a typo */
const MAX_PERCENT = 1000n * ONE;

const bad = (field: string, msg: string) => DomainError.validation(["body", field], msg);

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw bad(field, `must be one of ${allowed.join(", ")}`);
  }
  return value as T;
}

/** Validates `POST /v1/accounts/{id}/alerts`; every refusal names its field. */
export function parseAlertRule(body: unknown): AlertRuleSpec {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw DomainError.validation(["body"], "must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  const metric = oneOf("metric", b.metric, ALERT_METRICS);
  const period = oneOf("period", b.period, ALERT_PERIODS);
  const basis = oneOf("basis", b.basis, ALERT_BASES);

  let modelId: string | null = null;
  if (b.model_id !== undefined && b.model_id !== null) {
    if (typeof b.model_id !== "string" || b.model_id.trim() === "" || b.model_id.length > 200) {
      throw bad("model_id", "must be a model id");
    }
    modelId = b.model_id;
  }

  if (!Array.isArray(b.thresholds) || b.thresholds.length === 0 || b.thresholds.length > MAX_THRESHOLDS) {
    throw bad("thresholds", `must be a list of 1 to ${MAX_THRESHOLDS} percentages`);
  }
  const thresholds = b.thresholds.map((t, i) => {
    let pct: Dec;
    try {
      pct = parseDec(t, 2);
    } catch (err) {
      if (err instanceof DecimalError) throw DomainError.validation(["body", "thresholds", i], err.message);
      throw err;
    }
    if (pct <= 0n || pct > MAX_PERCENT) {
      throw DomainError.validation(
        ["body", "thresholds", i],
        "must be a percentage above 0 and at most 1000",
      );
    }
    return pct;
  });
  thresholds.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  if (thresholds.some((t, i) => i > 0 && t === thresholds[i - 1]))
    throw bad("thresholds", "must be distinct");

  let value: Dec | null = null;
  if (basis === "absolute") {
    if (b.value === undefined || b.value === null) throw bad("value", "is required when basis is absolute");
    try {
      value = parseDec(b.value, metric === "cost" ? COST_PLACES : QUANTITY_PLACES);
    } catch (err) {
      if (err instanceof DecimalError) throw bad("value", err.message);
      throw err;
    }
    if (value <= 0n) throw bad("value", "must be above 0");
    if (metric === "requests" && value % ONE !== 0n) throw bad("value", "must be a whole number of requests");
  } else if (b.value !== undefined && b.value !== null) {
    throw bad("value", `is only for basis absolute (basis ${basis} takes its limit from the account)`);
  }

  // included quantities are per model and per billing month; a budget is per month and covers all
  // models; mixing them with other metrics or periods would compare unlike things
  if (basis === "included") {
    if (metric !== "quantity") throw bad("metric", "must be quantity when basis is included");
    if (modelId === null) throw bad("model_id", "is required when basis is included");
    if (period !== "month") throw bad("period", "must be month when basis is included");
  }
  if (basis === "budget") {
    if (metric !== "cost") throw bad("metric", "must be cost when basis is budget");
    if (modelId !== null)
      throw bad("model_id", "must be absent when basis is budget (a budget covers all models)");
    if (period !== "month") throw bad("period", "must be month when basis is budget");
  }
  return { metric, modelId, period, thresholds, basis, value };
}

/** Where a rule's limit comes from outside the rule. */
export interface LimitSources {
  /** the plan's included quantity of the rule's model this month; null when the plan has none */
  includedQuantity: Dec | null;
  /** the account's monthly budget in its currency; null when it has none */
  monthlyBudget: Dec | null;
}

/** The limit thresholds are percentages of; null (or not above 0) leaves the rule inert. */
export function ruleLimit(rule: AlertRuleSpec, sources: LimitSources): Dec | null {
  const limit =
    rule.basis === "absolute"
      ? rule.value
      : rule.basis === "included"
        ? sources.includedQuantity
        : sources.monthlyBudget;
  return limit !== null && limit > 0n ? limit : null;
}

/** The event a crossing of this rule sends. */
export function crossingEventType(
  rule: AlertRuleSpec,
): "usage.threshold_crossed" | "budget.threshold_crossed" {
  return rule.basis === "budget" ? "budget.threshold_crossed" : "usage.threshold_crossed";
}

export interface AlertPeriodRange {
  /** epoch ms, inclusive: local midnight (of the day, or of the 1st for a month) */
  start: number;
  /** epoch ms, exclusive */
  end: number;
}

/** The rule's period containing `at`, in the account's billing timezone. */
export function alertPeriodContaining(at: number, period: AlertPeriod, timezone: string): AlertPeriodRange {
  if (!isValidZone(timezone)) throw DomainError.validation(["billing_timezone"], "must be an IANA timezone");
  return { start: floorTo(at, period, timezone), end: nextBoundary(at, period, timezone) };
}

/** total >= limit x pct / 100, compared exactly without dividing. */
function reaches(total: Dec, limit: Dec, pct: Dec): boolean {
  return total * 100n * ONE >= limit * pct;
}

/**
 * The thresholds that fire now: at or below the total, and not fired yet in this period.
 * `fired` holds the percentages already recorded for (rule, period).
 */
export function thresholdsToFire(
  thresholds: readonly Dec[],
  limit: Dec,
  total: Dec,
  fired: ReadonlySet<Dec>,
): Dec[] {
  return thresholds.filter((pct) => !fired.has(pct) && reaches(total, limit, pct));
}

/** `data` of a threshold message (usage.threshold_crossed, budget.threshold_crossed). */
export interface ThresholdData {
  account_id: string;
  rule_id: string;
  metric: AlertMetric;
  model_id: string | null;
  period: { start: string; end: string };
  /** the percentage crossed */
  threshold: Dec;
  /** the period total when it fired */
  value: Dec;
  /** what the percentage is of */
  limit: Dec;
}

/** `data` of a usage.threshold_forecast message: the threshold data plus the projected instant. */
export interface ThresholdForecastData extends ThresholdData {
  forecast_at: string;
}

export function thresholdData(
  rule: AlertRule,
  period: AlertPeriodRange,
  timezone: string,
  threshold: Dec,
  total: Dec,
  limit: Dec,
): ThresholdData {
  return {
    account_id: rule.accountId,
    rule_id: rule.id,
    metric: rule.metric,
    model_id: rule.modelId,
    period: { start: formatLocal(period.start, timezone), end: formatLocal(period.end, timezone) },
    threshold,
    value: total,
    limit,
  };
}

/* Forecast */

/** Days of history the trend is taken over. */
export const FORECAST_DAYS = 7;
/** A forecast message goes out when the projected date is at most this far ahead. */
export const FORECAST_NOTICE_MS = 3 * DAY_MS;

/**
 * The history window at `now`: the 7 complete local days before today, [start, end). The caller
 * sums the metric per local day over it (days without usage are 0).
 */
export function forecastWindow(now: number, timezone: string): AlertPeriodRange {
  const end = floorTo(now, "day", timezone);
  let start = end;
  for (let i = 0; i < FORECAST_DAYS; i++) start = floorTo(start - 1, "day", timezone);
  return { start, end };
}

export type ThresholdOutlook =
  | { threshold: Dec; status: "crossed" }
  | { threshold: Dec; status: "projected"; at: number }
  | { threshold: Dec; status: "not_projected" };

/**
 * When the period's trend reaches each threshold. The trend is linear: the average daily rate over
 * the last 7 days (their sum / 7, empty days counting as 0) continued from the total now. A
 * threshold already reached is `crossed`; one the trend does not reach before the period ends (or
 * a rate of 0) is `not_projected`. Linear on a week's average is deliberately simple: it is
 * explainable in one sentence, and a week smooths out weekday/weekend swings.
 */
export function forecastThresholds(input: {
  thresholds: readonly Dec[];
  limit: Dec;
  total: Dec;
  /** exactly 7 daily totals of the metric, from forecastWindow */
  dailyTotals: readonly Dec[];
  now: number;
  periodEnd: number;
}): ThresholdOutlook[] {
  const { thresholds, limit, total, dailyTotals, now, periodEnd } = input;
  if (dailyTotals.length !== FORECAST_DAYS) {
    throw new Error(`a forecast needs ${FORECAST_DAYS} daily totals, got ${dailyTotals.length}`);
  }
  const weekSum = sumDec(dailyTotals);
  return thresholds.map((threshold): ThresholdOutlook => {
    if (reaches(total, limit, threshold)) return { threshold, status: "crossed" };
    if (weekSum <= 0n) return { threshold, status: "not_projected" };
    // remaining = limit*pct/100 - total; days = remaining / (weekSum/7); all scaled so no division
    // happens before the last one, which rounds up to the first millisecond the line reaches it
    const remaining = limit * threshold - total * 100n * ONE; // x 100 x ONE
    const num = remaining * BigInt(FORECAST_DAYS) * BigInt(DAY_MS);
    const den = weekSum * 100n * ONE;
    const ms = (num + den - 1n) / den;
    const at = now + Number(ms);
    return at < periodEnd ? { threshold, status: "projected", at } : { threshold, status: "not_projected" };
  });
}

/**
 * The thresholds whose usage.threshold_forecast is due: projected within the next 3 days and not
 * forecast yet in this period (`forecastFired`, recorded like firings, unique on rule, period,
 * threshold). A threshold already crossed gets no forecast: its crossing message says more.
 */
export function forecastsDue(
  outlook: readonly ThresholdOutlook[],
  now: number,
  forecastFired: ReadonlySet<Dec>,
) {
  return outlook.filter(
    (o): o is Extract<ThresholdOutlook, { status: "projected" }> =>
      o.status === "projected" && o.at - now <= FORECAST_NOTICE_MS && !forecastFired.has(o.threshold),
  );
}

export function forecastData(base: ThresholdData, at: number): ThresholdForecastData {
  return { ...base, forecast_at: formatUtc(at) };
}
