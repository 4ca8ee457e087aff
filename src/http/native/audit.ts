import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { parseDec } from "../../domain/decimal.ts";
import { formatUtc } from "../../domain/time.ts";
import type { AuditEntry } from "../../query/usage-log-query.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { ListQuery, listJson } from "./schemas.ts";

const DECIMAL_FIELDS = new Set(["quantity", "unit_price", "cost"]);

/** An audit snapshot as JSON: exact decimals as numbers, the event time as ISO 8601. */
function snapshotJson(s: Record<string, unknown> | null) {
  if (s === null) return null;
  return Object.fromEntries(
    Object.entries(s).map(([k, v]) => {
      if (DECIMAL_FIELDS.has(k) && typeof v === "string") return [k, dec(parseDec(v))];
      if (k === "timestamp" && typeof v === "number") return [k, formatUtc(v)];
      return [k, v];
    }),
  );
}

const auditJson = (a: AuditEntry) => ({
  id: a.id,
  account_id: a.accountId,
  resource_type: a.resourceType ?? "usage_record",
  resource_id: a.resourceId ?? a.usageId,
  usage_id: a.usageId === "" ? null : a.usageId,
  action: a.action,
  actor_key_id: a.actorKeyId,
  actor_user_id: a.actorUserId,
  at: formatUtc(a.at),
  before: snapshotJson(a.before),
  after: snapshotJson(a.after),
});

/**
 * `GET /v1/audit`: who changed what (usage records, operator resources), when, before and after,
 * newest first, paged like every list (`{data, has_more}`, `starting_after` the last id of the
 * previous page). Admins read their own account; the root key names `account_id`. Registered inside the native plugin,
 * so it shares its authentication hook and error format.
 */
export function auditRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/audit",
      {
        schema: {
          tags: ["audit"],
          summary:
            "Audit trail of every change (usage-record corrections, operator changes), newest first, a page at a time",
          querystring: Type.Object({
            usage_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            resource_type: Type.Optional(
              Type.Union(
                ["usage_record", "account", "user", "key", "license", "subscription", "payment"].map((t) =>
                  Type.Literal(t),
                ),
              ),
            ),
            resource_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            account_id: Type.Optional(
              Type.String({ minLength: 1, description: "required with the root key" }),
            ),
            ...ListQuery,
          }),
        },
      },
      async (request) => {
        const q = request.query;
        const entries = await services.usageLogQuery.listAudit(principalOf(request), {
          accountId: q.account_id,
          usageId: q.usage_id,
          resourceType: q.resource_type,
          resourceId: q.resource_id,
          limit: q.limit,
          startingAfter: q.starting_after,
        });
        return listJson(entries, auditJson);
      },
    );
  };
}
