import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { User } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, ListQuery, listJson } from "./schemas.ts";

/** A user on the wire: every route that answers one answers this. */
const userJson = (u: User) => ({
  id: u.id,
  account_id: u.accountId,
  username: u.username,
  role: u.role,
  node_id: u.nodeId,
  created_at: formatUtc(u.createdAt),
});

const Role = Type.Union([Type.Literal("admin"), Type.Literal("member")]);

/**
 * `POST /v1/accounts/{id}/users` and `PATCH /v1/users/{id}` (root or the account's admin);
 * `GET /v1/accounts/{id}/users` and `GET /v1/users/{id}` (admins their account, members themselves).
 */
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
              role: Role,
              node_id: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const user = await services.manage.createUser(principalOf(request), request.params.id, request.body);
        return reply.status(201).send(userJson(user));
      },
    );

    app.get(
      "/v1/accounts/:id/users",
      {
        schema: {
          tags: ["operator"],
          summary: "List an account's users in creation order",
          params: Id,
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listUsers(principalOf(request), request.params.id, request.query),
          userJson,
        ),
    );

    app.get(
      "/v1/users/:id",
      { schema: { tags: ["operator"], summary: "Read a user", params: Id } },
      async (request) => userJson(await services.operator.getUser(principalOf(request), request.params.id)),
    );

    app.patch(
      "/v1/users/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Rename a user or change its role",
          params: Id,
          body: Type.Object(
            {
              username: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              role: Type.Optional(Role),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
        },
      },
      async (request) =>
        userJson(await services.operator.updateUser(principalOf(request), request.params.id, request.body)),
    );
  };
}
