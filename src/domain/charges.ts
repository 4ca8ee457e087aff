import { type Dec, mulDec, ONE, ZERO } from "./decimal.ts";
import { unitPriceOfCost } from "./pricing.ts";

/**
 * Plan charges: what a period's quantity of one model (or one meter of it) costs under a plan.
 * Pure and exact: quantities have at most 6 places and prices at most 12, so every product is
 * exact at 18 places (decimal.ts); nothing here rounds except the price-book average below.
 */

export const PRICING_MODELS = ["standard", "graduated", "volume", "package"] as const;
export type PricingModel = (typeof PRICING_MODELS)[number];

export interface Tier {
  /** inclusive upper bound of the tier, in units of the period; null: no bound (last tier only) */
  upTo: Dec | null;
  unitPrice: Dec;
  flatFee: Dec;
}

export interface Charge {
  modelId: string;
  /** the meter priced, for meter-priced models; null for a model with one unit price */
  meter: string | null;
  pricing: PricingModel;
  /** standard only; null bills at the model's price book (the events' own cost) */
  unitPrice: Dec | null;
  /** graduated and volume: ascending, non-empty; the last is open whatever its `upTo` says */
  tiers: readonly Tier[];
  packageSize: Dec | null;
  packagePrice: Dec | null;
  includedQuantity: Dec;
  /** at or below it the period's quantity is not billed; above it, billed from the first unit */
  minimumQuantity: Dec;
}

/**
 * One row of a line's breakdown: `quantity` units above `from` and up to `upTo` (inclusive; the
 * previous tier's bound, so fractional quantities split exactly), each at `unitPrice`, plus
 * `flatFee`. For package pricing `quantity` is the number of packages and `unitPrice` the price
 * of one package.
 */
export interface TierLine {
  from: Dec;
  upTo: Dec | null;
  quantity: Dec;
  unitPrice: Dec;
  flatFee: Dec;
  amount: Dec;
}

export interface ChargeResult {
  quantity: Dec;
  includedQuantity: Dec;
  billableQuantity: Dec;
  tiers: TierLine[];
  amount: Dec;
}

export interface PeriodQuantity {
  quantity: Dec;
  /** the price-book cost of the same events: what a standard charge without unit_price bills */
  cost: Dec;
}

/** Units billed: quantity - included (never below 0), or 0 at or below the minimum quantity. */
export function billableQuantity(charge: Charge, quantity: Dec): Dec {
  if (quantity <= charge.minimumQuantity) return ZERO;
  const billable = quantity - charge.includedQuantity;
  return billable > ZERO ? billable : ZERO;
}

/** The amount of one charge for a period's usage, with its tier breakdown. */
export function computeCharge(charge: Charge, usage: PeriodQuantity): ChargeResult {
  const billable = billableQuantity(charge, usage.quantity);
  const tiers = billable === ZERO ? [] : tierLines(charge, billable, usage);
  let amount = ZERO;
  for (const t of tiers) amount += t.amount;
  return {
    quantity: usage.quantity,
    includedQuantity: charge.includedQuantity,
    billableQuantity: billable,
    tiers,
    amount,
  };
}

function tierLines(charge: Charge, billable: Dec, usage: PeriodQuantity): TierLine[] {
  switch (charge.pricing) {
    case "standard":
      return [standardLine(charge.unitPrice, billable, usage)];
    case "graduated":
      return graduatedLines(charge.tiers, billable);
    case "volume":
      return [volumeLine(charge.tiers, billable)];
    case "package":
      return [packageLine(charge, billable)];
  }
}

function standardLine(unitPrice: Dec | null, billable: Dec, usage: PeriodQuantity): TierLine {
  if (unitPrice !== null) {
    return line(ZERO, null, billable, unitPrice, ZERO, mulDec(billable, unitPrice));
  }
  // the price book: the events' own cost; with an included quantity the billable share of it, at
  // the period's average price (half-up at 18 places, the one rounding in this module)
  const amount =
    billable === usage.quantity ? usage.cost : roundedRatio(usage.cost * billable, usage.quantity);
  return line(ZERO, null, billable, unitPriceOfCost(usage.cost, usage.quantity), ZERO, amount);
}

/** Each unit at its own tier's price; the flat fee of every tier a unit falls in. */
function graduatedLines(tiers: readonly Tier[], billable: Dec): TierLine[] {
  const out: TierLine[] = [];
  let from = ZERO;
  for (const [i, tier] of tiers.entries()) {
    const upTo = i === tiers.length - 1 ? null : tier.upTo;
    const top = upTo === null || billable < upTo ? billable : upTo;
    const quantity = top - from;
    out.push(
      line(
        from,
        upTo,
        quantity,
        tier.unitPrice,
        tier.flatFee,
        mulDec(quantity, tier.unitPrice) + tier.flatFee,
      ),
    );
    if (upTo === null || billable <= upTo) break;
    from = upTo;
  }
  return out;
}

/** Every unit at the price of the tier the billable quantity falls in, plus that tier's flat fee. */
function volumeLine(tiers: readonly Tier[], billable: Dec): TierLine {
  let from = ZERO;
  for (const [i, tier] of tiers.entries()) {
    const upTo = i === tiers.length - 1 ? null : tier.upTo;
    if (upTo === null || billable <= upTo) {
      return line(
        from,
        upTo,
        billable,
        tier.unitPrice,
        tier.flatFee,
        mulDec(billable, tier.unitPrice) + tier.flatFee,
      );
    }
    from = upTo;
  }
  throw new Error("volume pricing needs at least one tier");
}

/** ceil(billable / package_size) packages at package_price each. */
function packageLine(charge: Charge, billable: Dec): TierLine {
  const size = charge.packageSize;
  const price = charge.packagePrice;
  if (size === null || size <= ZERO || price === null) {
    throw new Error(`package pricing of ${charge.modelId} needs package_size > 0 and package_price`);
  }
  const packages = ((billable + size - 1n) / size) * ONE;
  return line(ZERO, null, packages, price, ZERO, mulDec(packages, price));
}

function line(
  from: Dec,
  upTo: Dec | null,
  quantity: Dec,
  unitPrice: Dec,
  flatFee: Dec,
  amount: Dec,
): TierLine {
  return { from, upTo, quantity, unitPrice, flatFee, amount };
}

/** n / d for atto numerators, half-up on magnitude (d > 0). */
function roundedRatio(n: bigint, d: bigint): bigint {
  if (d === 0n) return ZERO;
  const neg = n < 0n;
  const a = neg ? -n : n;
  let q = a / d;
  if ((a % d) * 2n >= d) q += 1n;
  return neg ? -q : q;
}
