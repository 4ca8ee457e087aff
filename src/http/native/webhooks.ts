import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type {
  DeliveryAttemptRecord,
  OutboxMessageRecord,
  WebhookEndpointRecord,
} from "../../notify/webhook-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, ListQuery, listJson } from "./schemas.ts";

const time = (at: number | null) => (at === null ? null : formatUtc(at));

/** An endpoint on the wire; its secret only in the answers of create and rotate. */
const endpointJson = (e: WebhookEndpointRecord) => ({
  id: e.id,
  account_id: e.accountId,
  url: e.url,
  events: e.events,
  status: e.disabledAt === null ? "enabled" : "disabled",
  disabled_at: time(e.disabledAt),
  disabled_reason: e.disabledReason,
  failing_since: time(e.failingSince),
  previous_secret_expires_at: time(e.previousSecretExpiresAt),
  created_at: formatUtc(e.createdAt),
});

const attemptJson = (a: DeliveryAttemptRecord) => ({
  attempt: a.attemptNumber,
  attempted_at: formatUtc(a.attemptedAt),
  status_code: a.statusCode,
  latency_ms: a.latencyMs,
  succeeded: a.succeeded,
  error: a.error,
  response_excerpt: a.responseExcerpt,
});

/** A delivery: one message to one endpoint, with what was sent and every attempt. */
const deliveryJson = (m: OutboxMessageRecord, attempts: DeliveryAttemptRecord[] = []) => ({
  id: m.id,
  endpoint_id: m.endpointId,
  account_id: m.accountId,
  type: m.type,
  status: m.status,
  created_at: formatUtc(m.createdAt),
  next_attempt_at: m.status === "pending" ? formatUtc(m.nextAttemptAt) : null,
  attempt_count: m.attemptCount,
  body: JSON.parse(m.body) as unknown,
  attempts: attempts.map(attemptJson),
});

const Body = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2000, description: "http or https, no credentials" }),
    events: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 20 }),
    account_id: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], {
        description: "root: the account it hears (none: every account); an admin's key implies its own",
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * Webhook endpoints (DESIGN.md "Webhooks and alerts"): root for any account or all, an admin for
 * its own. Deliveries are signed per Standard Webhooks and sent by every instance's worker.
 */
export function webhookRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/webhooks",
      {
        schema: {
          tags: ["webhooks"],
          summary: "Create an endpoint; its signing secret is shown once",
          body: Body,
        },
      },
      async (request, reply) => {
        const { endpoint, secret } = await services.webhooks.create(principalOf(request), request.body);
        return reply.status(201).send({ ...endpointJson(endpoint), secret });
      },
    );

    app.get(
      "/v1/webhooks",
      {
        schema: {
          tags: ["webhooks"],
          summary: "List endpoints in creation order (root: all, or one account's)",
          querystring: Type.Object(
            { ...ListQuery, account_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        listJson(await services.webhooks.list(principalOf(request), request.query), endpointJson),
    );

    app.get(
      "/v1/webhooks/:id",
      { schema: { tags: ["webhooks"], summary: "Read an endpoint", params: Id } },
      async (request) => endpointJson(await services.webhooks.get(principalOf(request), request.params.id)),
    );

    app.delete(
      "/v1/webhooks/:id",
      { schema: { tags: ["webhooks"], summary: "Delete an endpoint and its delivery log", params: Id } },
      async (request, reply) => {
        await services.webhooks.delete(principalOf(request), request.params.id);
        return reply.status(204).send();
      },
    );

    app.post(
      "/v1/webhooks/:id/rotate",
      {
        schema: {
          tags: ["webhooks"],
          summary: "A new signing secret, shown once; the previous one signs too for 24 hours",
          params: Id,
        },
      },
      async (request) => {
        const { endpoint, secret } = await services.webhooks.rotate(principalOf(request), request.params.id);
        return { ...endpointJson(endpoint), secret };
      },
    );

    app.post(
      "/v1/webhooks/:id/test",
      { schema: { tags: ["webhooks"], summary: "Send a webhook.test message to this endpoint", params: Id } },
      async (request, reply) =>
        reply
          .status(202)
          .send(deliveryJson(await services.webhooks.test(principalOf(request), request.params.id))),
    );

    app.get(
      "/v1/webhooks/:id/deliveries",
      {
        schema: {
          tags: ["webhooks"],
          summary: "The endpoint's deliveries, newest first, each with its attempts",
          params: Id,
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) => {
        const page = await services.webhooks.deliveries(
          principalOf(request),
          request.params.id,
          request.query,
        );
        return { data: page.data.map((d) => deliveryJson(d.message, d.attempts)), has_more: page.hasMore };
      },
    );

    app.post(
      "/v1/webhooks/deliveries/:id/retry",
      {
        schema: {
          tags: ["webhooks"],
          summary: "Send a delivery again now (one more attempt; re-enables its endpoint)",
          params: Id,
        },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(deliveryJson(await services.webhooks.retry(principalOf(request), request.params.id))),
    );
  };
}
