import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Charge, computeCharge, type Tier } from "./charges.ts";
import { type Dec, formatDec, ONE, parseDec } from "./decimal.ts";

const d = (v: string | number): Dec => parseDec(v);

function charge(over: Partial<Charge>): Charge {
  return {
    modelId: "flux-1-dev",
    meter: null,
    pricing: "standard",
    unitPrice: null,
    tiers: [],
    packageSize: null,
    packagePrice: null,
    includedQuantity: 0n,
    minimumQuantity: 0n,
    ...over,
  };
}

const usage = (quantity: string | number, cost: string | number = 0) => ({
  quantity: d(quantity),
  cost: d(cost),
});

/** The tiers: [0-10,000 @ 0.001, 10,001-50,000 @ 0.0008, 50,001+ @ 0.00075]. */
const TIERS: Tier[] = [
  { upTo: d(10_000), unitPrice: d("0.001"), flatFee: 0n },
  { upTo: d(50_000), unitPrice: d("0.0008"), flatFee: 0n },
  { upTo: null, unitPrice: d("0.00075"), flatFee: 0n },
];

const amountOf = (c: Charge, q: string | number, cost: string | number = 0) =>
  formatDec(computeCharge(c, usage(q, cost)).amount);

describe("the issue's worked examples", () => {
  it("package: 201 units at $5 per 100 with the first 100 free = $10", () => {
    const c = charge({
      pricing: "package",
      packageSize: d(100),
      packagePrice: d(5),
      includedQuantity: d(100),
    });
    const r = computeCharge(c, usage(201));
    expect(formatDec(r.billableQuantity)).toBe("101");
    expect(formatDec(r.amount)).toBe("10");
    expect(r.tiers.map((t) => [formatDec(t.quantity), formatDec(t.unitPrice)])).toEqual([["2", "5"]]);
  });

  it("volume: 65,000 units = 65,000 x 0.00075 = $48.75", () => {
    const r = computeCharge(charge({ pricing: "volume", tiers: TIERS }), usage(65_000));
    expect(formatDec(r.amount)).toBe("48.75");
    expect(r.tiers).toHaveLength(1);
    expect(formatDec(r.tiers[0].from)).toBe("50000");
    expect(r.tiers[0].upTo).toBeNull();
  });

  it("graduated: 65,000 units = $10 + $32 + $11.25 = $53.25", () => {
    const r = computeCharge(charge({ pricing: "graduated", tiers: TIERS }), usage(65_000));
    expect(
      r.tiers.map((t) => [
        formatDec(t.from),
        t.upTo === null ? null : formatDec(t.upTo),
        formatDec(t.quantity),
        formatDec(t.amount),
      ]),
    ).toEqual([
      ["0", "10000", "10000", "10"],
      ["10000", "50000", "40000", "32"],
      ["50000", null, "15000", "11.25"],
    ]);
    expect(formatDec(r.amount)).toBe("53.25");
  });

  it("a 100,000-image minimum: 100,000 images cost nothing, 100,001 are all billed", () => {
    const c = charge({ pricing: "standard", unitPrice: d("0.003"), minimumQuantity: d(100_000) });
    const at = computeCharge(c, usage(100_000));
    expect([at.billableQuantity, at.amount, at.tiers]).toEqual([0n, 0n, []]);
    const above = computeCharge(c, usage(100_001));
    expect(formatDec(above.billableQuantity)).toBe("100001");
    expect(formatDec(above.amount)).toBe("300.003");
  });
});

describe("tier edges", () => {
  const graduated = charge({ pricing: "graduated", tiers: TIERS });
  const volume = charge({ pricing: "volume", tiers: TIERS });

  it.each([
    [0, "0", "0"],
    [1, "0.001", "0.001"],
    [10_000, "10", "10"],
    [10_001, "10.0008", "8.0008"],
    ["10000.5", "10.0004", "8.0004"],
    [50_000, "42", "40"],
    [50_001, "42.00075", "37.50075"],
    ["0.000001", "0.000000001", "0.000000001"],
    ["12345.678901", "11.8765431208", "9.8765431208"],
  ])("%s units: graduated %s, volume %s", (q, grad, vol) => {
    expect(amountOf(graduated, q)).toBe(grad);
    expect(amountOf(volume, q)).toBe(vol);
  });

  it("a quantity of 0 has no tier rows", () => {
    expect(computeCharge(graduated, usage(0)).tiers).toEqual([]);
    expect(computeCharge(volume, usage(0)).tiers).toEqual([]);
  });
});

describe("flat fees", () => {
  const tiers: Tier[] = [
    { upTo: d(100), unitPrice: d(1), flatFee: d(10) },
    { upTo: null, unitPrice: d("0.5"), flatFee: d(20) },
  ];

  it("graduated adds the flat fee of every tier a unit falls in", () => {
    const c = charge({ pricing: "graduated", tiers });
    expect(amountOf(c, 100)).toBe("110");
    expect(amountOf(c, "100.5")).toBe("130.25");
  });

  it("volume adds the one tier's flat fee", () => {
    const c = charge({ pricing: "volume", tiers });
    expect(amountOf(c, 100)).toBe("110");
    expect(amountOf(c, 101)).toBe("70.5");
  });

  it("a billable quantity of 0 costs nothing, flat fees included", () => {
    expect(amountOf(charge({ pricing: "graduated", tiers, includedQuantity: d(50) }), 50)).toBe("0");
    expect(amountOf(charge({ pricing: "volume", tiers, includedQuantity: d(50) }), 20)).toBe("0");
  });
});

describe("standard and package", () => {
  it("standard bills the billable quantity at its unit price", () => {
    expect(amountOf(charge({ unitPrice: d("0.0043"), includedQuantity: d(10) }), "12.5")).toBe("0.01075");
  });

  it("standard without a unit price bills the events' own cost", () => {
    expect(amountOf(charge({}), 3, "0.0129")).toBe("0.0129");
  });

  it("standard without a unit price and with an included quantity bills the billable share at the average price", () => {
    const r = computeCharge(charge({ includedQuantity: d(1) }), usage(3, "0.009"));
    expect(formatDec(r.amount)).toBe("0.006");
    expect(formatDec(r.tiers[0].unitPrice)).toBe("0.003");
  });

  it("package rounds packages up for fractional quantities", () => {
    const c = charge({ pricing: "package", packageSize: d("2.5"), packagePrice: d(1) });
    expect(amountOf(c, "2.5")).toBe("1");
    expect(amountOf(c, "2.500001")).toBe("2");
    expect(amountOf(c, 0)).toBe("0");
  });
});

describe("laws", () => {
  const quantity = fc.bigInt({ min: 0n, max: 10n ** 12n }).map((micro) => micro * 10n ** 12n);
  const price = fc.bigInt({ min: 0n, max: 10n ** 9n }).map((nano) => nano * 10n ** 9n);
  const tiers = fc
    .array(fc.tuple(fc.bigInt({ min: 1n, max: 10n ** 10n }), price, price), { minLength: 1, maxLength: 5 })
    .map((rows) => {
      let bound = 0n;
      return rows.map(([step, unitPrice, flatFee], i): Tier => {
        bound += step * 10n ** 12n;
        return { upTo: i === rows.length - 1 ? null : bound, unitPrice, flatFee };
      });
    });
  const tiered = fc.record({
    pricing: fc.constantFrom("graduated" as const, "volume" as const),
    tiers,
    includedQuantity: quantity,
    minimumQuantity: fc.oneof(fc.constant(0n), quantity),
  });

  it("tier quantities sum to the billable quantity, and tier amounts to the amount", () => {
    fc.assert(
      fc.property(tiered, quantity, (over, q) => {
        const r = computeCharge(charge(over), { quantity: q, cost: 0n });
        const units =
          over.pricing === "volume"
            ? r.tiers.length && r.tiers[0].quantity
            : r.tiers.reduce((s, t) => s + t.quantity, 0n);
        expect(BigInt(units)).toBe(r.billableQuantity);
        expect(r.tiers.reduce((s, t) => s + t.amount, 0n)).toBe(r.amount);
      }),
    );
  });

  it("graduated amounts never fall as the quantity grows (without a minimum)", () => {
    fc.assert(
      fc.property(tiers, quantity, quantity, quantity, (t, included, a, b) => {
        const c = charge({ pricing: "graduated", tiers: t, includedQuantity: included });
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(
          computeCharge(c, { quantity: lo, cost: 0n }).amount <=
            computeCharge(c, { quantity: hi, cost: 0n }).amount,
        ).toBe(true);
      }),
    );
  });

  it("without flat fees and with falling prices, graduated costs at least volume and at most all units at the first tier's price", () => {
    const falling = tiers.map((t) => {
      const prices = t.map((x) => x.unitPrice).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
      return t.map((x, i) => ({ ...x, unitPrice: prices[i], flatFee: 0n }));
    });
    fc.assert(
      fc.property(falling, quantity, (t, q) => {
        const grad = computeCharge(charge({ pricing: "graduated", tiers: t }), {
          quantity: q,
          cost: 0n,
        }).amount;
        const vol = computeCharge(charge({ pricing: "volume", tiers: t }), { quantity: q, cost: 0n }).amount;
        expect(vol <= grad).toBe(true);
        expect(grad <= (q * t[0].unitPrice) / ONE).toBe(true);
      }),
    );
  });

  it("at or below the minimum nothing is billed; above it, exactly what the same charge without a minimum bills", () => {
    fc.assert(
      fc.property(tiered, quantity, (over, q) => {
        const r = computeCharge(charge(over), { quantity: q, cost: 0n });
        if (q <= over.minimumQuantity) expect(r.amount).toBe(0n);
        else
          expect(r).toEqual(
            computeCharge(charge({ ...over, minimumQuantity: 0n }), { quantity: q, cost: 0n }),
          );
      }),
    );
  });

  it("package amounts are whole packages covering the billable quantity", () => {
    fc.assert(
      fc.property(
        quantity.filter((s) => s > 0n),
        price,
        quantity,
        (size, packagePrice, q) => {
          const r = computeCharge(charge({ pricing: "package", packageSize: size, packagePrice }), {
            quantity: q,
            cost: 0n,
          });
          if (q === 0n) {
            expect(r.amount).toBe(0n);
            return;
          }
          const packages = r.tiers[0].quantity / ONE;
          expect(packages * size >= q && (packages - 1n) * size < q).toBe(true);
          expect(r.amount).toBe(packages * packagePrice);
        },
      ),
    );
  });
});
