import { Type } from "@sinclair/typebox";

/** Schemas every native resource shares. */
export const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
export const Instant = Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })], {
  description: "ISO 8601 date-time with offset, or epoch milliseconds",
});
export const DecimalValue = Type.Unsafe<number | string>({
  type: ["number", "string"],
  description: "Exact non-negative decimal, as a JSON number or a decimal string",
});
const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    issues: Type.Optional(Type.Array(Type.Unknown())),
    request_id: Type.String(),
  }),
});
/** The native error answers a route documents. */
export const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** A list's query (DESIGN.md "Operator API"): creation order, `starting_after` the last id of the previous page. */
export const ListQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
  starting_after: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: "the last id of the previous page" }),
  ),
};

/** A list's answer: `{data, has_more}`, each item in its resource's one shape. */
export function listJson<T, U>(page: { data: T[]; hasMore: boolean }, itemJson: (item: T) => U) {
  return { data: page.data.map(itemJson), has_more: page.hasMore };
}

/** An account and one of its things, by id. */
export const AccountItem = (name: string) =>
  Type.Object({
    id: Type.String({ minLength: 1, maxLength: 200 }),
    [name]: Type.String({ minLength: 1, maxLength: 200 }),
  });

/** `ends_at` of a license or subscription: an instant, or null for no end. */
export const EndsAt = Type.Object(
  { ends_at: Type.Union([Instant, Type.Null()]) },
  { additionalProperties: false },
);
