import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import { MODEL_KIND } from "../../ingest/event-input.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { DecimalValue, Id, Instant } from "./schemas.ts";

/** `POST /v1/models` (root) and `GET /v1/models` (any key). */
export function modelRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/models",
      {
        schema: {
          tags: ["operator"],
          summary: "Create or update a model; a new unit_price adds a price version from effective_from",
          body: Type.Object(
            {
              id: Type.String({ minLength: 1, maxLength: 200 }),
              unit: Type.String({ minLength: 1, maxLength: 50 }),
              kind: MODEL_KIND,
              unit_price: DecimalValue,
              currency: Type.Optional(Type.String({ pattern: "^[A-Z]{3}$" })),
              reporting_enabled: Type.Optional(Type.Boolean()),
              effective_from: Type.Optional(Instant),
              upstream_id: Type.Optional(
                Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()]),
              ),
              upstream_model: Type.Optional(
                Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()]),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const r = await services.manage.upsertModel(principalOf(request), request.body);
        return reply.status(r.created ? 201 : 200).send({
          id: r.model.id,
          unit: r.model.unit,
          kind: r.model.kind,
          unit_price: dec(r.unitPrice),
          currency: r.currency,
          reporting_enabled: r.model.reportingEnabled,
          effective_from: formatUtc(r.effectiveFrom),
          // a routed model names its upstream; an unrouted one answers as it did before the gateway
          ...(r.model.upstreamId
            ? { upstream_id: r.model.upstreamId, upstream_model: r.model.upstreamModel ?? r.model.id }
            : {}),
          created_at: formatUtc(r.model.createdAt),
          updated_at: formatUtc(r.model.updatedAt),
        });
      },
    );

    app.get(
      "/v1/models/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Read a model with its price versions, oldest first",
          params: Id,
        },
      },
      async (request) => {
        const { model, prices } = await services.operator.getModel(principalOf(request), request.params.id);
        return {
          id: model.id,
          unit: model.unit,
          kind: model.kind,
          reporting_enabled: model.reportingEnabled,
          created_at: formatUtc(model.createdAt),
          updated_at: formatUtc(model.updatedAt),
          prices: prices.map((p) => ({
            unit_price: dec(p.unitPrice),
            currency: p.currency,
            effective_from: formatUtc(p.effectiveFrom),
          })),
        };
      },
    );

    app.get(
      "/v1/models",
      {
        schema: {
          tags: ["operator"],
          summary:
            "List models in OpenAI's list shape, with their price versions; an account's key sees the models it may use",
        },
      },
      async (request) => ({
        object: "list",
        data: (await services.manage.listModels(principalOf(request))).map(({ model, prices }) => ({
          id: model.id,
          object: "model",
          created: Math.floor(model.createdAt / 1000),
          owned_by: "tally",
          unit: model.unit,
          kind: model.kind,
          reporting_enabled: model.reportingEnabled,
          upstream_id: model.upstreamId ?? null,
          upstream_model: model.upstreamId ? (model.upstreamModel ?? model.id) : null,
          prices: prices.map((p) => ({
            unit_price: dec(p.unitPrice),
            currency: p.currency,
            effective_from: formatUtc(p.effectiveFrom),
          })),
        })),
      }),
    );
  };
}
