import type { FastifyReply, FastifyRequest } from "fastify";
import type { ErrorCode } from "../../domain/errors.ts";
import { statusOf, toDomainError } from "../errors.ts";

/** The workspace usage API's error categories (seeds/004). */
export type FalErrorType =
  | "authorization_error"
  | "validation_error"
  | "not_found"
  | "rate_limited"
  | "server_error"
  | "not_implemented";

const TYPE: Record<ErrorCode, FalErrorType> = {
  VALIDATION: "validation_error",
  UNAUTHORIZED: "authorization_error",
  FORBIDDEN: "authorization_error",
  NOT_FOUND: "not_found",
  CONFLICT: "validation_error",
  PAYLOAD_TOO_LARGE: "validation_error",
  URI_TOO_LONG: "validation_error",
  LIMIT_EXCEEDED: "rate_limited",
  INTERNAL: "server_error",
  UNAVAILABLE: "server_error",
};

/** `{error: {type, message, request_id}}`, the seed's format, with the core's status for the code. */
export function sendFalError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toDomainError(err, request);
  return reply.status(statusOf(e, reply)).send({
    error: { type: TYPE[e.code], message: e.message, request_id: request.id },
  });
}

export function sendFalNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({
    error: {
      type: "not_found",
      message: `Route ${request.method} ${request.url.split("?")[0]} not found`,
      request_id: request.id,
    },
  });
}
