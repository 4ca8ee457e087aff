import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Account } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { errors, Id } from "./schemas.ts";

export const accountJson = (a: Account) => ({
  id: a.id,
  name: a.name,
  is_enabled: a.isEnabled,
  plan_id: a.planId,
  created_at: formatUtc(a.createdAt),
  billing_timezone: a.billingTimezone ?? "UTC",
});

/** `POST /v1/accounts` (root) and `GET /v1/accounts/{id}`. */
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
          response: {
            201: Type.Object({
              id: Type.String(),
              name: Type.String(),
              is_enabled: Type.Boolean(),
              plan_id: Type.Union([Type.String(), Type.Null()]),
              created_at: Type.String(),
              billing_timezone: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const account = await services.manage.createAccount(principalOf(request), request.body);
        return reply.status(201).send(accountJson(account));
      },
    );

    app.get(
      "/v1/accounts/:id",
      { schema: { tags: ["operator"], summary: "Read an account", params: Id } },
      async (request) =>
        accountJson(await services.manage.getAccount(principalOf(request), request.params.id)),
    );
  };
}
