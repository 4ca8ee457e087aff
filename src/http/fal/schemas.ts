import { DEFAULT_LIMIT, MAX_BUCKETS, MAX_LIMIT } from "../../query/workspace-usage-request.ts";

/**
 * OpenAPI description of `GET /v1/models/usage` as in seeds/004. It documents the route only: the
 * parameters are read by the core (query/workspace-usage-request.ts), which owns their rules.
 */

const instant = {
  anyOf: [
    { type: "string", format: "date-time" },
    { type: "string", pattern: "^\\d{4}-\\d{2}-\\d{2}$" },
  ],
};
const stringOrList = { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] };

export const WorkspaceUsageQuery = {
  type: "object",
  properties: {
    limit: {
      type: "integer",
      minimum: 1,
      maximum: MAX_LIMIT,
      default: DEFAULT_LIMIT,
      description: `Buckets per page (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}; more is a 400, not clamped).`,
    },
    cursor: {
      type: "string",
      description:
        "Pagination cursor from the previous response: the base64 of the page number (`Mg==` is page 2).",
    },
    start: {
      ...instant,
      description:
        "Start, inclusive (e.g. '2025-01-01T00:00:00Z' or '2025-01-01'). Defaults to 24 hours ago. A date is " +
        "midnight in `timezone`; a date-time without an offset is read in `timezone`.",
    },
    end: {
      ...instant,
      description: "End, exclusive (e.g. '2025-02-01'). Defaults to now. Read like `start`.",
    },
    timezone: {
      type: "string",
      default: "UTC",
      description: "IANA timezone for bucket boundaries and labels (e.g. America/New_York, Asia/Kolkata).",
    },
    timeframe: {
      type: "string",
      enum: ["minute", "hour", "day", "week", "month"],
      description:
        "Bucket size; auto-detected from the range when absent: minute (<2h), hour (<2d), day (<64d), week " +
        `(<183d), month (>=183d). Weeks start on Monday. At most ${MAX_BUCKETS} buckets per query.`,
    },
    bound_to_timeframe: {
      type: "string",
      enum: ["true", "false"],
      default: "true",
      description:
        "true: start is floored and end ceiled to the timeframe's boundaries in `timezone`. false: exactly " +
        "[start, end), the first bucket labelled with start; buckets still break at boundaries.",
    },
    endpoint_id: {
      ...stringOrList,
      description: "Filter by 1 to 50 endpoint (model) ids: comma-separated or repeated.",
    },
    expand: {
      ...stringOrList,
      default: ["time_series"],
      description:
        "time_series, summary, auth_method (comma-separated or repeated); at least one of time_series or summary.",
    },
    account_id: {
      type: "string",
      description:
        "The account to report. Required with the operator (root) key; an admin key reads its own account.",
    },
  },
};

const line = {
  type: "object",
  properties: {
    endpoint_id: { type: "string" },
    unit: { type: "string" },
    quantity: { type: "number", minimum: 0 },
    unit_price: { type: "number", minimum: 0 },
    cost: { type: "number", minimum: 0 },
    currency: { type: "string", minLength: 3, maxLength: 3 },
    auth_method: { type: "string", description: "The key's label; only with expand=auth_method." },
  },
  required: ["endpoint_id", "unit", "quantity", "unit_price", "cost", "currency"],
};

export const WorkspaceUsageResponse = {
  type: "object",
  properties: {
    next_cursor: { type: ["string", "null"] },
    has_more: { type: "boolean" },
    time_series: {
      type: "array",
      items: {
        type: "object",
        properties: {
          bucket: { type: "string", description: "Bucket start in `timezone` with its offset" },
          results: { type: "array", items: line },
        },
        required: ["bucket", "results"],
      },
    },
    summary: { type: "array", items: line },
  },
  required: ["next_cursor", "has_more"],
};

export const FalError = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        type: {
          type: "string",
          enum: [
            "authorization_error",
            "validation_error",
            "not_found",
            "rate_limited",
            "server_error",
            "not_implemented",
          ],
        },
        message: { type: "string" },
        docs_url: { type: "string", format: "uri" },
        request_id: { type: "string" },
      },
      required: ["type", "message"],
    },
  },
  required: ["error"],
};
