import type { Dec } from "../domain/decimal.ts";
import type { Page, PageQuery } from "./store.ts";

/**
 * What the store keeps for webhooks and alerts (issue 17, docs/decisions/0014): endpoints, the
 * outbox and its delivery log, alert rules and their firings. Part of `Store`; kept apart so the
 * notify verbs read as one group.
 */

export interface WebhookEndpointRecord {
  id: string;
  /** null: a root endpoint, which hears every account */
  accountId: string | null;
  url: string;
  events: string[];
  /** sealed (notify/secret-box.ts); never a plain secret unless no TALLY_SECRETS_KEY is set */
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
  disabledAt: number | null;
  disabledReason: string | null;
  failingSince: number | null;
  createdAt: number;
}

/** An outbox row as written: one message to one endpoint. */
export interface NewOutboxMessage {
  /** the `webhook-id`; a row whose id exists already is not written again */
  id: string;
  endpointId: string;
  accountId: string | null;
  type: string;
  /** the exact JSON text that is signed and sent */
  body: string;
  createdAt: number;
}

export type OutboxStatus = "pending" | "succeeded" | "failed";

export interface OutboxMessageRecord extends NewOutboxMessage {
  status: OutboxStatus;
  nextAttemptAt: number;
  scheduleStep: number;
  attemptCount: number;
  lastAttemptAt: number | null;
  leaseToken: string | null;
}

export interface DeliveryAttemptRecord {
  messageId: string;
  endpointId: string;
  /** 1-based over the message's life */
  attemptNumber: number;
  attemptedAt: number;
  /** null when no response came (timeout, refused connection, address denied) */
  statusCode: number | null;
  latencyMs: number;
  /** the first 1 KiB of the response body, as text */
  responseExcerpt: string;
  /** why no usable response came ("timeout", the socket error), or null */
  error: string | null;
  succeeded: boolean;
}

/** What an attempt changes, applied only while the claim's lease holds. */
export interface DeliveryCompletion {
  messageId: string;
  endpointId: string;
  leaseToken: string;
  attempt: DeliveryAttemptRecord;
  message:
    | { status: "succeeded" | "failed" }
    | { status: "pending"; nextAttemptAt: number; scheduleStep: number };
  endpoint:
    | { kind: "succeeded" }
    | { kind: "failed"; at: number }
    | { kind: "disable"; at: number; reason: string };
}

export interface AlertRuleRecord {
  id: string;
  accountId: string;
  metric: string;
  modelId: string | null;
  period: string;
  thresholds: Dec[];
  basis: string;
  value: Dec | null;
  createdAt: number;
}

export interface AlertFiringRecord {
  ruleId: string;
  periodStart: number;
  kind: "crossed" | "forecast";
  threshold: Dec;
  firedAt: number;
  value: Dec;
  limit: Dec;
  forecastAt: number | null;
}

export interface NotifyStore {
  createWebhookEndpoint(e: WebhookEndpointRecord): Promise<void>;
  getWebhookEndpoint(id: string): Promise<WebhookEndpointRecord | null>;
  /** the enabled endpoints of the account and of the operator (no account); the operator's only for null */
  listWebhookEndpointsHearing(accountId: string | null): Promise<WebhookEndpointRecord[]>;
  /** one account's endpoints, or every endpoint when `accountId` is null, in creation order */
  listWebhookEndpointPage(accountId: string | null, q: PageQuery): Promise<Page<WebhookEndpointRecord>>;
  setWebhookSecrets(
    id: string,
    secret: string,
    previous: string | null,
    previousExpiresAt: number | null,
  ): Promise<void>;
  /** deletes the endpoint with its messages and their attempts; false when it did not exist */
  deleteWebhookEndpoint(id: string): Promise<boolean>;
  /** writes outbox rows on their own (a test message); rows whose id exists are skipped */
  enqueueMessages(messages: NewOutboxMessage[]): Promise<void>;
  /** leases due messages of enabled endpoints, oldest due first (see notify/outbox.ts) */
  claimDueMessages(
    now: number,
    limit: number,
    leaseMs: number,
    token: string,
  ): Promise<OutboxMessageRecord[]>;
  /** records the attempt; applies the rest only while the lease holds (false when it was lost) */
  completeDelivery(c: DeliveryCompletion): Promise<boolean>;
  /** due now; a finished message gets one more attempt (`lastStep`); re-enables its endpoint */
  retryDelivery(
    messageId: string,
    now: number,
    lastStep: number,
  ): Promise<{ id: string; status: OutboxStatus; nextAttemptAt: number } | null>;
  getOutboxMessage(id: string): Promise<OutboxMessageRecord | null>;
  /** an endpoint's messages newest first, before the cursor, with their attempts */
  listDeliveries(
    endpointId: string,
    q: { limit: number; before: { createdAt: number; id: string } | null },
  ): Promise<{ messages: OutboxMessageRecord[]; attempts: DeliveryAttemptRecord[] }>;
  attemptsOf(messageId: string): Promise<DeliveryAttemptRecord[]>;

  createAlertRule(r: AlertRuleRecord): Promise<void>;
  getAlertRule(id: string): Promise<AlertRuleRecord | null>;
  listAlertRules(accountId: string): Promise<AlertRuleRecord[]>;
  deleteAlertRule(id: string): Promise<boolean>;
  /** the accounts that have at least one rule */
  listAlertAccounts(): Promise<string[]>;
  listAlertFirings(ruleId: string, periodStart: number): Promise<AlertFiringRecord[]>;
  /**
   * Records a firing and its outbox rows in one transaction. A firing recorded already (another
   * instance, a moment earlier) is not recorded again, and its rows, whose ids are derived from
   * the firing, are not written twice.
   */
  recordAlertFiring(f: AlertFiringRecord, messages: NewOutboxMessage[]): Promise<void>;
}
