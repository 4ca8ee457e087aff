import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type {
  FastifyRequest,
  FastifySchema,
  RawServerDefault,
  RouteGenericInterface,
  RouteHandlerMethod,
} from "fastify";
import { MAX_USAGE_LOG_IDEMPOTENCY_KEY_LENGTH } from "../../domain/constants.ts";
import { DomainError } from "../../domain/errors.ts";
import { requireUsageLogAdmin } from "../../ingest/usage-log-service.ts";
import type { Services } from "../../services.ts";
import { principalOf, requireKey } from "../auth.ts";
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
const ListQuery = Type.Object({
  ...Paging,
  account_id: Type.Optional(Type.String({ minLength: 1, description: "root key only" })),
});
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
  const max = MAX_USAGE_LOG_IDEMPOTENCY_KEY_LENGTH;
  if (typeof value !== "string" || value.length < 1 || value.length > max) {
    throw DomainError.validation(
      ["header", "idempotency-key"],
      `must be 1 to ${max} characters`,
      "string_type",
    );
  }
  return value;
}

/** The usage log (seed 001) under `/usage`: thin translation over services.usageLog and usageLogQuery. */
export function usageLogRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.setErrorHandler(sendFastApiError);
    app.setNotFoundHandler(sendFastApiNotFound);

    // FastAPI words a missing key "Not authenticated"
    app.addHook("onRequest", requireKey(services, { missingKey: "Not authenticated" }));

    // `/usage` is documented; `/usage/` answers the same
    const atRoot = <Route extends RouteGenericInterface>(
      method: "GET" | "POST",
      options: { schema: FastifySchema },
      handler: RouteHandlerMethod<RawServerDefault, IncomingMessage, ServerResponse, Route>,
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

    atRoot<{ Body: typeof CreateBody.static }>(
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
        const record = await services.usageLog.createRecord(principalOf(request), {
          ...request.body,
          idempotencyKey: idempotencyKey(request),
        });
        return reply.status(201).send(usageRecordJson(record));
      },
    );

    atRoot<{ Querystring: typeof ListQuery.static }>(
      "GET",
      {
        schema: {
          tags: TAGS,
          summary: "Usage records, newest first: an admin's whole account, a member's own",
          querystring: ListQuery,
          response: { 200: Type.Array(UsageRecord), ...errors },
        },
      },
      async (request) => {
        const q = request.query;
        const records = await services.usageLogQuery.listRecords(principalOf(request), {
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
        const records = await services.usageLogQuery.listUserRecords(
          principalOf(request),
          request.params.user_id,
          request.query,
        );
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
        const record = await services.usageLogQuery.getRecord(principalOf(request), request.params.usage_id);
        return usageRecordJson(record);
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
        preValidation: async (request) => requireUsageLogAdmin(principalOf(request)),
      },
      async (request) => {
        const record = await services.usageLog.updateRecord(
          principalOf(request),
          request.params.usage_id,
          request.body,
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
        await services.usageLog.deleteRecord(principalOf(request), request.params.usage_id);
        return reply.status(204).send(null);
      },
    );
  };
}
