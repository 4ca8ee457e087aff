import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ALERT_BASES, ALERT_METRICS, ALERT_PERIODS } from "../../domain/alerts.ts";
import { formatUtc } from "../../domain/time.ts";
import { outlookJson } from "../../notify/alert-evaluation.ts";
import type { AlertRuleRecord, RuleView } from "../../notify/alert-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { Id } from "./schemas.ts";

/** A rule on the wire; thresholds and value as exact JSON numbers. */
const ruleJson = (r: AlertRuleRecord) => ({
  id: r.id,
  account_id: r.accountId,
  metric: r.metric,
  model_id: r.modelId,
  period: r.period,
  thresholds: r.thresholds.map(dec),
  basis: r.basis,
  value: r.value === null ? null : dec(r.value),
  created_at: formatUtc(r.createdAt),
});

/** A rule with where its period stands now and when the trend reaches each threshold. */
const viewJson = (v: RuleView) => ({
  ...ruleJson(v.rule),
  current_period: { start: formatUtc(v.period.start), end: formatUtc(v.period.end) },
  total: dec(v.total),
  limit: v.limit === null ? null : dec(v.limit),
  // the threshold as an exact JSON number, like every decimal of this API
  outlook: v.outlook.map((o) => ({ ...outlookJson(o), threshold: dec(o.threshold) })),
});

const oneOf = (values: readonly string[], description?: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    description ? { description } : {},
  );

const Rule = Type.Object(
  {
    metric: oneOf(ALERT_METRICS),
    model_id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()])),
    period: oneOf(ALERT_PERIODS, "in the account's billing timezone"),
    thresholds: Type.Array(Type.Unknown(), { description: "percentages of the limit, e.g. [50, 80, 100]" }),
    basis: oneOf(
      ALERT_BASES,
      "included: the plan's included quantity; budget: the monthly budget; absolute: value",
    ),
    value: Type.Optional(Type.Unknown({ description: "the limit of an absolute rule" })),
  },
  { additionalProperties: false },
);

/**
 * Alert rules (DESIGN.md "Webhooks and alerts"): each threshold fires once per period when
 * crossed, by live traffic or a backfill, across instances; the list shows each rule's forecast.
 */
export function alertRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts/:id/alerts",
      { schema: { tags: ["webhooks"], summary: "Create an alert rule", params: Id, body: Rule } },
      async (request, reply) => {
        const rule = await services.alerts.create(principalOf(request), request.params.id, request.body);
        return reply.status(201).send(ruleJson(rule));
      },
    );

    app.get(
      "/v1/accounts/:id/alerts",
      {
        schema: {
          tags: ["webhooks"],
          summary: "An account's alert rules with this period's total and each threshold's forecast",
          params: Id,
        },
      },
      async (request) => {
        const views = await services.alerts.list(principalOf(request), request.params.id);
        return { data: views.map(viewJson), has_more: false };
      },
    );

    app.get(
      "/v1/alerts/:id",
      { schema: { tags: ["webhooks"], summary: "Read an alert rule", params: Id } },
      async (request) => ruleJson(await services.alerts.get(principalOf(request), request.params.id)),
    );

    app.delete(
      "/v1/alerts/:id",
      { schema: { tags: ["webhooks"], summary: "Delete an alert rule and its firings", params: Id } },
      async (request, reply) => {
        await services.alerts.delete(principalOf(request), request.params.id);
        return reply.status(204).send();
      },
    );
  };
}
