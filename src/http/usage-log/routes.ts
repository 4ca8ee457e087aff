import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from "fastify";
import { principalFromSession } from "../../dashboard/session-auth.ts";
import { DomainError } from "../../domain/errors.ts";
import { requireUsageLogAdmin } from "../../ingest/usage-log-service.ts";
import type { Services } from "../../services.ts";
import { authenticate, presentedSecret } from "../auth.ts";
import { sendFastApiError, sendFastApiNotFound } from "../fastapi-errors.ts";
import { UsageRecord, usageRecordJson } from "./usage-record.ts";

const DecimalValue = Type.Unsafe<number | string>({
  type: ["number", "string"],
  description: "Exact non-negative decimal, as a JSON number or a decimal string",
});
const Detail = Type.Object({ detail: Type.Unknown() });
const errors = { 401: Detail, 403: Detail, 404: Detail, 422: Detail };
const TAGS = ["usage log"];

const Paging = {
  skip: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
};
const UsageId = Type.Object({ usage_id: Type.String({ minLength: 1, maxLength: 200 }) });

const CreateBody = Type.Object(
  {
    api_name: Type.String({ minLength: 1, maxLength: 200 }),
    endpoint: Type.String({ minLength: 1, maxLength: 500 }),
    units_used: DecimalValue,
    cost_usd: DecimalValue,
    // one JSON-schema type list, not anyOf, so a wrong type is reported once
    api_key_used: Type.Optional(Type.Unsafe<string | null>({ type: ["string", "null"], maxLength: 512 })),
  },
  { additionalProperties: false },
);
const UpdateBody = Type.Object(
  {
    units_used: Type.Optional(DecimalValue),
    cost_usd: Type.Optional(DecimalValue),
    status_active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

/** `Idempotency-Key` becomes part of an event id (at most 200 characters with its namespace). */
function idempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers["idempotency-key"];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length < 1 || value.length > 190) {
    throw DomainError.validation(["header", "idempotency-key"], "must be 1 to 190 characters", "string_type");
  }
  return value;
}

/** The usage log (seed 001) under `/usage`: thin translation over services.usageLog and usageLogQuery. */
export function usageLogRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.setErrorHandler(sendFastApiError);
    app.setNotFoundHandler(sendFastApiNotFound);

    app.addHook("onRequest", async (request) => {
      // unknown routes answer 404 whoever asks
      if (request.is404) return;
      // dashboard (issue 18): a session cookie stands in for the key (src/dashboard/session-auth.ts)
      if (!presentedSecret(request) && !(await principalFromSession(request))) {
        throw new DomainError("UNAUTHORIZED", "Not authenticated");
      }
      await authenticate(request, services);
    });

    // `/usage` is documented; `/usage/` answers the same
    const atRoot = (
      method: "GET" | "POST",
      options: { schema: FastifySchema },
      handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
    ) => {
      app.route({ method, url: "", ...options, handler });
      app.route({
        method,
        url: "/",
        prefixTrailingSlash: "slash",
        schema: { ...options.schema, hide: true },
        handler,
      });
    };

    atRoot(
      "POST",
      {
        schema: {
          tags: TAGS,
          summary: "Log usage manually; the record belongs to the key's user",
          description:
            "An `Idempotency-Key` header makes a retry count once. `api_key_used` equal to a live key's " +
            "secret is stored masked.",
          body: CreateBody,
          response: { 201: UsageRecord, ...errors },
        },
      },
      async (request, reply) => {
        const body = request.body as typeof CreateBody.static;
        const record = await services.usageLog.createRecord(request.principal!, {
          ...body,
          idempotencyKey: idempotencyKey(request),
        });
        return reply.status(201).send(usageRecordJson(record));
      },
    );

    atRoot(
      "GET",
      {
        schema: {
          tags: TAGS,
          summary: "Usage records, newest first: an admin's whole account, a member's own",
          querystring: Type.Object({
            ...Paging,
            account_id: Type.Optional(Type.String({ minLength: 1, description: "root key only" })),
          }),
          response: { 200: Type.Array(UsageRecord), ...errors },
        },
      },
      async (request) => {
        const q = request.query as { skip: number; limit: number; account_id?: string };
        const records = await services.usageLogQuery.listRecords(request.principal!, {
          skip: q.skip,
          limit: q.limit,
          accountId: q.account_id,
        });
        return records.map(usageRecordJson);
      },
    );

    app.get(
      "/user/:user_id",
      {
        schema: {
          tags: TAGS,
          summary: "A user's usage records, newest first (an admin of the account, or the user)",
          params: Type.Object({ user_id: Type.String({ minLength: 1, maxLength: 200 }) }),
          querystring: Type.Object(Paging),
          response: { 200: Type.Array(UsageRecord), ...errors },
        },
      },
      async (request) => {
        const { user_id } = request.params as { user_id: string };
        const page = request.query as { skip: number; limit: number };
        const records = await services.usageLogQuery.listUserRecords(request.principal!, user_id, page);
        return records.map(usageRecordJson);
      },
    );

    app.get(
      "/:usage_id",
      {
        schema: {
          tags: TAGS,
          summary: "One usage record (its owner or an admin)",
          params: UsageId,
          response: { 200: UsageRecord, ...errors },
        },
      },
      async (request) => {
        const { usage_id } = request.params as { usage_id: string };
        return usageRecordJson(await services.usageLogQuery.getRecord(request.principal!, usage_id));
      },
    );

    app.put(
      "/:usage_id",
      {
        schema: {
          tags: TAGS,
          summary: "Correct a usage record (admin): units_used, cost_usd, status_active",
          description: "The correction moves every total and leaves an audit entry (`GET /v1/audit`).",
          params: UsageId,
          body: UpdateBody,
          response: { 200: UsageRecord, ...errors },
        },
        // a member is refused before its body is looked at
        preValidation: async (request) => requireUsageLogAdmin(request.principal!),
      },
      async (request) => {
        const { usage_id } = request.params as { usage_id: string };
        const record = await services.usageLog.updateRecord(
          request.principal!,
          usage_id,
          request.body as typeof UpdateBody.static,
        );
        return usageRecordJson(record);
      },
    );

    app.delete(
      "/:usage_id",
      {
        schema: {
          tags: TAGS,
          summary: "Delete a usage record (admin); it leaves every total and an audit entry remains",
          params: UsageId,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        const { usage_id } = request.params as { usage_id: string };
        await services.usageLog.deleteRecord(request.principal!, usage_id);
        return reply.status(204).send();
      },
    );
  };
}
