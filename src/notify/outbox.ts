import type { DeliveryAttemptRecord } from "../store/notify-store.ts";
import type { EndpointSecrets } from "./signing.ts";

/**
 * The outbox as the delivery worker sees it. Messages are written by the store in the transaction
 * of the change that causes them (one row per subscribed endpoint, body already serialized, see
 * messages.ts), so a message exists exactly when its cause committed and survives restarts.
 *
 * Claiming is what makes several instances send a message once:
 *
 * - PostgreSQL: one statement takes due rows that nobody holds and stamps a lease on them;
 *   `FOR UPDATE SKIP LOCKED` makes concurrent claimers pass over each other's rows instead of
 *   waiting or taking the same ones:
 *
 *       UPDATE webhook_messages m SET lease_token = $token, lease_until = $now + $lease
 *       FROM webhook_endpoints e
 *       WHERE m.id IN (SELECT id FROM webhook_messages
 *                      WHERE status = 'pending' AND next_attempt_at <= $now
 *                        AND (lease_until IS NULL OR lease_until <= $now)
 *                      ORDER BY next_attempt_at LIMIT $n FOR UPDATE SKIP LOCKED)
 *         AND e.id = m.endpoint_id AND e.disabled_at IS NULL
 *       RETURNING m.*, e.url, e.secret..., e.failing_since
 *
 *   (the endpoint condition belongs in the subquery's join in the real query, so a disabled
 *   endpoint's rows are not even locked).
 * - SQLite: the same UPDATE ... RETURNING without SKIP LOCKED, in a `BEGIN IMMEDIATE` transaction:
 *   SQLite has one writer at a time, so two claims are serialized and the second sees the first's
 *   lease. One process normally runs one worker; the lease also covers two processes on one file.
 *
 * The lease (default 60 s, longer than the 15 s send timeout) is what a crash leaves behind: if an
 * instance dies mid-send, its rows become claimable again when the lease runs out, so nothing is
 * lost. Completion presents the lease token; a worker whose lease ran out and was re-claimed must
 * not overwrite the newer state. What no outbox can give is exactly-once over HTTP: a receiver
 * that got a request just before the sender died sees it again, with the same `webhook-id`,
 * which Standard Webhooks receivers use to deduplicate.
 */

export type MessageStatus = "pending" | "succeeded" | "failed";

/** What a delivery needs of its endpoint, read with the claim. */
export interface EndpointTarget {
  id: string;
  url: string;
  secrets: EndpointSecrets;
  /** start of the current run of failed attempts (null after a success) */
  failingSince: number | null;
}

export interface ClaimedMessage {
  /** the message id, sent as `webhook-id` on every attempt */
  id: string;
  endpoint: EndpointTarget;
  /** the serialized body, signed and sent as is */
  body: Uint8Array;
  /** attempts made so far, over all rounds (numbers the next attempt) */
  attemptCount: number;
  /** failed attempts in the current schedule: indexes the next delay (retry-policy.ts) */
  scheduleStep: number;
  /** proves on completion that this claim still holds the message */
  leaseToken: string;
}

/** One attempt, for the endpoint's delivery log (as the store keeps it). */
export type AttemptRecord = DeliveryAttemptRecord;

export type MessageUpdate =
  | { status: "succeeded" }
  | { status: "pending"; nextAttemptAt: number; scheduleStep: number }
  | { status: "failed" };

export type EndpointUpdate =
  | { kind: "succeeded" }
  /** keeps the earliest failingSince: `failing_since = COALESCE(failing_since, at)` */
  | { kind: "failed"; at: number }
  | { kind: "disable"; at: number; reason: string };

export interface AttemptOutcome {
  attempt: AttemptRecord;
  message: MessageUpdate;
  endpoint: EndpointUpdate;
}

export interface RetryResult {
  messageId: string;
  status: MessageStatus;
  nextAttemptAt: number;
}

export interface Outbox {
  /**
   * Leases up to `limit` pending messages due at `now` whose endpoint is enabled, oldest due
   * first, until `now + leaseMs`. A message leased by someone else (lease not run out) is skipped.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedMessage[]>;
  /**
   * In one transaction: appends the attempt to the log; and, if `claim.leaseToken` still holds the
   * message, applies the message and endpoint updates and releases the lease (a disabled endpoint's
   * other pending messages stay pending until it is enabled again). Returns false when the lease
   * had been lost (only the attempt was recorded).
   */
  completeAttempt(claim: ClaimedMessage, outcome: AttemptOutcome): Promise<boolean>;
  /**
   * Manual retry: makes the message due at `now`. A failed or delivered message gets one more
   * attempt (scheduleStep set to the last step; if that fails it is `failed` again); a pending one
   * is only brought forward. Re-enables its endpoint (clearing disabled_at and failing_since): an
   * operator retrying says the receiver is back. Null when the message does not exist.
   */
  retryMessage(messageId: string, now: number): Promise<RetryResult | null>;
}
