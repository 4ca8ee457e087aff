import type { Generated } from "kysely";

/**
 * The tables as Kysely sees them, for the shared statements. int64 columns read back as number,
 * bigint (SQLite with safe integers) or string (pg); rows.ts converts every one of them.
 */
type Int = number | bigint | string;
type IntOrNull = Int | null;

export interface Tables {
  meta: { key: string; value: string };
  accounts: {
    id: string;
    name: string;
    is_enabled: Int;
    plan_id: string | null;
    created_at: Int;
    billing_timezone: string;
    billing_mode: string;
    budget_nano?: IntOrNull;
    budget_atto?: IntOrNull;
    budget_mode?: string | null;
  };
  users: {
    id: string;
    account_id: string;
    username: string;
    role: string;
    node_id: string | null;
    created_at: Int;
  };
  api_keys: {
    id: string;
    user_id: string | null;
    account_id: string | null;
    is_root: Int;
    label: string;
    prefix: string;
    hash: string;
    created_at: Int;
    last_used_at: IntOrNull;
    revoked_at: IntOrNull;
    previous_hash: string | null;
    previous_expires_at: IntOrNull;
  };
  models: {
    id: string;
    unit: string;
    kind: string;
    reporting_enabled: Int;
    created_at: Int;
    updated_at: Int;
    upstream_id: string | null;
    upstream_model: string | null;
  };
  upstreams: { id: string; base_url: string; api_key_env: string | null; timeout_ms: Int; created_at: Int };
  model_prices: {
    model_id: string;
    effective_from: Int;
    unit_price: Int;
    currency: string;
    meters: string | null;
  };
  licenses: {
    id: string;
    account_id: string;
    model_id: string;
    starts_at: Int;
    ends_at: IntOrNull;
    created_at: Int;
  };
  plans: {
    id: string;
    requests_per_minute: IntOrNull;
    requests_per_day: IntOrNull;
    validity_days: Int;
    model_whitelist: string | null;
    model_blacklist: string | null;
    included: string;
    created_at: Int;
    updated_at: Int;
    billing: string | null;
  };
  subscriptions: {
    id: string;
    account_id: string;
    plan_id: string;
    activated_at: Int;
    ends_at: IntOrNull;
    created_at: Int;
  };
  payments: {
    id: string;
    account_id: string;
    amount_nano: Int;
    amount_atto: Int;
    paid_at: Int;
    reference: string | null;
    created_at: Int;
    refund_of: string | null;
  };
  usage_events: {
    seq: Int;
    usage_id: string;
    account_id: string;
    event_id: string;
    ts: Int;
    user_id: string | null;
    key_id: string | null;
    model_id: string;
    api_name: string | null;
    endpoint: string | null;
    kind: string;
    unit: string;
    quantity: Int;
    unit_price: Int;
    cost_nano: Int;
    cost_atto: Int;
    currency: string;
    tokens_prompt: Int;
    tokens_completion: Int;
    status_active: Int;
    metadata: string | null;
    api_key_used: string | null;
    created_at: Int;
    updated_at: Int;
    deleted_at: IntOrNull;
    meters: string | null;
  };
  /** PostgreSQL only (docs/decisions/0020): each event's id, claimed once, and where its row is */
  event_ids: {
    account_id: string;
    event_id: string;
    usage_id: string;
    ts: Int;
  };
  usage_rollups: {
    account_id: string;
    family: Int;
    level: Int;
    bucket_start: Int;
    series_id: Int;
    requests: Int;
    quantity: Int;
    cost_nano: Int;
    cost_atto: Int;
    tokens_prompt: Int;
    tokens_completion: Int;
  };
  rollup_series: {
    id: Int;
    account_id: string;
    family: Int;
    model_id: string;
    unit: string;
    unit_price: Int;
    currency: string;
    kind: string;
    key_id: string;
    user_id: string;
  };
  audit_log: {
    id: string;
    account_id: string;
    usage_id: string;
    action: string;
    actor_key_id: string | null;
    actor_user_id: string | null;
    at: Int;
    before: string | null;
    after: string | null;
    resource_type: string;
    resource_id: string | null;
  };
  invoices: {
    id: string;
    account_id: string;
    period: string;
    period_start: Int;
    period_end: Int;
    timezone: string;
    status: string;
    number: string | null;
    currency: string;
    document: string;
    pdf: string;
    coverage: string;
    issued_at: Int;
  };
  invoice_numbers: { year: Int; last: Int };
  webhook_endpoints: {
    id: string;
    account_id: string | null;
    url: string;
    events: string;
    secret: string;
    previous_secret: string | null;
    previous_secret_expires_at: IntOrNull;
    disabled_at: IntOrNull;
    disabled_reason: string | null;
    failing_since: IntOrNull;
    created_at: Int;
  };
  webhook_messages: {
    id: string;
    endpoint_id: string;
    account_id: string | null;
    type: string;
    body: string;
    created_at: Int;
    status: string;
    next_attempt_at: Int;
    schedule_step: Generated<Int>;
    attempt_count: Generated<Int>;
    lease_token: string | null;
    lease_until: IntOrNull;
    last_attempt_at: IntOrNull;
  };
  webhook_attempts: {
    id: Generated<Int>;
    message_id: string;
    endpoint_id: string;
    attempt_number: Int;
    attempted_at: Int;
    status_code: IntOrNull;
    latency_ms: Int;
    response_excerpt: string;
    error: string | null;
    succeeded: Int;
  };
  alert_rules: {
    id: string;
    account_id: string;
    metric: string;
    model_id: string | null;
    period: string;
    thresholds: string;
    basis: string;
    value: string | null;
    created_at: Int;
  };
  alert_firings: {
    rule_id: string;
    period_start: Int;
    kind: string;
    threshold: string;
    fired_at: Int;
    value: string;
    limit: string;
    forecast_at: IntOrNull;
  };
  dashboard_sessions: {
    token_hash: string;
    key_id: string | null;
    is_root: Int;
    account_id: string | null;
    user_id: string | null;
    created_at: Int;
    expires_at: Int;
  };
  portal_links: {
    link_hash: string;
    account_id: string;
    user_id: string | null;
    session_ttl_ms: Int;
    created_at: Int;
    expires_at: Int;
    used_at: IntOrNull;
  };
}
