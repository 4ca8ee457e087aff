import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Payment } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { DecimalValue, Id, Instant } from "./schemas.ts";

const paymentJson = (p: Payment) => ({
  id: p.id,
  account_id: p.accountId,
  amount_usd: dec(p.amountUsd),
  paid_at: formatUtc(p.paidAt),
  reference: p.reference,
  created_at: formatUtc(p.createdAt),
});

/** `POST /v1/accounts/{id}/payments` (root). */
export function paymentRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts/:id/payments",
      {
        schema: {
          tags: ["operator"],
          summary: "Record a payment",
          params: Id,
          body: Type.Object(
            {
              amount_usd: DecimalValue,
              paid_at: Type.Optional(Instant),
              reference: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const payment = await services.manage.createPayment(
          principalOf(request),
          request.params.id,
          request.body,
        );
        return reply.status(201).send(paymentJson(payment));
      },
    );
  };
}
