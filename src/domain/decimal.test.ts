import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DecimalError,
  decimalPlaces,
  divDec,
  formatDec,
  fromMicro,
  fromPico,
  joinCost,
  mulDec,
  ONE,
  parseDec,
  splitCost,
  sumDec,
  toMicro,
  toPico,
} from "./decimal.ts";

/** Independent of parseDec: the text of `n / 10^places`, written digit by digit. */
function textOf(n: bigint, places: number): string {
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(places + 1, "0");
  const whole = digits.slice(0, digits.length - places);
  const frac = digits.slice(digits.length - places);
  return `${neg ? "-" : ""}${whole}${places > 0 ? `.${frac}` : ""}`;
}

const atto = (n: bigint, places: number): bigint => n * 10n ** BigInt(18 - places);

/** A decimal as (digits, places) within parseDec's range of +-1e15. */
const scaled = (signed: boolean) =>
  fc
    .integer({ min: 0, max: 18 })
    .chain((places) =>
      fc.tuple(
        fc.bigInt({ min: signed ? -(10n ** BigInt(15 + places)) : 0n, max: 10n ** BigInt(15 + places) }),
        fc.constant(places),
      ),
    );

describe("parseDec", () => {
  it("reads strings and JSON numbers exactly", () => {
    expect(parseDec("0.0043")).toBe(43n * 10n ** 14n);
    expect(parseDec(0.0043)).toBe(43n * 10n ** 14n);
    expect(parseDec(0.1)).toBe(10n ** 17n);
    expect(parseDec("4300")).toBe(4300n * ONE);
    expect(parseDec(" 1.50 ")).toBe(15n * 10n ** 17n);
    expect(parseDec("-2.5")).toBe(-25n * 10n ** 17n);
    expect(parseDec("+7")).toBe(7n * ONE);
    expect(parseDec("1.5e3")).toBe(1500n * ONE);
    expect(parseDec("25E-3")).toBe(25n * 10n ** 15n);
    expect(parseDec(1e-7)).toBe(10n ** 11n);
    expect(parseDec(12n)).toBe(12n * ONE);
    expect(parseDec("0.000000000000000001")).toBe(1n);
  });

  it("limits decimal places, ignoring trailing zeros", () => {
    expect(parseDec("1.123456", 6)).toBe(1_123_456n * 10n ** 12n);
    expect(parseDec("1.123456000000", 6)).toBe(1_123_456n * 10n ** 12n);
    expect(() => parseDec("1.1234567", 6)).toThrow("must have at most 6 decimal places");
    expect(() => parseDec("1e-7", 6)).toThrow("must have at most 6 decimal places");
    expect(() => parseDec("0.0000000000000000001")).toThrow("must have at most 18 decimal places");
    expect(parseDec("100", 0)).toBe(100n * ONE);
    expect(() => parseDec("0.5", 0)).toThrow(DecimalError);
  });

  it("rejects what is not a finite decimal", () => {
    for (const bad of ["", "abc", "1.", ".5", "1,5", "0x10", "1e", "--1", "1 000", "NaN", "Infinity"]) {
      expect(() => parseDec(bad), bad).toThrow(DecimalError);
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => parseDec(bad)).toThrow("must be a finite number");
    }
    for (const bad of [null, undefined, true, {}, [], [1]]) {
      expect(() => parseDec(bad)).toThrow("must be a number");
    }
  });

  it("rejects values beyond 1e15", () => {
    expect(parseDec("1000000000000000")).toBe(10n ** 15n * ONE);
    expect(() => parseDec("1000000000000000.000000000000000001")).toThrow("is too large");
    expect(() => parseDec("1e16")).toThrow("is too large");
    expect(() => parseDec("1e400")).toThrow("is too large");
  });

  it("round-trips through formatDec for every value at every scale (property)", () => {
    fc.assert(
      fc.property(scaled(true), ([n, places]) => {
        const v = atto(n, places);
        expect(parseDec(formatDec(v))).toBe(v);
        expect(parseDec(textOf(n, places), places)).toBe(v);
        expect(decimalPlaces(v)).toBeLessThanOrEqual(places);
      }),
      { numRuns: 2000 },
    );
  });

  it("reads JSON numbers as the literal the client wrote (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 0, max: 6 }), (n, places) => {
        const text = textOf(BigInt(n), places);
        expect(parseDec(Number(text))).toBe(parseDec(text));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("formatDec", () => {
  it("writes canonical text with no exponent and no trailing zeros", () => {
    expect(formatDec(43n * 10n ** 14n)).toBe("0.0043");
    expect(formatDec(4300n * ONE)).toBe("4300");
    expect(formatDec(-15n * 10n ** 17n)).toBe("-1.5");
    expect(formatDec(0n)).toBe("0");
    expect(formatDec(1n)).toBe("0.000000000000000001");
    expect(formatDec(-1n)).toBe("-0.000000000000000001");
    expect(formatDec(10n ** 15n * ONE)).toBe("1000000000000000");
  });
});

describe("mulDec and divDec", () => {
  it("multiplies exactly", () => {
    expect(mulDec(parseDec("1000000"), parseDec("0.0043"))).toBe(parseDec("4300"));
    expect(mulDec(parseDec("3"), parseDec("0.025"))).toBe(parseDec("0.075"));
    expect(mulDec(parseDec("0.000001"), parseDec("0.000000000001"))).toBe(1n);
    expect(mulDec(parseDec("-2"), parseDec("0.5"))).toBe(-ONE);
  });

  it("refuses a product that needs more than 18 places", () => {
    expect(() => mulDec(1n, 1n)).toThrow("product is not exact at 18 decimal places");
    expect(() => mulDec(parseDec("0.0000001"), parseDec("0.000000000001"))).toThrow(DecimalError);
  });

  it("quantity (6 places) x unit price (12 places) is always exact (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 18n }),
        fc.bigInt({ min: 0n, max: 10n ** 18n }),
        (q, p) => {
          const quantity = atto(q, 6);
          const price = atto(p, 12);
          // independent: (q / 1e6) * (p / 1e12) = q*p / 1e18 = q*p atto
          expect(mulDec(quantity, price)).toBe(q * p);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("divides rounding half up on the magnitude", () => {
    expect(divDec(ONE, 3n * ONE, 9)).toBe(parseDec("0.333333333"));
    expect(divDec(2n * ONE, 3n * ONE, 9)).toBe(parseDec("0.666666667"));
    expect(divDec(-2n * ONE, 3n * ONE, 9)).toBe(parseDec("-0.666666667"));
    expect(divDec(2n * ONE, -3n * ONE, 9)).toBe(parseDec("-0.666666667"));
    expect(divDec(ONE, 8n * ONE, 2)).toBe(parseDec("0.13"));
    expect(divDec(-ONE, 8n * ONE, 2)).toBe(parseDec("-0.13"));
    expect(divDec(ONE, 16n * ONE, 3)).toBe(parseDec("0.063"));
    expect(divDec(parseDec("0.0129"), parseDec("3"), 9)).toBe(parseDec("0.0043"));
    expect(divDec(parseDec("10"), parseDec("4"), 0)).toBe(parseDec("3"));
    expect(() => divDec(ONE, 0n, 9)).toThrow("division by zero");
  });

  it("a quotient is within half a unit of the last place (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 27n), max: 10n ** 27n }),
        fc.bigInt({ min: 1n, max: 10n ** 24n }),
        fc.integer({ min: 0, max: 18 }),
        (a, b, places) => {
          const q = divDec(a, b, places);
          const unit = 10n ** BigInt(18 - places);
          expect(q % unit).toBe(0n);
          // |q*b - a*1e18| <= unit*b/2, all in exact integers
          const err = q * b - a * ONE;
          expect((err < 0n ? -err : err) * 2n <= unit * b).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("storage encodings", () => {
  it("splits a cost into nano and atto parts that join back exactly (property)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 27n), max: 10n ** 27n }), (v) => {
        const { nano, atto: rest } = splitCost(v);
        expect(rest >= 0n && rest < 10n ** 9n).toBe(true);
        expect(joinCost(nano, rest)).toBe(v);
        expect(joinCost(nano.toString(), Number(rest))).toBe(v);
      }),
      { numRuns: 2000 },
    );
    expect(splitCost(-1n)).toEqual({ nano: -1n, atto: 999_999_999n });
    expect(splitCost(parseDec("0.0043"))).toEqual({ nano: 4_300_000n, atto: 0n });
  });

  it("column sums of split costs equal the sum of the costs (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(10n ** 27n), max: 10n ** 27n }), { maxLength: 200 }), (vs) => {
        let nano = 0n;
        let rest = 0n;
        for (const v of vs) {
          const s = splitCost(v);
          nano += s.nano;
          rest += s.atto;
        }
        expect(joinCost(nano, rest)).toBe(sumDec(vs));
      }),
    );
  });

  it("round-trips quantities through micro units and prices through pico units", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 18n }), (n) => {
        expect(fromMicro(toMicro(atto(n, 6)))).toBe(atto(n, 6));
        expect(toMicro(atto(n, 6))).toBe(n);
        expect(fromPico(toPico(atto(n, 12)))).toBe(atto(n, 12));
        expect(fromMicro(toMicro(atto(n, 6)).toString())).toBe(atto(n, 6));
      }),
    );
  });
});

describe("exact sums", () => {
  it("a million costs of 0.0043 sum to exactly 4300, also through the storage split", () => {
    const cost = parseDec("0.0043");
    const costs = new Array<bigint>(1_000_000).fill(cost);
    expect(sumDec(costs)).toBe(parseDec("4300"));
    expect(formatDec(sumDec(costs))).toBe("4300");
    const { nano, atto: rest } = splitCost(cost);
    expect(joinCost(nano * 1_000_000n, rest * 1_000_000n)).toBe(4300n * ONE);
    // the float sum is not 4300: the reason no float is ever used
    let float = 0;
    for (let i = 0; i < 1_000_000; i++) float += 0.0043;
    expect(float).not.toBe(4300);
  });

  it("the sum of parsed decimals equals the sum of their integer digits (property)", () => {
    const item = scaled(true);
    fc.assert(
      fc.property(fc.array(item, { maxLength: 300 }), (items) => {
        const parsed = items.map(([n, p]) => parseDec(textOf(n, p)));
        const expected = items.reduce((s, [n, p]) => s + n * 10n ** BigInt(18 - p), 0n);
        expect(sumDec(parsed)).toBe(expected);
        // order never matters
        expect(sumDec([...parsed].reverse())).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("n events of one cost sum to n times the cost (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), fc.bigInt({ min: 0n, max: 10n ** 24n }), (n, c) => {
        expect(sumDec(new Array<bigint>(n).fill(c))).toBe(BigInt(n) * c);
      }),
      { numRuns: 50 },
    );
  });
});
