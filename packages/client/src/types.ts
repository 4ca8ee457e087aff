/** Wire types of the routes the client speaks (DESIGN.md, seeds 001, 003, 004). */

/** An exact decimal: a JSON number, or a decimal string (sent as is, so nothing is rounded). */
export type DecimalInput = number | string;

/** One usage event for `POST /v1/events`; `id` and `timestamp` are filled in when recorded. */
export interface UsageEventInput {
  /** idempotency key, unique per account; default: a UUID v7 fixed when the event is recorded */
  id?: string;
  /** event time (ISO 8601 with offset, or epoch ms); default: the moment `record()` was called */
  timestamp?: string | number;
  model_id: string;
  quantity: DecimalInput;
  /** root key only: the account written to */
  account_id?: string;
  user_id?: string;
  key_id?: string;
  api_name?: string;
  endpoint?: string;
  kind?: "chat" | "embedding" | "image" | "video" | "audio" | "tts" | "other";
  unit?: string;
  unit_price?: DecimalInput;
  cost?: DecimalInput;
  currency?: string;
  tokens?: { prompt?: number; completion?: number };
  metadata?: Record<string, unknown>;
  admitted?: boolean;
}

/** An event as queued and sent: its id and time are fixed. */
export type QueuedEvent = UsageEventInput & { id: string; timestamp: string | number };

/** `POST /v1/events` answer (200, or 422 when nothing was accepted). */
export interface EventsBatchAnswer {
  accepted: number;
  duplicates: number;
  rejected: { index: number; error: string; field?: string }[];
  results?: { index: number; id: string; usage_id: string; status: "inserted" | "duplicate" }[];
}

/**
 * What happened to one recorded event. `unsent`: every attempt failed (network, 5xx, 429, or
 * a refused key); the event stays queued and is retried, or spooled at shutdown.
 */
export type EventOutcome =
  | { id: string; status: "accepted"; usageId?: string }
  | { id: string; status: "duplicate"; usageId?: string }
  | { id: string; status: "rejected"; error: string; field?: string }
  | { id: string; status: "unsent"; error: string };

/** Key usage statistics (`GET /v1/usage`, seed 003); `-999999` and `"unlimited"` mean unlimited. */
export interface KeyStatistics {
  account_information?: {
    username: string;
    current_plan: string;
    is_enabled: boolean;
    api_key: string;
    node_id: string | null;
  };
  subscription_details?: {
    creation_date: string;
    total_validity_days: number;
    effective_days_remaining: number;
    plan_activation_history: { plan_id: string; activated_at: string }[];
  };
  billing_information?: {
    payment_transactions: number[];
    total_amount_paid_usd: number;
    cumulative_cost_usd: number;
  };
  rate_limits_and_restrictions?: {
    requests_per_minute_limit: number;
    requests_per_minute_remaining: number | string;
    requests_per_day_limit: number;
    requests_per_day_remaining: number | string;
    model_whitelist: { models: string[] } | string;
    model_blacklist: { models: string[] } | string;
    [field: string]: unknown;
  };
  usage_statistics?: {
    overall_request_counts: Record<string, number>;
    token_consumption: Record<string, number>;
    image_consumption: Record<string, number>;
  };
  model_specific_usage?: Record<
    string,
    {
      requests: number;
      quantity: number;
      unit: string;
      tokens: number;
      cost_usd: number;
      [f: string]: unknown;
    }
  >;
}

export type KeyStatisticsSection = keyof KeyStatistics;

/** Query of workspace usage (`GET /v1/models/usage`, seed 004). */
export interface WorkspaceUsageQuery {
  start?: string;
  end?: string;
  timezone?: string;
  timeframe?: "minute" | "hour" | "day" | "week" | "month";
  bound_to_timeframe?: boolean;
  endpoint_id?: string[];
  expand?: ("time_series" | "summary" | "auth_method")[];
  limit?: number;
  cursor?: string;
}

export interface WorkspaceUsageLine {
  endpoint_id: string;
  unit: string;
  quantity: number;
  unit_price: number;
  cost: number;
  currency: string;
  auth_method?: string;
}

export interface WorkspaceUsage {
  next_cursor: string | null;
  has_more: boolean;
  time_series?: { bucket: string; results: WorkspaceUsageLine[] }[];
  summary?: WorkspaceUsageLine[];
}

/** One usage-log record (`GET /usage`, seed 001). */
export interface UsageRecord {
  usage_id: string;
  user_id: string | null;
  api_name: string;
  endpoint: string;
  units_used: number;
  cost_usd: number;
  api_key_used: string | null;
  status_active: boolean;
  created_at: string;
}

/** One tier of an invoice line: the units that fell in it and what they cost. */
export interface InvoiceTier {
  from: number;
  up_to: number | null;
  quantity: number;
  unit_price: number;
  flat_fee: number;
  amount: number;
}

/**
 * An invoice (DESIGN.md "Billing"). Amounts arrive as exact JSON numbers; a JavaScript number
 * keeps up to 15 significant digits exactly, so for arithmetic on many lines read `invoiceCsv`.
 */
export interface Invoice {
  id: string;
  number: string | null;
  account_id: string;
  period: { label: string; start: string; end: string; timezone: string };
  status: "draft" | "finalized" | "no_charge" | "void";
  currency: string;
  lines: {
    model_id: string | null;
    meter: string | null;
    description: string;
    pricing: string;
    quantity: number;
    included_quantity: number;
    billable_quantity: number;
    tiers: InvoiceTier[];
    amount: number;
    events: number;
    rollup_query: string | null;
  }[];
  adjustments: {
    period: string;
    model_id: string | null;
    meter: string | null;
    quantity: number;
    amount: number;
    description: string;
  }[];
  subtotal: number;
  total: number;
  issued_at: string | null;
}
