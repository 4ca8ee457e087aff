import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { DomainError, type ErrorCode, type FieldIssue } from "../domain/errors.ts";

/**
 * One mapper per wire format. Every surface turns a DomainError (or a Fastify validation,
 * body-size or parse error) into its own shape; anything else is logged in full and answered
 * with a generic 5xx.
 */
export const STATUS: Record<ErrorCode, number> = {
  VALIDATION: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  LIMIT_EXCEEDED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

/** What a 503 says on every surface: the cause (driver text, paths) stays in the log. */
export const UNAVAILABLE_MESSAGE = "Service temporarily unavailable; retry later";

/** Seconds a client should wait before retrying a 503 (a lost store usually returns within that). */
export const RETRY_AFTER_SECONDS = 5;

/** The status for an error, with the headers that go with it on every surface (`Retry-After` for 503). */
export function statusOf(e: DomainError, reply: FastifyReply): number {
  if (e.code === "UNAVAILABLE") reply.header("retry-after", String(RETRY_AFTER_SECONDS));
  return STATUS[e.code];
}

/** Turns whatever was thrown into a DomainError; unknown errors become INTERNAL after logging. */
export function toDomainError(err: unknown, request: FastifyRequest): DomainError {
  if (err instanceof DomainError) {
    // an internal or unavailable error is answered generically, so its cause must reach the log
    if (err.code === "INTERNAL") request.log.error({ err, cause: err.cause }, err.message);
    if (err.code === "UNAVAILABLE") {
      request.log.error({ err, cause: err.cause }, err.message);
      return new DomainError("UNAVAILABLE", UNAVAILABLE_MESSAGE);
    }
    return err;
  }
  const fe = err as FastifyError & {
    validation?: {
      instancePath: string;
      message?: string;
      keyword: string;
      params?: Record<string, unknown>;
    }[];
    validationContext?: string;
  };
  if (fe?.validation) {
    const part = fe.validationContext ?? "body";
    const issues: FieldIssue[] = fe.validation.map((v) => {
      const path = v.instancePath
        .split("/")
        .filter(Boolean)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const missing = v.keyword === "required" ? String(v.params?.missingProperty ?? "") : "";
      // an unknown field is named too, so the answer says which one to remove
      const extra = v.keyword === "additionalProperties" ? String(v.params?.additionalProperty ?? "") : "";
      const loc = [
        part === "querystring" ? "query" : part === "params" ? "path" : part,
        ...path,
        ...(missing ? [missing] : []),
        ...(extra ? [extra] : []),
      ];
      const msg = missing
        ? "Field required"
        : extra
          ? "Extra inputs are not permitted"
          : (v.message ?? "is invalid");
      return { loc, msg, type: extra ? "extra_forbidden" : ajvType(v.keyword) };
    });
    const first = issues[0];
    const field = first ? first.loc.slice(1).join(".") : part;
    return new DomainError("VALIDATION", `${field}: ${first?.msg ?? "is invalid"}`, issues);
  }
  const code = fe?.code;
  if (code === "FST_ERR_MAX_PARAM_LENGTH")
    return new DomainError("URI_TOO_LONG", "path: a path parameter is too long");
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return new DomainError("PAYLOAD_TOO_LARGE", "Request body is too large");
  if (
    code === "FST_ERR_CTP_EMPTY_JSON_BODY" ||
    code === "FST_ERR_CTP_INVALID_JSON_BODY" ||
    fe instanceof SyntaxError
  ) {
    return new DomainError("VALIDATION", "body: is not valid JSON", [
      { loc: ["body"], msg: "Invalid JSON body", type: "json_invalid" },
    ]);
  }
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return new DomainError("VALIDATION", "body: Content-Type must be application/json", [
      { loc: ["body"], msg: "Content-Type must be application/json", type: "content_type" },
    ]);
  }
  if (typeof fe?.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new DomainError("VALIDATION", fe.message, [
      { loc: ["request"], msg: fe.message, type: "value_error" },
    ]);
  }
  request.log.error({ err }, "unhandled error");
  return new DomainError("INTERNAL", "Internal server error");
}

function ajvType(keyword: string): string {
  switch (keyword) {
    case "required":
      return "missing";
    case "type":
      return "type_error";
    case "exclusiveMinimum":
    case "minimum":
      return "greater_than";
    case "maximum":
      return "less_than_equal";
    default:
      return "value_error";
  }
}

/** Native format: `{error: {code, message, issues?, request_id}}`. */
export function sendNativeError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toDomainError(err, request);
  return reply.status(statusOf(e, reply)).send({
    error: {
      code: e.code,
      message: e.message,
      ...(e.issues.length > 0 ? { issues: e.issues } : {}),
      request_id: request.id,
    },
  });
}
