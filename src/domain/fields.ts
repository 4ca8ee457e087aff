import {
  COST_PLACES,
  type Dec,
  DecimalError,
  ONE,
  PRICE_PLACES,
  parseDec,
  QUANTITY_PLACES,
} from "./decimal.ts";
import { DomainError } from "./errors.ts";
import { parseInstant } from "./time.ts";

/** Field readers shared by every surface: each failure names the field it is about. */

export interface DecimalRule {
  places: number;
  /** largest value accepted, in whole units */
  max: number;
}

export const QUANTITY_RULE: DecimalRule = { places: QUANTITY_PLACES, max: 1e12 };
export const PRICE_RULE: DecimalRule = { places: PRICE_PLACES, max: 1e6 };
export const COST_RULE: DecimalRule = { places: COST_PLACES, max: 1e9 };
export const AMOUNT_RULE: DecimalRule = { places: COST_PLACES, max: 1e9 };

export function readDecimal(value: unknown, loc: (string | number)[], rule: DecimalRule): Dec {
  let v: Dec;
  try {
    v = parseDec(value, rule.places);
  } catch (err) {
    if (err instanceof DecimalError) throw DomainError.validation(loc, err.message, "decimal_error");
    throw err;
  }
  if (v < 0n) throw DomainError.validation(loc, "must not be negative", "greater_than_equal");
  if (v > BigInt(rule.max) * ONE)
    throw DomainError.validation(loc, `must be at most ${rule.max}`, "less_than_equal");
  return v;
}

/** An ISO 8601 date-time with an offset, or epoch milliseconds. */
export function readInstant(value: unknown, loc: (string | number)[]): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw DomainError.validation(
        loc,
        "must be an ISO 8601 date-time or epoch milliseconds",
        "datetime_parsing",
      );
    }
    return value;
  }
  if (typeof value === "string" && /T.*(Z|[+-]\d{2}:?\d{2})$/i.test(value)) {
    const at = parseInstant(value);
    if (at !== null) return at;
  }
  throw DomainError.validation(
    loc,
    "must be an ISO 8601 date-time with an offset (e.g. 2025-01-15T10:00:00Z)",
    "datetime_parsing",
  );
}
