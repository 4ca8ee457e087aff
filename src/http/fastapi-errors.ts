import type { FastifyReply, FastifyRequest } from "fastify";
import type { FieldIssue } from "../domain/errors.ts";
import { statusOf, toDomainError } from "./errors.ts";

/**
 * FastAPI's wire format, for the surfaces that stand in for FastAPI services (the license report
 * and the usage log): `{detail: "..."}`, and for invalid input 422 `{detail: [{loc, msg, type}]}`
 * naming the field. The cause of a 5xx is logged by toDomainError, never shown.
 */
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

export function sendFastApiError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  // Fastify's own body-parser failures, worded as FastAPI words them
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "FST_ERR_CTP_EMPTY_JSON_BODY") return sendValidationError(reply, [MISSING_BODY]);
  if (code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError) {
    return sendValidationError(reply, [INVALID_JSON]);
  }
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendValidationError(reply, [NOT_AN_OBJECT]);

  const e = toDomainError(err, request);
  if (e.code === "VALIDATION") {
    return sendValidationError(
      reply,
      e.issues.length > 0 ? e.issues : [{ loc: ["body"], msg: e.message, type: "value_error" }],
    );
  }
  if (e.code === "UNAUTHORIZED") reply.header("www-authenticate", "Bearer");
  const status = statusOf(e, reply);
  if (e.code === "UNAVAILABLE") return reply.status(status).send({ detail: "Service Unavailable" });
  if (status >= 500) return reply.status(status).send({ detail: "Internal Server Error" });
  return reply.status(status).send({ detail: e.message });
}

export function sendFastApiNotFound(_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({ detail: "Not Found" });
}
