import type { FastifyReply, FastifyRequest } from "fastify";
import type { ErrorCode } from "../../domain/errors.ts";
import { statusOf, toDomainError } from "../errors.ts";

/**
 * Seed 003 shows no error body. A4F's API is OpenAI-compatible, so its surface answers errors the
 * OpenAI way: `{error: {message, type, param, request_id}}`, with the core's status for the code.
 */
export type A4fErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error";

const TYPE: Record<ErrorCode, A4fErrorType> = {
  VALIDATION: "invalid_request_error",
  UNAUTHORIZED: "authentication_error",
  FORBIDDEN: "permission_error",
  NOT_FOUND: "not_found_error",
  CONFLICT: "invalid_request_error",
  PAYLOAD_TOO_LARGE: "invalid_request_error",
  URI_TOO_LONG: "invalid_request_error",
  LIMIT_EXCEEDED: "rate_limit_error",
  INTERNAL: "server_error",
  UNAVAILABLE: "server_error",
};

export function sendA4fError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toDomainError(err, request);
  const loc = e.issues[0]?.loc;
  return reply.status(statusOf(e, reply)).send({
    error: {
      message: e.message,
      type: TYPE[e.code],
      param: loc ? loc.slice(1).join(".") || null : null,
      request_id: request.id,
    },
  });
}

export function sendA4fNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({
    error: {
      message: `Route ${request.method} ${request.url.split("?")[0]} not found`,
      type: "not_found_error",
      param: null,
      request_id: request.id,
    },
  });
}
