import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { License } from "../../manage/manage-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { AccountItem, EndsAt, Id, Instant, ListQuery, listJson } from "./schemas.ts";

const licenseJson = (l: License) => ({
  id: l.id,
  account_id: l.accountId,
  model_id: l.modelId,
  starts_at: formatUtc(l.startsAt),
  ends_at: l.endsAt === null ? null : formatUtc(l.endsAt),
  created_at: formatUtc(l.createdAt),
});

/** `POST /v1/accounts/{id}/licenses` and `PATCH .../licenses/{license_id}` (root); lists and reads (the account's keys). */
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

    app.get(
      "/v1/accounts/:id/licenses",
      {
        schema: {
          tags: ["operator"],
          summary: "List an account's licenses in creation order, optionally one model's",
          params: Id,
          querystring: Type.Object(
            { ...ListQuery, model_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listLicenses(principalOf(request), request.params.id, request.query),
          licenseJson,
        ),
    );

    app.get(
      "/v1/accounts/:id/licenses/:license_id",
      { schema: { tags: ["operator"], summary: "Read a license", params: AccountItem("license_id") } },
      async (request) =>
        licenseJson(
          await services.operator.getLicense(
            principalOf(request),
            request.params.id,
            request.params.license_id,
          ),
        ),
    );

    app.patch(
      "/v1/accounts/:id/licenses/:license_id",
      {
        schema: {
          tags: ["operator"],
          summary: "End a license at ends_at (null: no end)",
          params: AccountItem("license_id"),
          body: EndsAt,
        },
      },
      async (request) =>
        licenseJson(
          await services.operator.endLicense(
            principalOf(request),
            request.params.id,
            request.params.license_id,
            request.body,
          ),
        ),
    );
  };
}
