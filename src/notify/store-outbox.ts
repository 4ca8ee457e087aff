import { randomUUID } from "node:crypto";
import type { NotifyStore, WebhookEndpointRecord } from "../store/notify-store.ts";
import type { AttemptOutcome, ClaimedMessage, Outbox, RetryResult } from "./outbox.ts";
import { LAST_STEP } from "./retry-policy.ts";
import { openSecret } from "./secret-box.ts";
import type { EndpointSecrets } from "./signing.ts";

/**
 * The outbox over the store's tables (both dialects): claims lease rows with a token per claim,
 * completions apply only while that token holds (see outbox.ts for why). The endpoint's signing
 * secrets are opened here, at send time, with TALLY_SECRETS_KEY.
 */
export class StoreOutbox implements Outbox {
  constructor(
    private readonly store: NotifyStore,
    private readonly secretsKey: Buffer | null,
  ) {}

  async claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedMessage[]> {
    const rows = await this.store.claimDueMessages(now, limit, leaseMs, randomUUID());
    if (rows.length === 0) return [];
    const endpoints = new Map<string, WebhookEndpointRecord | null>();
    for (const r of rows) {
      if (!endpoints.has(r.endpointId))
        endpoints.set(r.endpointId, await this.store.getWebhookEndpoint(r.endpointId));
    }
    const claims: ClaimedMessage[] = [];
    for (const r of rows) {
      const e = endpoints.get(r.endpointId);
      // deleted between the claim and this read: its messages went with it
      if (!e) continue;
      claims.push({
        id: r.id,
        endpoint: { id: e.id, url: e.url, secrets: this.secretsOf(e), failingSince: e.failingSince },
        body: new TextEncoder().encode(r.body),
        attemptCount: r.attemptCount,
        scheduleStep: r.scheduleStep,
        leaseToken: r.leaseToken ?? "",
      });
    }
    return claims;
  }

  async completeAttempt(claim: ClaimedMessage, outcome: AttemptOutcome): Promise<boolean> {
    return this.store.completeDelivery({
      messageId: claim.id,
      endpointId: claim.endpoint.id,
      leaseToken: claim.leaseToken,
      attempt: outcome.attempt,
      message: outcome.message,
      endpoint: outcome.endpoint,
    });
  }

  async retryMessage(messageId: string, now: number): Promise<RetryResult | null> {
    const r = await this.store.retryDelivery(messageId, now, LAST_STEP);
    return r ? { messageId: r.id, status: r.status, nextAttemptAt: r.nextAttemptAt } : null;
  }

  private secretsOf(e: WebhookEndpointRecord): EndpointSecrets {
    return {
      current: openSecret(e.secret, e.id, this.secretsKey),
      previous: e.previousSecret === null ? null : openSecret(e.previousSecret, e.id, this.secretsKey),
      previousExpiresAt: e.previousSecretExpiresAt,
    };
  }
}
