import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { Id } from "./schemas.ts";

/** `PUT /v1/accounts/{id}/budget` (root): `{monthly_usd, mode: "hard"|"soft"}`, or `null` to remove it. */
export function budgetRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.put(
      "/v1/accounts/:id/budget",
      {
        schema: {
          tags: ["operator"],
          summary:
            "Set the account's monthly budget in USD (hard: refuse with 402; soft: admit and flag); null removes it",
          params: Id,
          // the body is an object or null; parseBudgetInput names the field at fault
          body: Type.Unknown(),
        },
      },
      async (request) => {
        const budget = await services.manage.setBudget(principalOf(request), request.params.id, request.body);
        return {
          account_id: request.params.id,
          budget: budget ? { monthly_usd: dec(budget.monthlyUsd), mode: budget.mode } : null,
        };
      },
    );
  };
}
