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
