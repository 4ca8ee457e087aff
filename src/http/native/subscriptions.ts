import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Subscription } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, Instant } from "./schemas.ts";

const subscriptionJson = (s: Subscription) => ({
  id: s.id,
  account_id: s.accountId,
  plan_id: s.planId,
  activated_at: formatUtc(s.activatedAt),
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
  };
}
