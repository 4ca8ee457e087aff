import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { METERS, type MeterPrices } from "../../domain/meters.ts";
import { formatUtc } from "../../domain/time.ts";
import { MODEL_KIND } from "../../ingest/event-input.ts";
import type { PriceVersion } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { DecimalValue, Id, Instant } from "./schemas.ts";

/** A price per meter on the wire: exact JSON numbers, in METERS order. */
function metersJson(m: MeterPrices): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const meter of METERS) if (m[meter] !== undefined) out[meter] = dec(m[meter]);
  return out;
}

/** One price version; `meters` only on a version priced per meter. */
const priceJson = (p: PriceVersion) => ({
  unit_price: dec(p.unitPrice),
  ...(p.meters ? { meters: metersJson(p.meters) } : {}),
  currency: p.currency,
  effective_from: formatUtc(p.effectiveFrom),
});

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
              unit_price: Type.Optional(DecimalValue),
              meters: Type.Optional(
                Type.Record(Type.String({ minLength: 1, maxLength: 50 }), DecimalValue, {
                  description: 'a price per meter instead of unit_price, e.g. {"input_token": 0.00000015}',
                }),
              ),
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
          ...(r.meters ? { meters: metersJson(r.meters) } : {}),
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
          prices: prices.map(priceJson),
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
          prices: prices.map(priceJson),
        })),
      }),
    );
  };
}
