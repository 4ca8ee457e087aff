import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Subscription } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { AccountItem, EndsAt, Id, Instant, ListQuery, listJson } from "./schemas.ts";

const subscriptionJson = (s: Subscription) => ({
  id: s.id,
  account_id: s.accountId,
  plan_id: s.planId,
  activated_at: formatUtc(s.activatedAt),
  ends_at: s.endsAt === null || s.endsAt === undefined ? null : formatUtc(s.endsAt),
  created_at: formatUtc(s.createdAt),
});

/** `POST /v1/accounts/{id}/subscriptions` (root): activates a plan, keeping the history. */
export function subscriptionRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts/:id/subscriptions",
      {
        schema: {
          tags: ["operator"],
          summary: "Activate a plan for an account (history kept)",
          params: Id,
          body: Type.Object(
            { plan_id: Type.String({ minLength: 1 }), activated_at: Type.Optional(Instant) },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const sub = await services.manage.createSubscription(
          principalOf(request),
          request.params.id,
          request.body,
        );
        return reply.status(201).send(subscriptionJson(sub));
      },
    );

    app.get(
      "/v1/accounts/:id/subscriptions",
      {
        schema: {
          tags: ["operator"],
          summary: "List an account's subscriptions (its plan history) in creation order",
          params: Id,
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listSubscriptions(principalOf(request), request.params.id, request.query),
          subscriptionJson,
        ),
    );

    app.get(
      "/v1/accounts/:id/subscriptions/:subscription_id",
      {
        schema: {
          tags: ["operator"],
          summary: "Read a subscription",
          params: AccountItem("subscription_id"),
        },
      },
      async (request) =>
        subscriptionJson(
          await services.operator.getSubscription(
            principalOf(request),
            request.params.id,
            request.params.subscription_id,
          ),
        ),
    );

    app.patch(
      "/v1/accounts/:id/subscriptions/:subscription_id",
      {
        schema: {
          tags: ["operator"],
          summary: "End a subscription at ends_at (null: no end)",
          params: AccountItem("subscription_id"),
          body: EndsAt,
        },
      },
      async (request) =>
        subscriptionJson(
          await services.operator.endSubscription(
            principalOf(request),
            request.params.id,
            request.params.subscription_id,
            request.body,
          ),
        ),
    );
  };
}
