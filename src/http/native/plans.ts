import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { chargeDocument, DEFAULT_CURRENCY, PlanBillingFields } from "../../billing/charge-schema.ts";
import { planBillingOf } from "../../billing/plan-billing.ts";
import { UNLIMITED } from "../../domain/constants.ts";
import { ZERO } from "../../domain/decimal.ts";
import { formatUtc } from "../../domain/time.ts";
import type { Plan } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { DecimalValue, Id, ListQuery, listJson } from "./schemas.ts";

const planJson = (p: Plan) => ({
  id: p.id,
  requests_per_minute: p.requestsPerMinute,
  requests_per_day: p.requestsPerDay,
  validity_days: p.validityDays,
  model_whitelist: p.modelWhitelist,
  model_blacklist: p.modelBlacklist,
  included: Object.fromEntries(Object.entries(p.included).map(([k, v]) => [k, dec(v)])),
  created_at: formatUtc(p.createdAt),
  updated_at: formatUtc(p.updatedAt),
  ...planBillingJson(p),
});

/** The plan's billing terms: currency, base fee and charges (exact decimals as JSON numbers). */
function planBillingJson(p: Plan) {
  const b = planBillingOf(p.billing);
  return {
    currency: b?.currency ?? DEFAULT_CURRENCY,
    base_fee: dec(b?.baseFee ?? ZERO),
    charges: (b?.charges ?? []).map((c) => chargeDocument(c, dec)),
  };
}

const Limit = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
const ModelList = Type.Optional(Type.Union([Type.Array(Type.String({ minLength: 1 })), Type.Null()]));

/** `POST /v1/plans` (root) with its billing terms (DESIGN.md "Billing"), `GET /v1/plans[/{id}]` (the root all; an account key its own plan). */
export function planRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/plans",
      {
        schema: {
          tags: ["operator"],
          summary: `Create or update a plan (null limits are unlimited; validity_days ${UNLIMITED} is unlimited)`,
          body: Type.Object(
            {
              id: Type.String({ minLength: 1, maxLength: 100 }),
              requests_per_minute: Limit,
              requests_per_day: Limit,
              validity_days: Type.Integer(),
              model_whitelist: ModelList,
              model_blacklist: ModelList,
              included: Type.Optional(Type.Record(Type.String(), DecimalValue)),
              ...PlanBillingFields,
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const r = await services.manage.upsertPlan(principalOf(request), request.body);
        return reply.status(r.created ? 201 : 200).send(planJson(r.plan));
      },
    );

    app.get(
      "/v1/plans",
      {
        schema: {
          tags: ["operator"],
          summary: "List plans in creation order",
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) =>
        listJson(await services.operator.listPlans(principalOf(request), request.query), planJson),
    );

    app.get(
      "/v1/plans/:id",
      { schema: { tags: ["operator"], summary: "Read a plan", params: Id } },
      async (request) => planJson(await services.operator.getPlan(principalOf(request), request.params.id)),
    );
  };
}
