/**
 * The one error type of the core. Each API surface maps `code` to its own wire format and status
 * (http/errors.ts); expected outcomes that are not failures are returned as data instead.
 */
export type ErrorCode =
  | "VALIDATION"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "LIMIT_EXCEEDED"
  | "PAYLOAD_TOO_LARGE"
  | "URI_TOO_LONG"
  | "UNAVAILABLE"
  | "INTERNAL";

export interface FieldIssue {
  /** path of the offending field, e.g. ["body", "events", 3, "quantity"] */
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues: FieldIssue[] = [],
    /** what failed underneath (a lost database, a full disk): logged, never shown */
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "DomainError";
  }

  static validation(loc: (string | number)[], msg: string, type = "value_error"): DomainError {
    const field = loc.filter((p) => p !== "body").join(".");
    return new DomainError("VALIDATION", field ? `${field}: ${msg}` : msg, [{ loc, msg, type }]);
  }

  static notFound(what: string): DomainError {
    return new DomainError("NOT_FOUND", `${what} not found`);
  }
}
