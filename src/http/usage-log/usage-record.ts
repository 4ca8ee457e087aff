import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { UsageEvent } from "../../query/usage-log-query.ts";
import { dec, type JsonDecimal } from "../json.ts";

/** An exact decimal written as a JSON number. */
const ExactNumber = Type.Unsafe<JsonDecimal>({ type: "number" });

/** The seed's usage record, field for field. */
export const UsageRecord = Type.Object({
  usage_id: Type.String(),
  user_id: Type.Union([Type.String(), Type.Null()]),
  api_name: Type.String(),
  endpoint: Type.String(),
  units_used: ExactNumber,
  cost_usd: ExactNumber,
  api_key_used: Type.Union([Type.String(), Type.Null()]),
  status_active: Type.Boolean(),
  created_at: Type.String({ description: "ISO 8601, UTC" }),
});

/**
 * Any usage event as a usage-log record: events from `POST /v1/events` and the license report
 * carry no api name or endpoint of their own, so they show their model and the route they came in by.
 */
export function usageRecordJson(e: UsageEvent) {
  return {
    usage_id: e.usageId,
    user_id: e.userId,
    api_name: e.apiName ?? e.modelId,
    endpoint: e.endpoint ?? "/v1/events",
    units_used: dec(e.quantity),
    cost_usd: dec(e.cost),
    api_key_used: e.apiKeyUsed,
    status_active: e.statusActive,
    created_at: formatUtc(e.ts),
  };
}
