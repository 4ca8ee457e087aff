import { randomUUID } from "node:crypto";
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedMessage,
  MessageStatus,
  Outbox,
  RetryResult,
} from "../../src/notify/outbox.ts";
import { LAST_STEP } from "../../src/notify/retry-policy.ts";
import type { EndpointSecrets } from "../../src/notify/signing.ts";

/**
 * TEST DOUBLE. An Outbox in memory, for the delivery worker's tests only: it persists nothing, so
 * it has none of the outbox's point (a message written with its cause, surviving a restart). The
 * SQLite and PostgreSQL outboxes implement the same interface over tables; this one follows the
 * same rules (leases, tokens, disabled endpoints skipped) so the worker is tested against them.
 */

export interface MemoryEndpoint {
  id: string;
  url: string;
  secrets: EndpointSecrets;
  disabledAt: number | null;
  disabledReason: string | null;
  failingSince: number | null;
}

export interface MemoryMessage {
  id: string;
  endpointId: string;
  body: Uint8Array;
  status: MessageStatus;
  nextAttemptAt: number;
  attemptCount: number;
  scheduleStep: number;
  leaseToken: string | null;
  leaseUntil: number | null;
}

export class MemoryOutbox implements Outbox {
  readonly endpoints = new Map<string, MemoryEndpoint>();
  readonly messages = new Map<string, MemoryMessage>();
  readonly attempts: AttemptRecord[] = [];

  addEndpoint(
    endpoint: Omit<MemoryEndpoint, "disabledAt" | "disabledReason" | "failingSince">,
  ): MemoryEndpoint {
    const row = { ...endpoint, disabledAt: null, disabledReason: null, failingSince: null };
    this.endpoints.set(row.id, row);
    return row;
  }

  enqueue(message: { id: string; endpointId: string; body: Uint8Array }, now: number): void {
    this.messages.set(message.id, {
      ...message,
      status: "pending",
      nextAttemptAt: now,
      attemptCount: 0,
      scheduleStep: 0,
      leaseToken: null,
      leaseUntil: null,
    });
  }

  attemptsOf(messageId: string): AttemptRecord[] {
    return this.attempts.filter((a) => a.messageId === messageId);
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedMessage[]> {
    const due = [...this.messages.values()]
      .filter(
        (m) =>
          m.status === "pending" &&
          m.nextAttemptAt <= now &&
          (m.leaseUntil === null || m.leaseUntil <= now) &&
          this.endpoints.get(m.endpointId)?.disabledAt === null,
      )
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
      .slice(0, limit);
    return due.map((m) => {
      m.leaseToken = randomUUID();
      m.leaseUntil = now + leaseMs;
      const e = this.endpoints.get(m.endpointId)!;
      return {
        id: m.id,
        endpoint: { id: e.id, url: e.url, secrets: { ...e.secrets }, failingSince: e.failingSince },
        body: m.body,
        attemptCount: m.attemptCount,
        scheduleStep: m.scheduleStep,
        leaseToken: m.leaseToken,
      };
    });
  }

  async completeAttempt(claim: ClaimedMessage, outcome: AttemptOutcome): Promise<boolean> {
    this.attempts.push(outcome.attempt);
    const m = this.messages.get(claim.id);
    if (!m || m.leaseToken !== claim.leaseToken) return false;
    m.attemptCount = Math.max(m.attemptCount, outcome.attempt.attemptNumber);
    m.leaseToken = null;
    m.leaseUntil = null;
    m.status = outcome.message.status;
    if (outcome.message.status === "pending") {
      m.nextAttemptAt = outcome.message.nextAttemptAt;
      m.scheduleStep = outcome.message.scheduleStep;
    }
    const e = this.endpoints.get(m.endpointId)!;
    const update = outcome.endpoint;
    if (update.kind === "succeeded") e.failingSince = null;
    else {
      e.failingSince ??= update.at;
      if (update.kind === "disable") {
        e.disabledAt = update.at;
        e.disabledReason = update.reason;
      }
    }
    return true;
  }

  async retryMessage(messageId: string, now: number): Promise<RetryResult | null> {
    const m = this.messages.get(messageId);
    if (!m) return null;
    if (m.status !== "pending") m.scheduleStep = LAST_STEP;
    m.status = "pending";
    m.nextAttemptAt = now;
    const e = this.endpoints.get(m.endpointId)!;
    e.disabledAt = null;
    e.disabledReason = null;
    e.failingSince = null;
    return { messageId: m.id, status: m.status, nextAttemptAt: m.nextAttemptAt };
  }
}
