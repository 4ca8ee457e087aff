import { formatDec } from "../domain/decimal.ts";
import { chargeDocument, type PlanBilling, parsePlanBilling } from "./charge-schema.ts";

/**
 * A plan's billing terms as the store keeps them: the wire shape with exact decimal strings, read
 * back through the same parser the API uses, so one schema defines them.
 */
export function planBillingText(b: PlanBilling): string {
  return JSON.stringify({
    currency: b.currency,
    base_fee: formatDec(b.baseFee),
    charges: b.charges.map((c) => chargeDocument(c, formatDec)),
  });
}

/** The stored terms; null when the plan has none (its usage is billed at the price book). */
export function planBillingOf(text: string | null | undefined): PlanBilling | null {
  return text ? parsePlanBilling(JSON.parse(text), ["plan", "billing"]) : null;
}
