import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { formatUtc } from "../../domain/time.ts";
import type { User } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { errors, Id } from "./schemas.ts";

const userJson = (u: User) => ({
  id: u.id,
  account_id: u.accountId,
  username: u.username,
  role: u.role,
  node_id: u.nodeId,
  created_at: formatUtc(u.createdAt),
});

/** `POST /v1/accounts/{id}/users` (root or the account's admin). */
export function userRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts/:id/users",
      {
        schema: {
          tags: ["operator"],
          summary: "Create a user in an account",
          params: Id,
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 200 }),
              role: Type.Union([Type.Literal("admin"), Type.Literal("member")]),
              node_id: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              id: Type.String(),
              account_id: Type.String(),
              username: Type.String(),
              role: Type.String(),
              node_id: Type.Union([Type.String(), Type.Null()]),
              created_at: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const user = await services.manage.createUser(principalOf(request), request.params.id, request.body);
        return reply.status(201).send(userJson(user));
      },
    );
  };
}
