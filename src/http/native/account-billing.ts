import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { accountJson } from "./accounts.ts";
import { Id } from "./schemas.ts";

/**
 * `PATCH /v1/accounts/{id} {billing_timezone}` (root): only the billing zone, until the general
 * account PATCH (name, is_enabled, billing_mode) takes this field over.
 */
export function accountBillingRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.patch(
      "/v1/accounts/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Change an account's billing timezone",
          params: Id,
          body: Type.Object(
            { billing_timezone: Type.String({ minLength: 1, maxLength: 100, description: "IANA zone" }) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        accountJson(
          await services.manage.setBillingTimezone(
            principalOf(request),
            request.params.id,
            request.body.billing_timezone,
          ),
        ),
    );
  };
}
