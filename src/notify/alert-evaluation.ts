import {
  type AlertPeriodRange,
  type AlertRule,
  crossingEventType,
  forecastData,
  forecastsDue,
  forecastThresholds,
  type ThresholdOutlook,
  thresholdData,
  thresholdsToFire,
} from "../domain/alerts.ts";
import type { Dec } from "../domain/decimal.ts";
import { formatDec } from "../domain/decimal.ts";
import { formatUtc } from "../domain/time.ts";
import { buildMessage, type EventType, type MessageBody, newMessageId } from "./messages.ts";

/**
 * From an alert rule's numbers to the rows to write: the glue between domain/alerts.ts and the
 * outbox, so that the store step only reads totals and writes rows, all in the transaction of the
 * usage that moved the total:
 *
 *   for each rule of the account matching the events' model, and each period the events fall in
 *   (a backfill lands in its own period):
 *     total  = the rule's metric over [period.start, period.end) from rollups
 *     fired  = thresholds in alert_firings for (rule, period.start, kind 'crossed')
 *     for each planned firing: INSERT INTO alert_firings ... ON CONFLICT DO NOTHING;
 *       only when a row was inserted, write the message for each subscriber (subscribers below).
 *
 * The unique key (rule_id, period_start, kind, threshold) is what makes a crossing fire once when
 * two instances cross it at the same moment: both plan it, one insert wins, the other's is a no-op.
 */

export interface PlannedFiring {
  kind: "crossed" | "forecast";
  ruleId: string;
  periodStart: number;
  threshold: Dec;
  message: MessageBody;
}

export interface RuleTotals {
  rule: AlertRule;
  /** the account's billing timezone */
  timezone: string;
  period: AlertPeriodRange;
  /** from ruleLimit; null leaves the rule inert */
  limit: Dec | null;
  total: Dec;
  now: number;
}

/** The crossings to record now, with their messages. */
export function planCrossings(input: RuleTotals & { fired: ReadonlySet<Dec> }): PlannedFiring[] {
  const { rule, timezone, period, limit, total, now, fired } = input;
  if (limit === null) return [];
  const type = crossingEventType(rule);
  return thresholdsToFire(rule.thresholds, limit, total, fired).map((threshold) => ({
    kind: "crossed",
    ruleId: rule.id,
    periodStart: period.start,
    threshold,
    message: buildMessage(type, thresholdData(rule, period, timezone, threshold, total, limit), now),
  }));
}

/** The rule's outlook, null when the rule has no limit. */
export function ruleOutlook(input: RuleTotals & { dailyTotals: readonly Dec[] }): ThresholdOutlook[] | null {
  if (input.limit === null) return null;
  return forecastThresholds({
    thresholds: input.rule.thresholds,
    limit: input.limit,
    total: input.total,
    dailyTotals: input.dailyTotals,
    now: input.now,
    periodEnd: input.period.end,
  });
}

/**
 * The usage.threshold_forecast messages due now (a periodic sweep runs this per rule; forecasts
 * move slowly, an hourly sweep is enough). Recorded like crossings, with kind 'forecast'.
 */
export function planForecasts(
  input: RuleTotals & { dailyTotals: readonly Dec[]; forecastFired: ReadonlySet<Dec> },
): PlannedFiring[] {
  const { rule, timezone, period, limit, total, now } = input;
  const outlook = ruleOutlook(input);
  if (outlook === null || limit === null) return [];
  return forecastsDue(outlook, now, input.forecastFired).map((o) => ({
    kind: "forecast",
    ruleId: rule.id,
    periodStart: period.start,
    threshold: o.threshold,
    message: buildMessage(
      "usage.threshold_forecast",
      forecastData(thresholdData(rule, period, timezone, o.threshold, total, limit), o.at),
      now,
    ),
  }));
}

/** The JSON of one threshold in `GET /v1/accounts/{id}/alerts`: `forecast_at` is null unless projected. */
export function outlookJson(o: ThresholdOutlook): {
  threshold: string;
  status: string;
  forecast_at: string | null;
} {
  return {
    threshold: formatDec(o.threshold),
    status: o.status,
    forecast_at: o.status === "projected" ? formatUtc(o.at) : null,
  };
}

export interface SubscribedEndpoint {
  id: string;
  /** null: a root endpoint, which hears every account */
  accountId: string | null;
  events: readonly EventType[];
  disabled: boolean;
}

/**
 * Who gets a message: enabled endpoints subscribed to its type, of its account or of no account.
 * A message goes to the outbox once per subscriber (its own id and delivery log each).
 */
export function subscribers<E extends SubscribedEndpoint>(
  endpoints: readonly E[],
  type: EventType,
  accountId: string | null,
): E[] {
  return endpoints.filter(
    (e) => !e.disabled && e.events.includes(type) && (e.accountId === null || e.accountId === accountId),
  );
}

/** One outbox row: one message to one endpoint, with its own id (the `webhook-id`, the retry route's key). */
export interface OutboxRow {
  id: string;
  endpointId: string;
  type: EventType;
  createdAt: number;
  body: Uint8Array;
}

/**
 * The outbox rows of a message: the same bytes to every subscriber, each under its own id (a
 * delivery, its log and its manual retry are per endpoint). The first keeps the message's id.
 */
export function outboxRows(message: MessageBody, endpoints: readonly { id: string }[]): OutboxRow[] {
  return endpoints.map((e, i) => ({
    id: i === 0 ? message.id : newMessageId(),
    endpointId: e.id,
    type: message.type,
    createdAt: message.createdAt,
    body: message.body,
  }));
}
