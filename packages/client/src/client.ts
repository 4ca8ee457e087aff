import {
  backoffDelay,
  errorMessage,
  type HttpOptions,
  isRetryable,
  sleep,
  TallyAbortError,
  TallyError,
  TallyHttp,
} from "./http.ts";
import { appendSpool, readSpool, removeSpool, replaceSpool } from "./spool.ts";
import type {
  EventOutcome,
  EventsBatchAnswer,
  Invoice,
  KeyStatistics,
  KeyStatisticsSection,
  QueuedEvent,
  UsageEventInput,
  UsageRecord,
  WorkspaceUsage,
  WorkspaceUsageQuery,
} from "./types.ts";
import { uuidv7 } from "./uuid.ts";

/** The most events `POST /v1/events` takes in one request. */
export const MAX_BATCH = 10_000;

export interface TallyClientOptions extends HttpOptions {
  /** events per `POST /v1/events` (default 500, at most 10,000); a full batch is sent at once */
  batchSize?: number;
  /** a partial batch is sent this long after its first event was recorded (default 1,000 ms) */
  flushIntervalMs?: number;
  /** events held (queued and in flight) before `record()` refuses more (default 100,000) */
  maxQueueSize?: number;
  /** batches in flight at once (default 2) */
  concurrency?: number;
  /** root key only: the account every event is written to (an event's own `account_id` wins) */
  accountId?: string;
  /** a JSON-lines file: `shutdown()` writes what it could not deliver there */
  spoolPath?: string;
  /** send the spool's events when the client starts (default: true when `spoolPath` is set) */
  sendSpoolOnStart?: boolean;
  /** every event's outcome, whether it was sent in the background or by `flush()` */
  onOutcomes?: (outcomes: EventOutcome[]) => void;
  /** a batch that could not be delivered (its events stay queued) */
  onError?: (error: Error) => void;
}

export interface ShutdownResult {
  /** outcomes of the events sent during shutdown */
  outcomes: EventOutcome[];
  /** events written to the spool */
  spooled: number;
  /** events neither delivered nor spooled (only when no `spoolPath` is set): yours to keep */
  undelivered: QueuedEvent[];
}

/** `record()` after `shutdown()` began. */
export class TallyClosedError extends Error {
  override readonly name = "TallyClosedError";
}

/**
 * `record()` with `maxQueueSize` events held. The queue's policy when full: refuse the new event,
 * loudly and at once, rather than drop an old one silently or grow without bound. The caller
 * chooses (wait for `flush()`, drop, or keep it elsewhere); nothing already recorded is lost.
 */
export class TallyQueueFullError extends Error {
  override readonly name = "TallyQueueFullError";
}

/**
 * Tally's client. Events are queued with their id and timestamp fixed when recorded, sent in
 * batches (by count and by interval), retried with full-jitter backoff on network errors, 5xx and
 * 429 (honouring `Retry-After`); a retried event carries the same id, so the server counts it once.
 * Its own timers (batching, the retries of batches it sends by itself) are unref'd: background
 * work never keeps a process alive. A call the caller awaits does, until it has its answer.
 */
export class TallyClient {
  readonly http: TallyHttp;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueueSize: number;
  private readonly concurrency: number;
  private readonly accountId: string | undefined;
  private readonly spoolPath: string | undefined;
  private readonly onOutcomes: ((outcomes: EventOutcome[]) => void) | undefined;
  private readonly onError: ((error: Error) => void) | undefined;

  private queue: QueuedEvent[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private inFlightCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private pausedUntil = 0;
  private failures = 0;
  private closed = false;
  /** past shutdown's deadline: nothing more is sent */
  private halted = false;
  private readonly abort = new AbortController();
  private readonly listeners = new Set<(outcomes: EventOutcome[]) => void>();
  /** ids replayed from the spool that have no final outcome yet; the file goes when none is left */
  private readonly replaying = new Set<string>();
  private spoolLoaded = false;
  private shuttingDown: Promise<ShutdownResult> | undefined;

  constructor(options: TallyClientOptions) {
    this.http = new TallyHttp(options);
    this.batchSize = Math.min(MAX_BATCH, Math.max(1, options.batchSize ?? 500));
    this.flushIntervalMs = Math.max(0, options.flushIntervalMs ?? 1000);
    this.maxQueueSize = Math.max(1, options.maxQueueSize ?? 100_000);
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.accountId = options.accountId;
    this.spoolPath = options.spoolPath;
    this.onOutcomes = options.onOutcomes;
    this.onError = options.onError;
    if (this.spoolPath && options.sendSpoolOnStart !== false) {
      const spooled = readSpool(this.spoolPath);
      this.spoolLoaded = true;
      for (const e of spooled) this.replaying.add(e.id);
      this.queue.push(...spooled);
      if (spooled.length > 0) this.pump(true);
    }
  }

  /** Events held: queued, and in batches on their way. */
  get pending(): number {
    return this.queue.length + this.inFlightCount;
  }

  /**
   * Queues one event and returns its id. The id (default: a UUID v7) and the timestamp (default:
   * now) are fixed here and reused on every retry and from the spool.
   * @throws TallyQueueFullError when `maxQueueSize` events are held; TallyClosedError after shutdown
   */
  record(event: UsageEventInput): string {
    if (this.closed) throw new TallyClosedError("the client is shut down");
    if (this.pending >= this.maxQueueSize) {
      throw new TallyQueueFullError(`${this.pending} events are waiting to be sent (maxQueueSize)`);
    }
    if (typeof event?.model_id !== "string" || event.model_id === "") {
      throw new TypeError("event.model_id must be a non-empty string");
    }
    const queued: QueuedEvent = {
      ...event,
      id: event.id ?? uuidv7(),
      timestamp: event.timestamp ?? new Date().toISOString(),
    };
    this.queue.push(queued);
    this.pump(false);
    return queued.id;
  }

  /**
   * Sends every event queued now (and waits for those in flight) and returns their outcomes. An
   * event whose every attempt failed comes back `unsent` and stays queued.
   */
  async flush(): Promise<EventOutcome[]> {
    const waiting = new Set<string>();
    for (const e of this.queue) waiting.add(e.id);
    for (const ids of this.inFlightIds) for (const id of ids) waiting.add(id);
    const outcomes: EventOutcome[] = [];
    const listener = (batch: EventOutcome[]) => {
      for (const o of batch) {
        if (waiting.delete(o.id)) outcomes.push(o);
      }
    };
    this.listeners.add(listener);
    try {
      while (waiting.size > 0 && !this.halted) {
        this.pump(true, waiting);
        if (this.inFlight.size === 0) break;
        await Promise.race(this.inFlight);
      }
    } finally {
      this.listeners.delete(listener);
    }
    return outcomes;
  }

  /**
   * Stops intake, sends what it can until `timeoutMs` (default 5,000), then aborts what is still
   * in flight and writes every event not delivered to the spool (when `spoolPath` is set). An
   * aborted request may have been committed: its events are spooled all the same, and their
   * fixed ids make the next start count them once.
   */
  shutdown(options: { timeoutMs?: number } = {}): Promise<ShutdownResult> {
    // a second call gets the first one's result (and never rewrites the spool it wrote)
    this.shuttingDown ??= this.stop(options.timeoutMs ?? 5000);
    return this.shuttingDown;
  }

  private async stop(timeoutMs: number): Promise<ShutdownResult> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const deadline = new AbortController();
    const flushed = this.flush();
    const timedOut = sleep(timeoutMs, deadline.signal).then(
      () => null,
      () => null,
    );
    const outcomes = (await Promise.race([flushed, timedOut])) ?? [];
    deadline.abort();
    this.halted = true;
    this.abort.abort();
    // aborted batches come back to the queue as they settle
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    const rest = this.queue;
    this.queue = [];
    if (!this.spoolPath) return { outcomes, spooled: 0, undelivered: rest };
    // a loaded spool is rewritten with what is still undelivered (its replayed events included)
    if (this.spoolLoaded) replaceSpool(this.spoolPath, rest);
    else appendSpool(this.spoolPath, rest);
    return { outcomes, spooled: rest.length, undelivered: [] };
  }

  /**
   * Reports generations of a licensed model (seeds 000, 002): `POST /v1/licenses/models/{slug}/usage`
   * with an `Idempotency-Key` (default: a UUID v7) that is reused on every retry.
   * @throws TallyError on a refusal (400 unknown slug, 403 not licensed, 422, ...)
   */
  async reportGenerations(
    slug: string,
    numberOfGenerations = 1,
    options: { idempotencyKey?: string } = {},
  ): Promise<{ message: string; idempotencyKey: string }> {
    const idempotencyKey = options.idempotencyKey ?? uuidv7();
    const body = await this.http.json<{ message: string }>(
      "POST",
      `/v1/licenses/models/${encodeURIComponent(slug)}/usage`,
      {
        body: { number_of_generations: numberOfGenerations },
        headers: { "idempotency-key": idempotencyKey },
        retry: true,
      },
    );
    return { message: body.message, idempotencyKey };
  }

  /** Key usage statistics (seed 003), all sections or the ones named. */
  keyStatistics(sections?: readonly KeyStatisticsSection[]): Promise<KeyStatistics> {
    return this.http.json<KeyStatistics>("GET", "/v1/usage", {
      query: { section: sections?.join(",") },
      retry: true,
    });
  }

  /** Workspace usage by model and time bucket (seed 004): one page; follow `next_cursor` for more. */
  workspaceUsage(query: WorkspaceUsageQuery = {}): Promise<WorkspaceUsage> {
    return this.http.json<WorkspaceUsage>("GET", "/v1/models/usage", {
      query: {
        ...query,
        endpoint_id: query.endpoint_id,
        expand: query.expand,
        bound_to_timeframe: query.bound_to_timeframe,
      },
      retry: true,
    });
  }

  /** The usage log (seed 001), newest first: the account's for an admin key, one's own for a member. */
  usageLog(page: { skip?: number; limit?: number } = {}): Promise<UsageRecord[]> {
    return this.http.json<UsageRecord[]>("GET", "/usage", { query: page, retry: true });
  }

  /** An account's invoices, oldest period first (an admin key: its own account's). */
  async invoices(accountId: string): Promise<Invoice[]> {
    const page = await this.http.json<{ data: Invoice[] }>(
      "GET",
      `/v1/accounts/${encodeURIComponent(accountId)}/invoices`,
      { retry: true },
    );
    return page.data;
  }

  /** The open period's invoice, live (`status: "draft"`). */
  upcomingInvoice(accountId: string): Promise<Invoice> {
    return this.http.json<Invoice>("GET", `/v1/accounts/${encodeURIComponent(accountId)}/invoices/upcoming`, {
      retry: true,
    });
  }

  invoice(id: string): Promise<Invoice> {
    return this.http.json<Invoice>("GET", `/v1/invoices/${encodeURIComponent(id)}`, { retry: true });
  }

  /** An invoice as CSV text: one row per line and tier, exact decimals, summing to the total. */
  async invoiceCsv(id: string): Promise<string> {
    const answer = await this.http.request("GET", `/v1/invoices/${encodeURIComponent(id)}.csv`, {
      retry: true,
    });
    if (answer.status >= 300)
      throw new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
    return answer.text;
  }

  // --- sending ---

  private readonly inFlightIds = new Set<string[]>();

  /**
   * Starts batches while there is room: full batches always, a partial one when `force` (the
   * interval passed, or a flush), and only events in `only` when given.
   */
  private pump(force: boolean, only?: Set<string>): void {
    if (this.halted) return;
    // a flush (`only`) sends at once; background sending waits out the backoff after a failure
    if (!only && Date.now() < this.pausedUntil) {
      this.arm(this.pausedUntil - Date.now());
      return;
    }
    while (this.inFlight.size < this.concurrency && this.queue.length > 0) {
      if (!force && this.queue.length < this.batchSize) break;
      if (only && !this.queue.some((e) => only.has(e.id))) break;
      this.start(this.queue.splice(0, this.batchSize));
    }
    if (this.queue.length > 0 && !this.closed) this.arm(this.flushIntervalMs);
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump(true);
    }, ms);
    this.timer.unref();
  }

  private start(batch: QueuedEvent[]): void {
    const ids = batch.map((e) => e.id);
    this.inFlightIds.add(ids);
    this.inFlightCount += batch.length;
    const sending: Promise<void> = this.send(batch).then((outcomes) => {
      this.inFlight.delete(sending);
      this.inFlightIds.delete(ids);
      this.inFlightCount -= batch.length;
      this.settle(batch, outcomes);
    });
    this.inFlight.add(sending);
  }

  /** One batch with its retries; never throws. */
  private async send(batch: QueuedEvent[]): Promise<EventOutcome[]> {
    const unsent = (error: string): EventOutcome[] =>
      batch.map((e) => ({ id: e.id, status: "unsent", error }));
    try {
      const answer = await this.http.request("POST", "/v1/events", {
        body: this.accountId ? { account_id: this.accountId, events: batch } : { events: batch },
        retry: true,
        background: true,
        signal: this.abort.signal,
      });
      const body = answer.body as EventsBatchAnswer | null;
      if ((answer.status === 200 || answer.status === 422) && body && Array.isArray(body.rejected)) {
        return batchOutcomes(batch, body);
      }
      const message = errorMessage(answer.status, answer.body);
      // a refused key or a server still failing: keep the events, they are not at fault
      if (answer.status === 401 || answer.status === 403 || isRetryable(answer.status)) {
        this.guard(() => this.onError?.(new TallyError(answer.status, message, answer.body)));
        return unsent(message);
      }
      return batch.map((e) => ({ id: e.id, status: "rejected", error: message }));
    } catch (err) {
      if (!(err instanceof TallyAbortError)) this.guard(() => this.onError?.(err as Error));
      return unsent((err as Error).message);
    }
  }

  /** A caller's callback (or a file operation) that throws must not stop the sending. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (this.onError) {
        try {
          this.onError(err as Error);
        } catch {
          // the error handler itself failed: nothing left to tell
        }
      }
    }
  }

  private settle(batch: QueuedEvent[], outcomes: EventOutcome[]): void {
    const back = batch.filter((_, i) => outcomes[i].status === "unsent");
    if (back.length > 0) {
      // back to the front, in order; sending pauses for a backoff so a server that is down is not hammered
      this.queue.unshift(...back);
      this.pausedUntil =
        Date.now() + Math.max(this.flushIntervalMs, backoffDelay(this.http.retry, this.failures++));
    } else {
      this.failures = 0;
      this.pausedUntil = 0;
    }
    if (this.replaying.size > 0) {
      for (const o of outcomes) if (o.status !== "unsent") this.replaying.delete(o.id);
      // every spooled event has its final answer: the spool has done its job
      if (this.replaying.size === 0 && !this.closed && this.spoolPath) {
        this.guard(() => removeSpool(this.spoolPath!));
      }
    }
    for (const listener of this.listeners) listener(outcomes);
    if (!this.closed) this.pump(false);
    this.guard(() => this.onOutcomes?.(outcomes));
  }
}

/** Per-event outcomes of a `POST /v1/events` answer, in the batch's order. */
function batchOutcomes(batch: QueuedEvent[], body: EventsBatchAnswer): EventOutcome[] {
  const out: (EventOutcome | undefined)[] = new Array(batch.length);
  for (const r of body.rejected) {
    out[r.index] = { id: batch[r.index].id, status: "rejected", error: r.error, field: r.field };
  }
  for (const r of body.results ?? []) {
    out[r.index] = {
      id: batch[r.index].id,
      status: r.status === "duplicate" ? "duplicate" : "accepted",
      usageId: r.usage_id,
    };
  }
  // a server without per-event results: whatever was not rejected was stored
  return batch.map((e, i) => out[i] ?? { id: e.id, status: "accepted" });
}
