import type { FastifyReply, FastifyRequest } from "fastify";
import { STATUS, toDomainError } from "../errors.ts";

/**
 * FastAPI's wire format, as the seed's clients expect it: `{detail: "..."}`, and for invalid input
 * 422 `{detail: [{loc, msg, type}]}` naming the field.
 */
export function sendFastApiError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toDomainError(err, request);
  if (e.code === "VALIDATION") {
    const detail = e.issues.length > 0 ? e.issues : [{ loc: ["body"], msg: e.message, type: "value_error" }];
    return reply.status(422).send({ detail });
  }
  if (e.code === "UNAUTHORIZED") reply.header("www-authenticate", "Bearer");
  const detail = e.code === "INTERNAL" ? "Internal Server Error" : e.message;
  return reply.status(STATUS[e.code]).send({ detail });
}

export function sendFastApiNotFound(_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({ detail: "Not Found" });
}
