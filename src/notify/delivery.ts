import type { AttemptRecord, ClaimedMessage, Outbox } from "./outbox.ts";
import { planAfterAttempt } from "./retry-policy.ts";
import { SEND_TIMEOUT_MS, type SendWebhook } from "./send-webhook.ts";
import { signingSecrets, webhookHeaders } from "./signing.ts";

/**
 * The delivery worker: claims due messages from the outbox, signs and sends each, records the
 * attempt and schedules what comes next (retry-policy.ts). Every instance may run one; the
 * outbox's leases keep them from sending a message twice (outbox.ts).
 */

export interface DeliveryWorkerOptions {
  outbox: Outbox;
  send: SendWebhook;
  /** epoch ms; injected by tests */
  clock?: () => number;
  /** messages claimed per round, sent concurrently */
  batchSize?: number;
  /** how long a claim holds a message; must outlast a send */
  leaseMs?: number;
  timeoutMs?: number;
  /** called with errors of the outbox itself (a send failure is an attempt, not an error) */
  onError?: (err: unknown) => void;
  /** called with every attempt made (metrics) */
  onAttempt?: (attempt: AttemptRecord) => void;
}

export class DeliveryWorker {
  private readonly outbox: Outbox;
  private readonly send: SendWebhook;
  private readonly clock: () => number;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly timeoutMs: number;
  private readonly onError: (err: unknown) => void;
  private readonly onAttempt: (attempt: AttemptRecord) => void;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = true;

  constructor(options: DeliveryWorkerOptions) {
    this.outbox = options.outbox;
    this.send = options.send;
    this.clock = options.clock ?? Date.now;
    this.batchSize = options.batchSize ?? 20;
    this.timeoutMs = options.timeoutMs ?? SEND_TIMEOUT_MS;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.onError = options.onError ?? (() => {});
    this.onAttempt = options.onAttempt ?? (() => {});
    // a lease that can run out mid-send would let a second instance send the same message
    if (this.leaseMs < 2 * this.timeoutMs) throw new Error("leaseMs must be at least twice timeoutMs");
  }

  /** One round: claims what is due now and delivers it. Returns the number of attempts made. */
  async runOnce(): Promise<number> {
    const claims = await this.outbox.claimDue(this.clock(), this.batchSize, this.leaseMs);
    // one message's trouble (a secret that no longer opens, a store error) is not its neighbours'
    const results = await Promise.allSettled(claims.map((claim) => this.deliver(claim)));
    for (const r of results) if (r.status === "rejected") this.onError(r.reason);
    return claims.length;
  }

  private async deliver(claim: ClaimedMessage): Promise<void> {
    const attemptedAt = this.clock();
    const timestamp = Math.floor(attemptedAt / 1000);
    const headers = webhookHeaders(
      claim.id,
      timestamp,
      claim.body,
      signingSecrets(claim.endpoint.secrets, attemptedAt),
    );
    const result = await this.send({
      url: claim.endpoint.url,
      headers,
      body: claim.body,
      timeoutMs: this.timeoutMs,
    });
    const statusCode = result.statusCode;
    const attempt: AttemptRecord = {
      messageId: claim.id,
      endpointId: claim.endpoint.id,
      attemptNumber: claim.attemptCount + 1,
      attemptedAt,
      statusCode,
      latencyMs: result.latencyMs,
      responseExcerpt: result.responseExcerpt,
      error: result.error,
      succeeded: statusCode !== null && statusCode >= 200 && statusCode < 300,
    };
    this.onAttempt(attempt);
    const plan = planAfterAttempt(claim, attempt, Math.max(this.clock(), attemptedAt));
    // if this throws, the lease runs out and the message is attempted again, same webhook-id
    await this.outbox.completeAttempt(claim, { attempt, ...plan });
  }

  /** Polls every `pollMs`; a full batch is followed by the next one at once. */
  start(pollMs = 1000): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = async () => {
      let attempted = 0;
      try {
        attempted = await this.runOnce();
      } catch (err) {
        this.onError(err);
      }
      if (!this.stopped) this.timer = setTimeout(loop, attempted >= this.batchSize ? 0 : pollMs);
    };
    const loop = () => {
      this.running = tick();
    };
    loop();
  }

  /** Stops polling and waits for the round in flight (its attempts are recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
