import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { DomainError } from "../../domain/errors.ts";
import { formatUtc } from "../../domain/time.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { errors, Id } from "./schemas.ts";

/** The body is optional (any content type, or none), so it is read here rather than by a schema. */
function readKeyBody(body: unknown): { label?: string } {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw DomainError.validation(["body"], "must be an object");
  const { label, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra) throw DomainError.validation(["body", extra], "unknown field");
  if (label === undefined) return {};
  if (typeof label !== "string" || label.length < 1 || label.length > 100) {
    throw DomainError.validation(["body", "label"], "must be a string of 1 to 100 characters");
  }
  return { label };
}

/** `POST /v1/users/{id}/keys` and `DELETE /v1/keys/{id}` (root or the account's admin). */
export function keyRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/users/:id/keys",
      {
        schema: {
          tags: ["operator"],
          summary: "Issue an API key (the secret is shown only in this answer)",
          params: Id,
          description: "Body (optional): `{label?: string}` of 1 to 100 characters; the default is `Key N`.",
          response: {
            201: Type.Object({
              id: Type.String(),
              user_id: Type.String(),
              account_id: Type.String(),
              label: Type.String(),
              prefix: Type.String(),
              key: Type.String(),
              created_at: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const key = await services.manage.createKey(
          principalOf(request),
          request.params.id,
          readKeyBody(request.body),
        );
        return reply.status(201).send({
          id: key.id,
          user_id: key.userId,
          account_id: key.accountId,
          label: key.label,
          prefix: key.prefix,
          key: key.secret,
          created_at: formatUtc(key.createdAt),
        });
      },
    );

    app.delete(
      "/v1/keys/:id",
      { schema: { tags: ["operator"], summary: "Revoke an API key", params: Id } },
      async (request, reply) => {
        await services.manage.revokeKey(principalOf(request), request.params.id);
        return reply.status(204).send();
      },
    );
  };
}
