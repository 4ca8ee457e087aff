import { type Dec, divDec, mulDec } from "./decimal.ts";
import type { MeterPrices } from "./meters.ts";

export interface PricePoint {
  effectiveFrom: number;
  unitPrice: Dec;
  currency: string;
  /** a price per meter instead of the one unit price (DESIGN.md "Meters") */
  meters?: MeterPrices | null;
}

/** The price version in force at `at`: the latest one whose effective_from <= at. */
export function priceAt<P extends PricePoint>(versions: readonly P[], at: number): P | null {
  let found: P | null = null;
  for (const v of versions) {
    if (v.effectiveFrom <= at && (found === null || v.effectiveFrom >= found.effectiveFrom)) found = v;
  }
  return found;
}

/** cost = quantity x unit_price, exact. */
export function costOf(quantity: Dec, unitPrice: Dec): Dec {
  return mulDec(quantity, unitPrice);
}

/** Unit price implied by a given cost: cost / quantity rounded half-up to 9 places (0 when quantity is 0). */
export function unitPriceOfCost(cost: Dec, quantity: Dec): Dec {
  return quantity === 0n ? 0n : divDec(cost, quantity, 9);
}
