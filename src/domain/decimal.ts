/**
 * Exact decimals for money and quantities.
 *
 * Every amount in Tally is a bigint counting units of 1e-18 ("atto"). Inputs are limited in
 * precision so that a product quantity x unit_price is always exact at that scale:
 * quantities carry at most 6 decimal places, unit prices at most 12, costs at most 18.
 * Never a JavaScript float, never integer cents.
 */

export type Dec = bigint;

export const SCALE = 18;
export const ONE: Dec = 10n ** 18n;
export const ZERO: Dec = 0n;

export const QUANTITY_PLACES = 6;
export const PRICE_PLACES = 12;
export const COST_PLACES = 18;

/** Largest magnitude we accept for a single value: 1e15 units (well inside every storage column). */
const MAX_ABS = 10n ** 15n * ONE;

export class DecimalError extends Error {}

const DECIMAL_RE = /^([+-])?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses a JSON number or a decimal string into atto units. JSON numbers arrive as floats, whose
 * shortest round-trip text is the literal the client wrote (up to 15 significant digits); strings
 * are read digit by digit with no limit but `places`.
 */
export function parseDec(input: unknown, places: number = SCALE): Dec {
  let text: string;
  if (typeof input === "number") {
    if (!Number.isFinite(input)) throw new DecimalError("must be a finite number");
    text = String(input);
  } else if (typeof input === "string") {
    text = input.trim();
  } else if (typeof input === "bigint") {
    text = input.toString();
  } else {
    throw new DecimalError("must be a number");
  }
  const m = DECIMAL_RE.exec(text);
  if (!m) throw new DecimalError("must be a decimal number");
  const sign = m[1] === "-" ? -1n : 1n;
  let digits = m[2] + (m[3] ?? "");
  let exp = (m[4] ? Number.parseInt(m[4], 10) : 0) - (m[3]?.length ?? 0);
  // strip trailing zeros so "1.50" is not counted as two places
  while (exp < 0 && digits.length > 1 && digits.endsWith("0")) {
    digits = digits.slice(0, -1);
    exp += 1;
  }
  if (-exp > places) throw new DecimalError(`must have at most ${places} decimal places`);
  if (exp > 30) throw new DecimalError("is too large");
  const value = BigInt(digits) * 10n ** BigInt(SCALE + exp);
  if (value > MAX_ABS) throw new DecimalError("is too large");
  return sign * value;
}

/** Canonical decimal text: no exponent, no trailing zeros ("4300", "0.0043", "-1.5"). */
export function formatDec(v: Dec): string {
  // one bigint-to-text conversion, then string work: cheaper than dividing by 10^18 (every decimal
  // in every response passes here)
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString();
  const cut = digits.length - SCALE;
  const whole = cut > 0 ? digits.slice(0, cut) : "0";
  let end = digits.length;
  while (end > Math.max(cut, 0) && digits.charCodeAt(end - 1) === 48) end--;
  const frac = cut >= 0 ? digits.slice(cut, end) : "0".repeat(-cut) + digits.slice(0, end);
  const sign = neg ? "-" : "";
  return end > Math.max(cut, 0) ? `${sign}${whole}.${frac}` : `${sign}${whole}`;
}

/** Exact product of two atto values, which must be exact at 18 places (guaranteed by input limits). */
export function mulDec(a: Dec, b: Dec): Dec {
  const p = a * b;
  const q = p / ONE;
  if (q * ONE !== p) throw new DecimalError("product is not exact at 18 decimal places");
  return q;
}

/** a / b rounded half-up to `places` decimal places. */
export function divDec(a: Dec, b: Dec, places: number): Dec {
  if (b === 0n) throw new DecimalError("division by zero");
  const unit = 10n ** BigInt(SCALE - places);
  // result in units of 10^-places, half-up on magnitude
  const num = a * ONE;
  const den = b * unit;
  const neg = num < 0n !== den < 0n;
  const an = num < 0n ? -num : num;
  const ad = den < 0n ? -den : den;
  let q = an / ad;
  if ((an % ad) * 2n >= ad) q += 1n;
  return (neg ? -q : q) * unit;
}

export function sumDec(values: Iterable<Dec>): Dec {
  let s = 0n;
  for (const v of values) s += v;
  return s;
}

export function decimalPlaces(v: Dec): number {
  if (v % ONE === 0n) return 0;
  const frac = ((v < 0n ? -v : v) % ONE).toString().padStart(SCALE, "0").replace(/0+$/, "");
  return frac.length;
}

/* Storage encodings: fixed-scale int64 columns so that SQL SUM stays exact and fast. */

const MICRO = 10n ** 12n; // atto per 1e-6
const PICO = 10n ** 6n; // atto per 1e-12
const NANO = 10n ** 9n; // atto per 1e-9

/** Quantity column: int64 in units of 1e-6 (quantities have at most 6 places). */
export const toMicro = (v: Dec): bigint => v / MICRO;
export const fromMicro = (v: bigint | number | string): Dec => BigInt(v) * MICRO;
/** Unit price column: int64 in units of 1e-12. */
export const toPico = (v: Dec): bigint => v / PICO;
export const fromPico = (v: bigint | number | string): Dec => BigInt(v) * PICO;
/**
 * Cost columns: a cost needs 18 places, more than one int64 holds, so it is split into
 * `nano` (units of 1e-9) and `atto` (the remainder, 0 <= atto < 1e9). Both sum exactly in SQL.
 */
export function splitCost(v: Dec): { nano: bigint; atto: bigint } {
  let nano = v / NANO;
  let atto = v % NANO;
  if (atto < 0n) {
    atto += NANO;
    nano -= 1n;
  }
  return { nano, atto };
}
export const joinCost = (nano: bigint | number | string, atto: bigint | number | string): Dec =>
  BigInt(nano) * NANO + BigInt(atto);
