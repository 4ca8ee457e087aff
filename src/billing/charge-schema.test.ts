import { describe, expect, it } from "vitest";
import { computeCharge } from "../domain/charges.ts";
import { formatDec, parseDec } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { chargeDocument, parsePlanBilling } from "./charge-schema.ts";

const TIERS = [
  { up_to: 10_000, unit_price: 0.001 },
  { up_to: "50000", unit_price: "0.0008" },
  { up_to: null, unit_price: 0.00075 },
];

function refusal(body: unknown): { message: string; loc: (string | number)[] } {
  try {
    parsePlanBilling(body);
  } catch (err) {
    if (err instanceof DomainError && err.code === "VALIDATION")
      return { message: err.message, loc: err.issues[0].loc };
    throw err;
  }
  throw new Error("accepted");
}

describe("parsePlanBilling", () => {
  it("parses every pricing model into exact domain charges", () => {
    const plan = parsePlanBilling({
      name: "ignored here",
      base_fee: "49.99",
      charges: [
        { model_id: "flux-1-dev", pricing: "standard", unit_price: 0.003, minimum_quantity: 100_000 },
        { model_id: "gpt-4o", meter: "input_token", pricing: "graduated", tiers: TIERS },
        {
          model_id: "gpt-4o",
          meter: "output_token",
          pricing: "volume",
          tiers: TIERS,
          included_quantity: "1000.5",
        },
        { model_id: "sdxl", pricing: "package", package_size: 100, package_price: 5, included_quantity: 100 },
        { model_id: "whisper", pricing: "standard" },
      ],
    });
    expect(plan.currency).toBe("USD");
    expect(formatDec(plan.baseFee)).toBe("49.99");
    const [standard, graduated, volume, pkg, book] = plan.charges;
    expect(standard.minimumQuantity).toBe(parseDec(100_000));
    expect(graduated.meter).toBe("input_token");
    expect(graduated.tiers.map((t) => t.upTo)).toEqual([parseDec(10_000), parseDec(50_000), null]);
    expect(volume.includedQuantity).toBe(parseDec("1000.5"));
    expect(formatDec(computeCharge(pkg, { quantity: parseDec(201), cost: 0n }).amount)).toBe("10");
    expect(book.unitPrice).toBeNull();
    expect(formatDec(computeCharge(graduated, { quantity: parseDec(65_000), cost: 0n }).amount)).toBe(
      "53.25",
    );
  });

  it("defaults: no charges, no base fee, USD", () => {
    expect(parsePlanBilling({})).toEqual({ currency: "USD", baseFee: 0n, charges: [] });
  });

  it("round-trips through the wire shape", () => {
    const body = {
      currency: "EUR",
      base_fee: "10",
      charges: [
        { model_id: "m", pricing: "volume", tiers: TIERS.map((t) => ({ ...t, flat_fee: 1 })) },
        {
          model_id: "p",
          pricing: "package",
          package_size: 2.5,
          package_price: 1,
          included_quantity: 0,
          minimum_quantity: 3,
        },
      ],
    };
    const plan = parsePlanBilling(body);
    const again = parsePlanBilling({
      ...body,
      charges: plan.charges.map((c) => chargeDocument(c, formatDec)),
    });
    expect(again).toEqual(plan);
  });

  it.each([
    [{ charges: [{ pricing: "standard" }] }, ["body", "charges", 0, "model_id"], /Field required/],
    [{ charges: [{ model_id: "m", pricing: "tiered" }] }, ["body", "charges", 0, "pricing"], /./],
    [
      { charges: [{ model_id: "m", pricing: "graduated" }] },
      ["body", "charges", 0, "tiers"],
      /required for graduated/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "volume", tiers: [] }] },
      ["body", "charges", 0, "tiers"],
      /fewer than 1/,
    ],
    [
      {
        charges: [
          {
            model_id: "m",
            pricing: "graduated",
            tiers: [
              { up_to: null, unit_price: 1 },
              { up_to: null, unit_price: 1 },
            ],
          },
        ],
      },
      ["body", "charges", 0, "tiers", 0, "up_to"],
      /only the last tier/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "graduated", tiers: [{ up_to: 10, unit_price: 1 }] }] },
      ["body", "charges", 0, "tiers", 0, "up_to"],
      /must be open/,
    ],
    [
      {
        charges: [
          {
            model_id: "m",
            pricing: "volume",
            tiers: [
              { up_to: 10, unit_price: 1 },
              { up_to: 10, unit_price: 1 },
              { up_to: null, unit_price: 1 },
            ],
          },
        ],
      },
      ["body", "charges", 0, "tiers", 1, "up_to"],
      /greater than the previous tier's up_to \(10\)/,
    ],
    [
      {
        charges: [
          {
            model_id: "m",
            pricing: "volume",
            tiers: [
              { up_to: 0, unit_price: 1 },
              { up_to: null, unit_price: 1 },
            ],
          },
        ],
      },
      ["body", "charges", 0, "tiers", 0, "up_to"],
      /greater than 0/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "volume", tiers: [{ up_to: null, unit_price: -1 }] }] },
      ["body", "charges", 0, "tiers", 0, "unit_price"],
      /negative/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "package", package_size: 0, package_price: 5 }] },
      ["body", "charges", 0, "package_size"],
      /greater than 0/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "package", package_size: 10 }] },
      ["body", "charges", 0, "package_price"],
      /required/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "standard", tiers: TIERS }] },
      ["body", "charges", 0, "tiers"],
      /not used by standard/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "package", package_size: 1, package_price: 1, unit_price: 1 }] },
      ["body", "charges", 0, "unit_price"],
      /not used/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "standard", unit_price: "0.0000000000001" }] },
      ["body", "charges", 0, "unit_price"],
      /12 decimal places/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "standard", included_quantity: "1.0000001" }] },
      ["body", "charges", 0, "included_quantity"],
      /6 decimal places/,
    ],
    [
      { charges: [{ model_id: "m", pricing: "standard", price: 1 }] },
      ["body", "charges", 0, "price"],
      /unknown field/,
    ],
    [
      {
        charges: [
          { model_id: "m", pricing: "standard" },
          { model_id: "n", pricing: "standard" },
          { model_id: "m", pricing: "volume", tiers: TIERS },
        ],
      },
      ["body", "charges", 2],
      /duplicates charges\[0\]/,
    ],
    [{ base_fee: -1 }, ["body", "base_fee"], /negative/],
    [{ currency: "usd" }, ["body", "currency"], /pattern/],
  ])("refuses %j naming the field", (body, loc, message) => {
    const r = refusal(body);
    expect(r.loc).toEqual(loc);
    expect(r.message).toMatch(message);
    expect(r.message.startsWith(loc.slice(1).join("."))).toBe(true);
  });

  it("a meter makes a separate charge for the same model", () => {
    const plan = parsePlanBilling({
      charges: [
        { model_id: "m", meter: "input_token", pricing: "standard" },
        { model_id: "m", meter: "output_token", pricing: "standard" },
      ],
    });
    expect(plan.charges).toHaveLength(2);
  });
});
