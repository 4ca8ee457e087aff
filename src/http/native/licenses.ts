import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { formatUtc } from "../../domain/time.ts";
import type { License } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, Instant } from "./schemas.ts";

const licenseJson = (l: License) => ({
  id: l.id,
  account_id: l.accountId,
  model_id: l.modelId,
  starts_at: formatUtc(l.startsAt),
  ends_at: l.endsAt === null ? null : formatUtc(l.endsAt),
  created_at: formatUtc(l.createdAt),
});

/** `POST /v1/accounts/{id}/licenses` (root). */
export function licenseRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts/:id/licenses",
      {
        schema: {
          tags: ["operator"],
          summary: "License a model to an account from starts_at until ends_at",
          params: Id,
          body: Type.Object(
            {
              model_id: Type.String({ minLength: 1 }),
              starts_at: Type.Optional(Instant),
              ends_at: Type.Optional(Type.Union([Instant, Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const license = await services.manage.createLicense(
          principalOf(request),
          request.params.id,
          request.body,
        );
        return reply.status(201).send(licenseJson(license));
      },
    );
  };
}
