import { type Static, Type } from "@sinclair/typebox";
import { Ajv } from "ajv";
import { MAX_EVENT_ID_LENGTH, MODEL_KINDS } from "../domain/constants.ts";
import { DomainError } from "../domain/errors.ts";
import { readInstant } from "../domain/fields.ts";
import { DAY_MS } from "../domain/time.ts";

/** How far past now an event may be dated unless TALLY_MAX_FUTURE_MS says otherwise. */
export const DEFAULT_MAX_FUTURE_MS = DAY_MS;

/** Checked by readDecimal (exact, non-negative, bounded places), which names the field on failure. */
const DecimalInput = Type.Unsafe<number | string>({
  type: ["number", "string"],
  description: "An exact non-negative decimal, as a JSON number or a decimal string",
});

export const MODEL_KIND = Type.Union(MODEL_KINDS.map((k) => Type.Literal(k)));

/** One usage event as clients send it to `POST /v1/events`. */
export const EventInput = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: MAX_EVENT_ID_LENGTH,
      description: "Idempotency key, unique per account",
    }),
    account_id: Type.Optional(
      Type.String({ minLength: 1, description: "Root key only: the account written to" }),
    ),
    timestamp: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })], {
        description: "Event time: ISO 8601 with offset, or epoch milliseconds. Defaults to now.",
      }),
    ),
    model_id: Type.String({ minLength: 1, maxLength: 200 }),
    quantity: Type.Optional(DecimalInput),
    quantities: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 50 }), DecimalInput, {
        description:
          'per meter, for a model priced per meter, e.g. {"input_token": 1200, "output_token": 300}',
      }),
    ),
    user_id: Type.Optional(Type.String({ minLength: 1 })),
    key_id: Type.Optional(Type.String({ minLength: 1 })),
    api_name: Type.Optional(Type.String({ maxLength: 200 })),
    endpoint: Type.Optional(Type.String({ maxLength: 500 })),
    kind: Type.Optional(MODEL_KIND),
    unit: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    unit_price: Type.Optional(DecimalInput),
    cost: Type.Optional(DecimalInput),
    currency: Type.Optional(Type.String({ pattern: "^[A-Z]{3}$" })),
    tokens: Type.Optional(
      Type.Object(
        {
          prompt: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e12 })),
          completion: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e12 })),
        },
        { additionalProperties: false },
      ),
    ),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    admitted: Type.Optional(
      Type.Boolean({
        description:
          "true when this request was already counted by an allowed POST /v1/limits/check: the event is " +
          "billed as usual but not counted against the rate limits a second time",
      }),
    ),
  },
  { additionalProperties: false },
);
export type EventInput = Static<typeof EventInput>;

const ajv = new Ajv({ allErrors: false, coerceTypes: false, strict: false });
const check = ajv.compile(EventInput);

/** Validates one item; the error names the field as `events[i].field`. */
export function validateEventInput(item: unknown, loc: (string | number)[]): EventInput {
  if (check(item)) return item as EventInput;
  const err = check.errors?.[0];
  const path = (err?.instancePath ?? "").split("/").filter(Boolean);
  if (err?.keyword === "required") path.push(String(err.params.missingProperty));
  if (err?.keyword === "additionalProperties") path.push(String(err.params.additionalProperty));
  const msg =
    err?.keyword === "required"
      ? "Field required"
      : err?.keyword === "additionalProperties"
        ? "unknown field"
        : (err?.message ?? "is invalid");
  throw DomainError.validation([...loc, ...path.map((p) => (/^\d+$/.test(p) ? Number(p) : p))], msg);
}

/**
 * An event's time: an instant from 1970 on and at most `maxFutureMs` past `now`. An event dated
 * in year 9999 would be billed and sort first in every listing forever.
 */
export function readEventTime(
  value: unknown,
  loc: (string | number)[],
  now: number,
  maxFutureMs: number,
): number {
  const at = readInstant(value, loc);
  if (at < 0) throw DomainError.validation(loc, "must not be before 1970-01-01T00:00:00Z", "datetime_range");
  if (at > now + maxFutureMs) {
    throw DomainError.validation(
      loc,
      `must not be more than ${maxFutureMs} ms in the future (${new Date(now + maxFutureMs).toISOString()})`,
      "datetime_range",
    );
  }
  return at;
}
