import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest, FastifySchemaCompiler } from "fastify";
import type { WorkspaceUsageLine } from "../../query/workspace-usage.ts";
import type { RawQuery } from "../../query/workspace-usage-request.ts";
import type { Services } from "../../services.ts";
import { principalOf, requireKey } from "../auth.ts";
import { dec } from "../json.ts";
import { sendFalError, sendFalNotFound } from "./errors.ts";
import { FalError, WorkspaceUsageQuery, WorkspaceUsageResponse } from "./schemas.ts";

const lineJson = (l: WorkspaceUsageLine) => ({
  endpoint_id: l.endpointId,
  unit: l.unit,
  quantity: dec(l.quantity),
  unit_price: dec(l.unitPrice),
  cost: dec(l.cost),
  currency: l.currency,
  ...(l.authMethod !== undefined ? { auth_method: l.authMethod } : {}),
});

/** The schema documents the parameters; the core reads them, so Fastify's validation is skipped. */
const documentOnly: FastifySchemaCompiler<unknown> = () => (value) => ({ value });

/**
 * The workspace usage API (seeds/004), mounted at `/v1/models/usage`: usage per time bucket in any
 * timezone, and in total, for an account admin's own account (or the root key's `account_id`).
 */
export function falRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.setErrorHandler((err, request, reply) => sendFalError(err, request, reply));
    app.setNotFoundHandler((request, reply) => sendFalNotFound(request, reply));
    app.addHook("onRequest", requireKey(services));

    const schema = {
      tags: ["workspace usage (seed 004)"],
      summary: "Usage per time bucket and in total, grouped by endpoint, unit, unit price and currency",
      description:
        "`Authorization: Key <admin key>` (Bearer and x-key also accepted). A member key is 403. The " +
        "operator's root key must name the account with `account_id`. Reading usage consumes no " +
        "request, but answers 429 while the account's plan window is used up. Errors are " +
        "`{error: {type, message, request_id}}`.",
      querystring: WorkspaceUsageQuery,
      response: {
        200: WorkspaceUsageResponse,
        400: FalError,
        401: FalError,
        403: FalError,
        404: FalError,
        429: FalError,
      },
    };
    const options = { validatorCompiler: documentOnly };
    // documentOnly leaves the query as sent: the core reads and checks every parameter
    const handler = async (request: FastifyRequest<{ Querystring: RawQuery }>) => {
      const r = await services.workspaceUsage.queryWorkspaceUsage(principalOf(request), request.query);
      // built a field at a time, not from spreads: see decision 0021, "Spreads"
      const out: Record<string, unknown> = {};
      if (r.timeSeries)
        out.time_series = r.timeSeries.map((b) => ({ bucket: b.bucket, results: b.results.map(lineJson) }));
      if (r.summary) out.summary = r.summary.map(lineJson);
      out.next_cursor = r.nextCursor;
      out.has_more = r.hasMore;
      return out;
    };
    // `/v1/models/usage` is documented; `/v1/models/usage/` answers the same
    app.get("", { ...options, schema }, handler);
    app.get("/", { ...options, prefixTrailingSlash: "slash", schema: { ...schema, hide: true } }, handler);
  };
}
