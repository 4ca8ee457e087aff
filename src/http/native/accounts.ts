import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Account } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, ListQuery, listJson } from "./schemas.ts";

/** An account on the wire: every route that answers one answers this. */
const accountJson = (a: Account) => ({
  id: a.id,
  name: a.name,
  is_enabled: a.isEnabled,
  plan_id: a.planId,
  billing_timezone: a.billingTimezone ?? "UTC",
  billing_mode: a.billingMode ?? "postpaid",
  created_at: formatUtc(a.createdAt),
});

/** `POST /v1/accounts` (root), `GET /v1/accounts[/{id}]` and `PATCH /v1/accounts/{id}` (root). */
export function accountRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts",
      {
        schema: {
          tags: ["operator"],
          summary: "Create an account",
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              plan_id: Type.Optional(Type.String({ minLength: 1 })),
              billing_timezone: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 100,
                  description: "IANA zone of billing periods, default UTC",
                }),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const account = await services.manage.createAccount(principalOf(request), request.body);
        return reply.status(201).send(accountJson(account));
      },
    );

    app.get(
      "/v1/accounts",
      {
        schema: {
          tags: ["operator"],
          summary: "List accounts in creation order (the root all; an account key its own)",
          querystring: Type.Object(
            { ...ListQuery, name_prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        listJson(await services.operator.listAccounts(principalOf(request), request.query), accountJson),
    );

    app.get(
      "/v1/accounts/:id",
      { schema: { tags: ["operator"], summary: "Read an account", params: Id } },
      async (request) =>
        accountJson(await services.manage.getAccount(principalOf(request), request.params.id)),
    );

    app.patch(
      "/v1/accounts/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Rename, disable or enable an account, or change how it is billed (root)",
          description: "A disabled account's keys are refused on every surface until it is enabled again.",
          params: Id,
          body: Type.Object(
            {
              name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              is_enabled: Type.Optional(Type.Boolean()),
              billing_timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
              billing_mode: Type.Optional(Type.Union([Type.Literal("postpaid"), Type.Literal("prepaid")])),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
        },
      },
      async (request) =>
        accountJson(
          await services.operator.updateAccount(principalOf(request), request.params.id, request.body),
        ),
    );
  };
}
