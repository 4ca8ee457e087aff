import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Payment } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { AccountItem, DecimalValue, Id, Instant, ListQuery, listJson } from "./schemas.ts";

const paymentJson = (p: Payment) => ({
  id: p.id,
  account_id: p.accountId,
  amount_usd: dec(p.amountUsd),
  paid_at: formatUtc(p.paidAt),
  reference: p.reference,
  refund_of: p.refundOf ?? null,
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

    app.get(
      "/v1/accounts/:id/payments",
      {
        schema: {
          tags: ["operator"],
          summary: "List an account's payments and refunds in creation order",
          params: Id,
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listPayments(principalOf(request), request.params.id, request.query),
          paymentJson,
        ),
    );

    app.get(
      "/v1/accounts/:id/payments/:payment_id",
      { schema: { tags: ["operator"], summary: "Read a payment", params: AccountItem("payment_id") } },
      async (request) =>
        paymentJson(
          await services.operator.getPayment(
            principalOf(request),
            request.params.id,
            request.params.payment_id,
          ),
        ),
    );

    app.post(
      "/v1/accounts/:id/payments/:payment_id/refund",
      {
        schema: {
          tags: ["operator"],
          summary: "Refund a payment, whole or in part, by a negative entry (the payment is not edited)",
          params: AccountItem("payment_id"),
          body: Type.Object(
            {
              amount_usd: Type.Optional(DecimalValue),
              reference: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const refund = await services.operator.refundPayment(
          principalOf(request),
          request.params.id,
          request.params.payment_id,
          request.body ?? {},
        );
        return reply.status(201).send(paymentJson(refund));
      },
    );
  };
}
