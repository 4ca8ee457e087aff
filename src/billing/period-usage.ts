import type { BillingPeriod } from "../domain/billing-period.ts";
import { activationInForce } from "../domain/plan-in-force.ts";
import type { PlanBilling } from "./charge-schema.ts";
import {
  type Adjustment,
  buildInvoice,
  type Invoice,
  type PlanSegment,
  type UsageTotals,
} from "./invoice-builder.ts";

/**
 * What the store/query layer provides to build an invoice, and the one composition of it with the
 * pure builder. Implementations answer from the rollups, so the cost of a period does not grow
 * with its number of events.
 */
export interface PeriodUsage {
  /**
   * The account's usage with `start <= event time < end`, one entry per (model, meter) that has
   * events: exact quantity, exact price-book cost, and the number of events (a metered event
   * counts once for each meter it carries). Order does not matter.
   */
  usageTotals(accountId: string, start: number, end: number): Promise<UsageTotals[]>;
}

/** A plan activation, as the store keeps subscriptions (history kept, creation order). */
export interface PlanActivation {
  planId: string;
  activatedAt: number;
  /** when the subscription was ended (exclusive); null or absent: it runs on */
  endsAt?: number | null;
}

export interface SubscriptionSegment {
  start: number;
  end: number;
  planId: string | null;
}

/**
 * The period cut at each plan change: in each segment one plan is in force, the latest
 * activation at or before its start that has not ended by then (of two at the same instant, the
 * later created; `activationInForce`, the rule limits use too). Before the first activation, and
 * once every activation begun has ended, no plan is in force. Adjacent segments of the same plan
 * are one.
 */
export function subscriptionSegments(
  period: BillingPeriod,
  activations: readonly PlanActivation[],
): SubscriptionSegment[] {
  // stable sort: activations at the same instant keep creation order, the later one wins
  const sorted = [...activations].sort((a, b) => a.activatedAt - b.activatedAt);
  const planAt = (at: number): string | null => activationInForce(sorted, at)?.planId ?? null;
  const changes = sorted.flatMap((a) => (a.endsAt == null ? [a.activatedAt] : [a.activatedAt, a.endsAt]));
  const cuts = [...new Set(changes.filter((t) => t > period.start && t < period.end))].sort((x, y) => x - y);
  const bounds = [period.start, ...cuts, period.end];
  const out: SubscriptionSegment[] = [];
  for (let i = 0; i < bounds.length - 1; i++) {
    const planId = planAt(bounds[i]);
    const last = out[out.length - 1];
    if (last && last.planId === planId) last.end = bounds[i + 1];
    else out.push({ start: bounds[i], end: bounds[i + 1], planId });
  }
  return out;
}

export interface DraftInvoiceInput {
  id: string;
  accountId: string;
  period: BillingPeriod;
  activations: readonly PlanActivation[];
  /** the billing terms of a plan (charges, base fee, currency); null when it has none */
  planBilling: (planId: string) => PlanBilling | null;
  adjustments?: readonly Adjustment[];
}

/** The period's draft invoice: one usage query per plan segment (usually one), then the builder. */
export async function draftInvoice(source: PeriodUsage, input: DraftInvoiceInput): Promise<Invoice> {
  const segments: PlanSegment[] = [];
  for (const s of subscriptionSegments(input.period, input.activations)) {
    segments.push({
      ...s,
      billing: s.planId === null ? null : input.planBilling(s.planId),
      usage: await source.usageTotals(input.accountId, s.start, s.end),
    });
  }
  return buildInvoice({
    id: input.id,
    accountId: input.accountId,
    period: input.period,
    segments,
    adjustments: input.adjustments,
  });
}
