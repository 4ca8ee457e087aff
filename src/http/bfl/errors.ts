import type { FastifyReply, FastifyRequest } from "fastify";
import type { ErrorCode, FieldIssue } from "../../domain/errors.ts";
import { toDomainError } from "../errors.ts";

/**
 * The license surface answers like the FastAPI service it stands in for: `{detail: "..."}`, and
 * for validation errors `{detail: [{loc, msg, type}]}` with status 422.
 */
const STATUS: Record<ErrorCode, number> = {
  VALIDATION: 422,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  LIMIT_EXCEEDED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

export const MISSING_BODY: FieldIssue = { loc: ["body"], msg: "Field required", type: "missing" };
export const INVALID_JSON: FieldIssue = { loc: ["body"], msg: "JSON decode error", type: "json_invalid" };
export const NOT_AN_OBJECT: FieldIssue = {
  loc: ["body"],
  msg: "Input should be a valid dictionary or object to extract fields from",
  type: "model_attributes_type",
};

export function sendValidationError(reply: FastifyReply, issues: FieldIssue[]): FastifyReply {
  return reply.status(422).send({ detail: issues });
}

export function sendBflError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  // Fastify's own body-parser failures, worded as FastAPI words them
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "FST_ERR_CTP_EMPTY_JSON_BODY") return sendValidationError(reply, [MISSING_BODY]);
  if (code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError)
    return sendValidationError(reply, [INVALID_JSON]);
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendValidationError(reply, [NOT_AN_OBJECT]);

  const e = toDomainError(err, request);
  const status = STATUS[e.code];
  if (e.code === "VALIDATION") {
    return sendValidationError(
      reply,
      e.issues.length > 0 ? e.issues : [{ loc: ["body"], msg: e.message, type: "value_error" }],
    );
  }
  // the cause of a 5xx is logged by toDomainError, never shown
  if (e.code === "UNAVAILABLE") return reply.status(status).send({ detail: "Service Unavailable" });
  if (status >= 500) return reply.status(status).send({ detail: "Internal Server Error" });
  return reply.status(status).send({ detail: e.message });
}

export function sendBflNotFound(_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({ detail: "Not Found" });
}
