import type { BillingPeriod } from "../domain/billing-period.ts";
import {
  type Charge,
  type ChargeResult,
  computeCharge,
  type PricingModel,
  type TierLine,
} from "../domain/charges.ts";
import { type Dec, divDec, formatDec, mulDec, ONE, parseDec, ZERO } from "../domain/decimal.ts";
import { formatLocal } from "../domain/time.ts";
import { DEFAULT_CURRENCY, type PlanBilling } from "./charge-schema.ts";

/**
 * Invoices as pure data: from a period, the plan terms in force in it and the period's usage per
 * (model, meter), build the invoice document of DESIGN.md. No store, no clock: the caller passes
 * ids, the number and the issue time, so the same inputs always give the same document.
 *
 * Amounts stay exact (18 places) on every line; only the payable total is rounded, once, half-up
 * to cents. Mid-period plan changes: docs/decisions/0011-invoices.md.
 */

/** A period's usage of one model (and meter) inside one plan segment: what the rollups give. */
export interface UsageTotals {
  modelId: string;
  meter: string | null;
  quantity: Dec;
  /** the price-book cost of the same events */
  cost: Dec;
  events: number;
}

/** A stretch [start, end) of the period during which one plan (or none) was in force. */
export interface PlanSegment {
  start: number;
  end: number;
  planId: string | null;
  /** the plan's billing terms; null: no subscription, everything at the price book */
  billing: PlanBilling | null;
  usage: readonly UsageTotals[];
}

export interface Adjustment {
  /** the closed period the late usage belongs to, "2026-10" */
  period: string;
  modelId: string | null;
  meter: string | null;
  quantity: Dec;
  amount: Dec;
  description: string;
}

export interface InvoiceLine {
  modelId: string | null;
  meter: string | null;
  description: string;
  /** how the line was priced; null for the base fee. For "package", tier quantities are packages */
  pricing: PricingModel | null;
  quantity: Dec;
  includedQuantity: Dec;
  billableQuantity: Dec;
  tiers: TierLine[];
  amount: Dec;
  events: number;
  /** the workspace-usage request that reproduces the line's quantity and cost; null for fees */
  rollupQuery: string | null;
}

export type InvoiceStatus = "draft" | "finalized" | "void" | "no_charge";

export interface Invoice {
  id: string;
  number: string | null;
  accountId: string;
  period: BillingPeriod;
  status: InvoiceStatus;
  currency: string;
  lines: InvoiceLine[];
  adjustments: Adjustment[];
  /** exact sum of lines and adjustments */
  subtotal: Dec;
  /** the payable total: subtotal rounded once, half-up to cents */
  total: Dec;
  issuedAt: number | null;
}

export interface BuildInvoiceInput {
  id: string;
  accountId: string;
  period: BillingPeriod;
  /** ordered, non-overlapping, inside the period; usually one covering it all */
  segments: readonly PlanSegment[];
  adjustments?: readonly Adjustment[];
}

/** Half-up to cents: the one rounding of an invoice. */
export function roundToCents(v: Dec): Dec {
  return divDec(v, ONE, 2);
}

/** The draft (live, `status: "draft"`) invoice of a period. */
export function buildInvoice(input: BuildInvoiceInput): Invoice {
  const { period } = input;
  const split = input.segments.length > 1;
  const lines: InvoiceLine[] = [];
  for (const segment of input.segments) {
    const fee = baseFeeLine(segment, period, split);
    if (fee) lines.push(fee);
    const usage = [...segment.usage].sort(byModelAndMeter);
    for (const u of usage) lines.push(usageLine(input.accountId, segment, u, period, split));
  }
  const adjustments = [...(input.adjustments ?? [])];
  let subtotal = ZERO;
  for (const l of lines) subtotal += l.amount;
  for (const a of adjustments) subtotal += a.amount;
  const currency = input.segments.findLast((s) => s.billing !== null)?.billing?.currency ?? DEFAULT_CURRENCY;
  return {
    id: input.id,
    number: null,
    accountId: input.accountId,
    period,
    status: "draft",
    currency,
    lines,
    adjustments,
    subtotal,
    total: roundToCents(subtotal),
    issuedAt: null,
  };
}

/** Whether finalizing this invoice consumes a number: only a rounded total above zero does. */
export function needsNumber(invoice: Invoice): boolean {
  return invoice.total > ZERO;
}

/**
 * The finalized invoice: `no_charge` when the rounded total is 0, else `finalized`. `number` must
 * be given exactly when needsNumber() says so, so numbers stay gapless.
 */
export function finalizeInvoice(draft: Invoice, issuedAt: number, number: string | null): Invoice {
  if (draft.status !== "draft") throw new Error(`invoice ${draft.id} is ${draft.status}, not a draft`);
  if ((number !== null) !== needsNumber(draft)) {
    throw new Error(`invoice ${draft.id}: a number is given exactly when the total is above zero`);
  }
  return { ...draft, number, issuedAt, status: draft.total === ZERO ? "no_charge" : "finalized" };
}

/** A finalized (or no-charge) invoice, voided: only its status changes; its number stays used. */
export function voidInvoice(inv: Invoice): Invoice {
  if (inv.status !== "finalized" && inv.status !== "no_charge") {
    throw new Error(`invoice ${inv.id} is ${inv.status}: only a finalized invoice can be voided`);
  }
  return { ...inv, status: "void" };
}

/** Gapless invoice numbers per year of finalization in UTC: `TLY-2026-000001`. */
export function formatInvoiceNumber(year: number, sequence: number): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new Error("an invoice sequence starts at 1");
  return `TLY-${year}-${String(sequence).padStart(6, "0")}`;
}

/** The charge that bills a model at its price book: the events' own cost. */
export function priceBookCharge(modelId: string, meter: string | null): Charge {
  return {
    modelId,
    meter,
    pricing: "standard",
    unitPrice: null,
    tiers: [],
    packageSize: null,
    packagePrice: null,
    includedQuantity: ZERO,
    minimumQuantity: ZERO,
  };
}

/** The plan's charge for a model and meter, or the price book when the plan has none. */
export function chargeFor(billing: PlanBilling | null, modelId: string, meter: string | null): Charge {
  const found = billing?.charges.find((c) => c.modelId === modelId && c.meter === meter);
  return found ?? priceBookCharge(modelId, meter);
}

/**
 * Late usage of a closed period, re-rated: what the period's line would have cost with the late
 * quantity minus what it was billed, so tiers and minimums count the whole period (99,999 billed
 * at 0 plus 2 late images under a 100,000 minimum bills all 100,001).
 */
export function lateUsageAdjustment(args: {
  period: string;
  charge: Charge;
  billed: { quantity: Dec; cost: Dec };
  late: { quantity: Dec; cost: Dec };
}): Adjustment {
  const { charge, billed, late } = args;
  const before = computeCharge(charge, billed).amount;
  const after = computeCharge(charge, {
    quantity: billed.quantity + late.quantity,
    cost: billed.cost + late.cost,
  }).amount;
  const sign = late.quantity < ZERO ? "" : "+";
  return {
    period: args.period,
    modelId: charge.modelId,
    meter: charge.meter,
    quantity: late.quantity,
    amount: after - before,
    description: `Late usage of ${args.period}: ${sign}${formatDec(late.quantity)} ${modelLabel(charge.modelId, charge.meter)}`,
  };
}

/** The workspace-usage request that reproduces a line (month buckets exactly over [start, end)). */
export function rollupQuery(
  accountId: string,
  modelId: string,
  start: number,
  end: number,
  timezone: string,
): string {
  const q = new URLSearchParams({
    account_id: accountId,
    endpoint_id: modelId,
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    timezone,
    timeframe: "month",
    bound_to_timeframe: "false",
  });
  return `/v1/models/usage?${q.toString()}`;
}

function usageLine(
  accountId: string,
  segment: PlanSegment,
  usage: UsageTotals,
  period: BillingPeriod,
  split: boolean,
): InvoiceLine {
  const charge = chargeFor(segment.billing, usage.modelId, usage.meter);
  const result = computeCharge(charge, usage);
  return {
    modelId: usage.modelId,
    meter: usage.meter,
    description: describe(charge, result) + (split ? segmentNote(segment, period) : ""),
    pricing: charge.pricing,
    quantity: result.quantity,
    includedQuantity: result.includedQuantity,
    billableQuantity: result.billableQuantity,
    tiers: result.tiers,
    amount: result.amount,
    events: usage.events,
    rollupQuery: rollupQuery(accountId, usage.modelId, segment.start, segment.end, period.timezone),
  };
}

/**
 * The base fee, in proportion to the time its plan was in force: the share of the period is
 * rounded half-up to 6 places (a quantity), so quantity x fee = amount exactly, and a plan in
 * force all period bills exactly its fee.
 */
function baseFeeLine(segment: PlanSegment, period: BillingPeriod, split: boolean): InvoiceLine | null {
  const fee = segment.billing?.baseFee ?? ZERO;
  if (fee === ZERO) return null;
  const share = divDec(BigInt(segment.end - segment.start) * ONE, BigInt(period.end - period.start) * ONE, 6);
  const amount = mulDec(share, fee);
  return {
    modelId: null,
    meter: null,
    description: `Base fee${split ? segmentNote(segment, period) : ""}`,
    pricing: null,
    quantity: share,
    includedQuantity: ZERO,
    billableQuantity: share,
    tiers: [{ from: ZERO, upTo: null, quantity: share, unitPrice: fee, flatFee: ZERO, amount }],
    amount,
    events: 0,
    rollupQuery: null,
  };
}

function describe(charge: Charge, result: ChargeResult): string {
  const parts = [modelLabel(charge.modelId, charge.meter)];
  switch (charge.pricing) {
    case "standard":
      parts.push(charge.unitPrice === null ? "price book" : `at ${formatDec(charge.unitPrice)} per unit`);
      break;
    case "graduated":
    case "volume":
      parts.push(`${charge.pricing} tiers`);
      break;
    case "package":
      parts.push(
        `packages of ${formatDec(charge.packageSize ?? ONE)} at ${formatDec(charge.packagePrice ?? ZERO)}`,
      );
      break;
  }
  if (charge.includedQuantity > ZERO) parts.push(`${formatDec(charge.includedQuantity)} included`);
  if (charge.minimumQuantity > ZERO) {
    parts.push(
      result.quantity <= charge.minimumQuantity
        ? `not billed at or below ${formatDec(charge.minimumQuantity)}`
        : `above the minimum of ${formatDec(charge.minimumQuantity)}: billed from the first unit`,
    );
  }
  return parts.join(", ");
}

function modelLabel(modelId: string, meter: string | null): string {
  return meter === null ? modelId : `${modelId} (${meter})`;
}

function segmentNote(segment: PlanSegment, period: BillingPeriod): string {
  const from = formatLocal(segment.start, period.timezone).slice(0, 16).replace("T", " ");
  const to = formatLocal(segment.end, period.timezone).slice(0, 16).replace("T", " ");
  return ` [${segment.planId === null ? "no plan" : `plan ${segment.planId}`}, ${from} to ${to}]`;
}

function byModelAndMeter(a: UsageTotals, b: UsageTotals): number {
  if (a.modelId !== b.modelId) return a.modelId < b.modelId ? -1 : 1;
  const am = a.meter ?? "";
  const bm = b.meter ?? "";
  return am < bm ? -1 : am > bm ? 1 : 0;
}

/* The wire document (DESIGN.md), and back: what the store keeps and the API answers. */

export interface InvoiceDocumentOptions<D> {
  /** how a decimal is written: `dec` from http/json.ts for exact JSON numbers, formatDec for strings */
  decimal: (v: Dec) => D;
}

/** The invoice in DESIGN.md's shape. Instants are local ISO 8601 with offset in the period's zone. */
export function invoiceDocument<D>(inv: Invoice, { decimal }: InvoiceDocumentOptions<D>) {
  const tier = (t: TierLine) => ({
    from: decimal(t.from),
    up_to: t.upTo === null ? null : decimal(t.upTo),
    quantity: decimal(t.quantity),
    unit_price: decimal(t.unitPrice),
    flat_fee: decimal(t.flatFee),
    amount: decimal(t.amount),
  });
  return {
    id: inv.id,
    number: inv.number,
    account_id: inv.accountId,
    period: {
      label: inv.period.label,
      start: formatLocal(inv.period.start, inv.period.timezone),
      end: formatLocal(inv.period.end, inv.period.timezone),
      timezone: inv.period.timezone,
    },
    status: inv.status,
    currency: inv.currency,
    lines: inv.lines.map((l) => ({
      model_id: l.modelId,
      meter: l.meter,
      description: l.description,
      pricing: l.pricing,
      quantity: decimal(l.quantity),
      included_quantity: decimal(l.includedQuantity),
      billable_quantity: decimal(l.billableQuantity),
      tiers: l.tiers.map(tier),
      amount: decimal(l.amount),
      events: l.events,
      rollup_query: l.rollupQuery,
    })),
    adjustments: inv.adjustments.map((a) => ({
      period: a.period,
      model_id: a.modelId,
      meter: a.meter,
      quantity: decimal(a.quantity),
      amount: decimal(a.amount),
      description: a.description,
    })),
    subtotal: decimal(inv.subtotal),
    total: decimal(inv.total),
    issued_at: inv.issuedAt === null ? null : new Date(inv.issuedAt).toISOString(),
  };
}

export type InvoiceDocument = ReturnType<typeof invoiceDocument<string>>;

/**
 * Reads a stored document back into an Invoice. Store it with `decimal: formatDec` (strings): a
 * JSON number with 18 places would not survive JSON.parse.
 */
export function invoiceFromDocument(doc: InvoiceDocument): Invoice {
  const d = (v: string) => parseDec(v);
  const at = (iso: string) => {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) throw new Error(`invoice ${doc.id}: bad instant ${iso}`);
    return ms;
  };
  return {
    id: doc.id,
    number: doc.number,
    accountId: doc.account_id,
    period: {
      label: doc.period.label,
      start: at(doc.period.start),
      end: at(doc.period.end),
      timezone: doc.period.timezone,
    },
    status: doc.status,
    currency: doc.currency,
    lines: doc.lines.map((l) => ({
      modelId: l.model_id,
      meter: l.meter,
      description: l.description,
      pricing: l.pricing,
      quantity: d(l.quantity),
      includedQuantity: d(l.included_quantity),
      billableQuantity: d(l.billable_quantity),
      tiers: l.tiers.map((t) => ({
        from: d(t.from),
        upTo: t.up_to === null ? null : d(t.up_to),
        quantity: d(t.quantity),
        unitPrice: d(t.unit_price),
        flatFee: d(t.flat_fee),
        amount: d(t.amount),
      })),
      amount: d(l.amount),
      events: l.events,
      rollupQuery: l.rollup_query,
    })),
    adjustments: doc.adjustments.map((a) => ({
      period: a.period,
      modelId: a.model_id,
      meter: a.meter,
      quantity: d(a.quantity),
      amount: d(a.amount),
      description: a.description,
    })),
    subtotal: d(doc.subtotal),
    total: d(doc.total),
    issuedAt: doc.issued_at === null ? null : at(doc.issued_at),
  };
}
