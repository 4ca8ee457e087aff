import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseDec } from "./decimal.ts";
import { costOf, type PricePoint, priceAt } from "./pricing.ts";

const v = (iso: string, price: string, currency = "USD"): PricePoint => ({
  effectiveFrom: Date.parse(iso),
  unitPrice: parseDec(price),
  currency,
});

describe("priceAt", () => {
  const versions = [
    v("2025-01-01T00:00:00Z", "0.02"),
    v("2025-03-01T00:00:00Z", "0.025"),
    v("2025-06-01T00:00:00Z", "0.03", "EUR"),
  ];

  it("picks the latest version whose effective_from <= the instant", () => {
    expect(priceAt(versions, Date.parse("2025-02-15T00:00:00Z"))).toBe(versions[0]);
    expect(priceAt(versions, Date.parse("2025-03-01T00:00:00Z") - 1)).toBe(versions[0]);
    expect(priceAt(versions, Date.parse("2025-03-01T00:00:00Z"))).toBe(versions[1]);
    expect(priceAt(versions, Date.parse("2025-05-31T23:59:59.999Z"))).toBe(versions[1]);
    expect(priceAt(versions, Date.parse("2030-01-01T00:00:00Z"))).toBe(versions[2]);
  });

  it("has no price before the first version, or with none", () => {
    expect(priceAt(versions, Date.parse("2024-12-31T23:59:59.999Z"))).toBeNull();
    expect(priceAt([], Date.now())).toBeNull();
  });

  it("does not depend on the order of the versions", () => {
    const shuffled = [versions[2], versions[0], versions[1]];
    expect(priceAt(shuffled, Date.parse("2025-04-01T00:00:00Z"))).toBe(versions[1]);
  });

  it("agrees with a reference search for any versions and instant (property)", () => {
    const point = fc.record({
      effectiveFrom: fc.integer({ min: 0, max: 1000 }),
      unitPrice: fc.bigInt({ min: 0n, max: 10n ** 20n }),
      currency: fc.constant("USD"),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(point, { selector: (p) => p.effectiveFrom, maxLength: 20 }),
        fc.integer({ min: -10, max: 1010 }),
        (ps, t) => {
          const sorted = [...ps].sort((a, b) => a.effectiveFrom - b.effectiveFrom);
          const expected = sorted.filter((p) => p.effectiveFrom <= t).at(-1) ?? null;
          expect(priceAt(ps, t)).toBe(expected);
        },
      ),
    );
  });
});

describe("costOf", () => {
  it("is quantity x unit price, exact", () => {
    expect(costOf(parseDec("3"), parseDec("0.025"))).toBe(parseDec("0.075"));
    expect(costOf(parseDec("1000000"), parseDec("0.0043"))).toBe(parseDec("4300"));
    expect(costOf(parseDec("1234.5"), parseDec("0.00000015"))).toBe(parseDec("0.000185175"));
    expect(costOf(parseDec("0"), parseDec("9.99"))).toBe(0n);
  });
});
