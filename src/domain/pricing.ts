import { type Dec, divDec, mulDec } from "./decimal.ts";

export interface PricePoint {
  effectiveFrom: number;
  unitPrice: Dec;
  currency: string;
}

/** The price version in force at `at`: the latest one whose effective_from <= at. */
export function priceAt(versions: readonly PricePoint[], at: number): PricePoint | null {
  let found: PricePoint | null = null;
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
