import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";

/**
 * `POST /v1/portal/sessions` (DESIGN.md "Dashboard"): a one-time sign-in link to the dashboard for
 * one account (read only) or one of its users, for an operator to hand to its own customers. The
 * link works once, within 10 minutes; the session it opens lasts `ttl_s`.
 */
export function portalRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/portal/sessions",
      {
        schema: {
          tags: ["operator"],
          summary: "A one-time dashboard sign-in link for an account or one of its users",
          body: Type.Object(
            {
              account_id: Type.String({ minLength: 1, maxLength: 200 }),
              user_id: Type.Optional(
                Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()]),
              ),
              ttl_s: Type.Optional(
                Type.Integer({ description: "the session's length, 60 s to 7 days; default 3600" }),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const { token, link } = await services.portal.createLink(principalOf(request), request.body);
        const path = `/dashboard/portal/${token}`;
        return reply
          .status(201)
          .header("cache-control", "no-store")
          .send({
            url: `${request.protocol}://${request.host}${path}`,
            path,
            account_id: link.accountId,
            user_id: link.userId,
            expires_at: formatUtc(link.expiresAt),
            session_ttl_s: link.sessionTtlMs / 1000,
          });
      },
    );
  };
}
