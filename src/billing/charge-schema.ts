import { type Static, Type } from "@sinclair/typebox";
import { Ajv, type ValidateFunction } from "ajv";
import { type Charge, PRICING_MODELS, type Tier } from "../domain/charges.ts";
import { type Dec, formatDec, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { type DecimalRule, PRICE_RULE, QUANTITY_RULE, readDecimal } from "../domain/fields.ts";

/**
 * Plan charges as clients send them (`POST /v1/plans {..., currency?, base_fee?, charges}`), and
 * the one parser from that shape to the domain's `Charge`. The schema checks shapes; the parser
 * checks what a schema cannot say (exact decimals, ascending tiers, fields that belong to another
 * pricing model), and every refusal names its field.
 */

/** Checked by readDecimal (exact, non-negative, bounded places). */
const DecimalInput = Type.Unsafe<number | string>({
  type: ["number", "string"],
  description: "An exact non-negative decimal, as a JSON number or a decimal string",
});

export const TierInput = Type.Object(
  {
    up_to: Type.Union([DecimalInput, Type.Null()], {
      description: "Inclusive upper bound in units of the period; null on the last tier only",
    }),
    unit_price: DecimalInput,
    flat_fee: Type.Optional(DecimalInput),
  },
  { additionalProperties: false },
);
export type TierInput = Static<typeof TierInput>;

export const ChargeInput = Type.Object(
  {
    model_id: Type.String({ minLength: 1, maxLength: 200 }),
    meter: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], {
        description: "For meter-priced models: the meter charged",
      }),
    ),
    pricing: Type.Union(
      PRICING_MODELS.map((p) => Type.Literal(p)),
      { description: "standard | graduated | volume | package" },
    ),
    unit_price: Type.Optional(
      Type.Union([DecimalInput, Type.Null()], {
        description: "Standard pricing; absent or null: the model's price book",
      }),
    ),
    tiers: Type.Optional(Type.Array(TierInput, { minItems: 1, maxItems: 100 })),
    package_size: Type.Optional(DecimalInput),
    package_price: Type.Optional(DecimalInput),
    included_quantity: Type.Optional(DecimalInput),
    minimum_quantity: Type.Optional(DecimalInput),
  },
  { additionalProperties: false },
);
export type ChargeInput = Static<typeof ChargeInput>;

/** The billing fields of a plan body, to spread into the plan schema's properties. */
export const PlanBillingFields = {
  currency: Type.Optional(Type.String({ pattern: "^[A-Z]{3}$", description: "ISO 4217, default USD" })),
  base_fee: Type.Optional(DecimalInput),
  charges: Type.Optional(Type.Array(ChargeInput, { maxItems: 1000 })),
};
export const PlanBillingInput = Type.Object(PlanBillingFields);
export type PlanBillingInput = Static<typeof PlanBillingInput>;

/** A plan's billing terms in domain types. */
export interface PlanBilling {
  currency: string;
  baseFee: Dec;
  charges: Charge[];
}

export const DEFAULT_CURRENCY = "USD";

/** Fees (base fee, flat fees): 12 places like prices, so a prorated fee (share x fee) stays exact. */
const FEE_RULE: DecimalRule = { places: 12, max: 1e9 };

let checkShape: ValidateFunction<PlanBillingInput> | null = null;
/** Compiled on first use, not at start: few processes ever parse a plan. */
const shapeCheck = (): ValidateFunction<PlanBillingInput> =>
  (checkShape ??= new Ajv({ allErrors: false, coerceTypes: false, strict: false }).compile(PlanBillingInput));

/**
 * Parses the billing fields of a plan body (`{currency?, base_fee?, charges?}`, other fields
 * ignored) into domain terms. `loc` is the location of that body, e.g. ["body"].
 */
export function parsePlanBilling(body: unknown, loc: (string | number)[] = ["body"]): PlanBilling {
  if (!shapeCheck()(body)) throw shapeError(loc);
  const input = body as PlanBillingInput;
  const charges = (input.charges ?? []).map((c, i) => parseCharge(c, [...loc, "charges", i]));
  const seen = new Map<string, number>();
  for (const [i, c] of charges.entries()) {
    const key = `${c.modelId}\u0000${c.meter ?? ""}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw DomainError.validation(
        [...loc, "charges", i],
        `duplicates charges[${first}]: one charge per model${c.meter ? " and meter" : ""}`,
      );
    }
    seen.set(key, i);
  }
  return {
    currency: input.currency ?? DEFAULT_CURRENCY,
    baseFee: optional(input.base_fee, [...loc, "base_fee"], FEE_RULE),
    charges,
  };
}

/** One charge, already of the ChargeInput shape, into the domain's Charge. */
export function parseCharge(input: ChargeInput, loc: (string | number)[]): Charge {
  const at = (field: string) => [...loc, field];
  const allow = (fields: (keyof ChargeInput)[]) => {
    for (const f of ["unit_price", "tiers", "package_size", "package_price"] as const) {
      if (input[f] !== undefined && input[f] !== null && !fields.includes(f)) {
        throw DomainError.validation(at(f), `is not used by ${input.pricing} pricing`, "extra_forbidden");
      }
    }
  };
  let unitPrice: Dec | null = null;
  let tiers: Tier[] = [];
  let packageSize: Dec | null = null;
  let packagePrice: Dec | null = null;
  switch (input.pricing) {
    case "standard":
      allow(["unit_price"]);
      unitPrice =
        input.unit_price == null ? null : readDecimal(input.unit_price, at("unit_price"), PRICE_RULE);
      break;
    case "graduated":
    case "volume":
      allow(["tiers"]);
      if (input.tiers === undefined)
        throw DomainError.validation(at("tiers"), `is required for ${input.pricing} pricing`, "missing");
      tiers = parseTiers(input.tiers, at("tiers"));
      break;
    case "package":
      allow(["package_size", "package_price"]);
      if (input.package_size === undefined)
        throw DomainError.validation(at("package_size"), "is required for package pricing", "missing");
      if (input.package_price === undefined)
        throw DomainError.validation(at("package_price"), "is required for package pricing", "missing");
      packageSize = readDecimal(input.package_size, at("package_size"), QUANTITY_RULE);
      if (packageSize === ZERO)
        throw DomainError.validation(at("package_size"), "must be greater than 0", "greater_than");
      packagePrice = readDecimal(input.package_price, at("package_price"), PRICE_RULE);
      break;
  }
  return {
    modelId: input.model_id,
    meter: input.meter ?? null,
    pricing: input.pricing,
    unitPrice,
    tiers,
    packageSize,
    packagePrice,
    includedQuantity: optional(input.included_quantity, at("included_quantity"), QUANTITY_RULE),
    minimumQuantity: optional(input.minimum_quantity, at("minimum_quantity"), QUANTITY_RULE),
  };
}

function parseTiers(input: TierInput[], loc: (string | number)[]): Tier[] {
  let previous = ZERO;
  return input.map((t, i) => {
    const last = i === input.length - 1;
    const at = [...loc, i, "up_to"];
    let upTo: Dec | null = null;
    if (t.up_to === null) {
      if (!last) throw DomainError.validation(at, "only the last tier may have no upper bound (null)");
    } else {
      if (last) throw DomainError.validation(at, "the last tier must be open: up_to null");
      upTo = readDecimal(t.up_to, at, QUANTITY_RULE);
      if (upTo <= previous) {
        throw DomainError.validation(
          at,
          i === 0
            ? "must be greater than 0"
            : `must be greater than the previous tier's up_to (${formatDec(previous)})`,
          "greater_than",
        );
      }
      previous = upTo;
    }
    return {
      upTo,
      unitPrice: readDecimal(t.unit_price, [...loc, i, "unit_price"], PRICE_RULE),
      flatFee: optional(t.flat_fee, [...loc, i, "flat_fee"], FEE_RULE),
    };
  });
}

function optional(value: number | string | undefined, loc: (string | number)[], rule: DecimalRule): Dec {
  return value === undefined ? ZERO : readDecimal(value, loc, rule);
}

function shapeError(loc: (string | number)[]): DomainError {
  const err = shapeCheck().errors?.[0];
  const path: (string | number)[] = (err?.instancePath ?? "")
    .split("/")
    .filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (err?.keyword === "required") path.push(String(err.params.missingProperty));
  if (err?.keyword === "additionalProperties") path.push(String(err.params.additionalProperty));
  const msg =
    err?.keyword === "required"
      ? "Field required"
      : err?.keyword === "additionalProperties"
        ? "unknown field"
        : (err?.message ?? "is invalid");
  return DomainError.validation([...loc, ...path], msg);
}

/** A charge in the wire shape, decimals mapped by `decimal` (exact JSON numbers, or strings). */
export function chargeDocument<D>(c: Charge, decimal: (v: Dec) => D): Record<string, unknown> {
  const doc: Record<string, unknown> = { model_id: c.modelId, meter: c.meter, pricing: c.pricing };
  if (c.pricing === "standard") doc.unit_price = c.unitPrice === null ? null : decimal(c.unitPrice);
  if (c.pricing === "graduated" || c.pricing === "volume") {
    doc.tiers = c.tiers.map((t) => ({
      up_to: t.upTo === null ? null : decimal(t.upTo),
      unit_price: decimal(t.unitPrice),
      flat_fee: decimal(t.flatFee),
    }));
  }
  if (c.pricing === "package" && c.packageSize !== null && c.packagePrice !== null) {
    doc.package_size = decimal(c.packageSize);
    doc.package_price = decimal(c.packagePrice);
  }
  doc.included_quantity = decimal(c.includedQuantity);
  doc.minimum_quantity = decimal(c.minimumQuantity);
  return doc;
}
