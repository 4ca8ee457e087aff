import { DomainError } from "../domain/errors.ts";
import type { AppendOutcome, Store, UsageEvent } from "../store/store.ts";

/** One group-commit transaction, as metrics see it. */
export interface CommitStats {
  events: number;
  /** stored now; the rest were duplicates (0 when the transaction failed) */
  inserted: number;
  seconds: number;
  failed: boolean;
}

interface Pending {
  events: UsageEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: every request's events wait in one queue, and each writer commits all that
 * arrived while the previous transaction ran, in one durable transaction. A request is answered
 * only after the transaction holding its events has committed. If a group fails, each request in
 * it is retried alone, so one bad request cannot fail its neighbours; if the store is unavailable,
 * the group and the queue behind it are refused at once.
 *
 * `writers` transactions may be in flight at once. Both stores use one: SQLite has a single
 * writer anyway, and on PostgreSQL a second and fourth writer in flight measured slower, for
 * batch ingest (25k vs 22k events/s) and far slower for single reports, whose groups shrink to
 * one request each when every free writer takes whatever is queued. Several writers stay exact
 * (unique index, row locks, rollup rows updated in one order), so the option remains.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private queued = 0;
  private inFlight = 0;
  private scheduled = false;
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners: ((inserted: UsageEvent[]) => void)[] = [];
  private readonly statsListeners: ((stats: CommitStats) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly writers = 1,
    private readonly maxEvents = 20_000,
  ) {}

  /** Called after each commit with the events it inserted (not duplicates). */
  onCommitted(listener: (inserted: UsageEvent[]) => void): void {
    this.listeners.push(listener);
  }

  /** Called after each transaction, committed or failed, with its size and duration (metrics). */
  onStats(listener: (stats: CommitStats) => void): void {
    this.statsListeners.push(listener);
  }

  /**
   * `lingerMs`: for a caller that has already answered its client (the gateway), the group may
   * wait that long for more events, so a lone request at a time does not pay one durable commit
   * each, blocking the event loop (SQLite) ahead of the next request. A submit without linger, or
   * a commit finishing, starts the group at once.
   */
  submit(events: UsageEvent[], lingerMs = 0): Promise<AppendOutcome[]> {
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.queued += events.length;
      if (this.inFlight >= this.writers || this.scheduled) return;
      if (lingerMs > 0) {
        this.lingerTimer ??= setTimeout(() => this.pump(), lingerMs);
        return;
      }
      this.scheduled = true;
      // let requests that are already readable join this group before it commits
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    });
  }

  /** Starts a commit for the waiting requests on every free writer. */
  private pump(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    while (this.inFlight < this.writers && this.queue.length > 0) {
      const group: Pending[] = [];
      let size = 0;
      while (
        this.queue.length > 0 &&
        (group.length === 0 || size + this.queue[0].events.length <= this.maxEvents)
      ) {
        const p = this.queue.shift()!;
        size += p.events.length;
        group.push(p);
      }
      this.queued -= size;
      this.inFlight++;
      void this.commit(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async commit(group: Pending[]): Promise<void> {
    const events = group.length === 1 ? group[0].events : group.flatMap((p) => p.events);
    const started = performance.now();
    try {
      const outcomes = await this.store.appendEvents(events);
      this.report(events.length, started, outcomes);
      let offset = 0;
      for (const p of group) {
        p.resolve(outcomes.slice(offset, offset + p.events.length));
        offset += p.events.length;
      }
      this.notify(events, outcomes);
    } catch (err) {
      this.report(events.length, started, null);
      if (err instanceof DomainError && err.code === "UNAVAILABLE") {
        // the store is down, not the request: retrying each alone would hold every request for
        // one timeout apiece, so this group and all queued behind it are refused now (503)
        const waiting = this.queue.splice(0);
        this.queued = 0;
        for (const p of [...group, ...waiting]) p.reject(err);
        return;
      }
      if (group.length === 1) {
        group[0].reject(err);
        return;
      }
      for (const p of group) await this.commit([p]);
    }
  }

  private report(events: number, started: number, outcomes: AppendOutcome[] | null): void {
    if (this.statsListeners.length === 0) return;
    let inserted = 0;
    if (outcomes) for (const o of outcomes) if (o.status === "inserted") inserted++;
    const stats: CommitStats = {
      events,
      inserted,
      seconds: (performance.now() - started) / 1000,
      failed: outcomes === null,
    };
    for (const l of this.statsListeners) l(stats);
  }

  private notify(events: UsageEvent[], outcomes: AppendOutcome[]): void {
    if (this.listeners.length === 0) return;
    const inserted = events.filter((_, i) => outcomes[i].status === "inserted");
    if (inserted.length === 0) return;
    for (const l of this.listeners) l(inserted);
  }

  get pendingEvents(): number {
    return this.queued;
  }

  /** Waits until everything submitted so far is committed. */
  async idle(): Promise<void> {
    if (this.lingerTimer) this.pump();
    while (this.inFlight > 0 || this.scheduled || this.queue.length > 0)
      await new Promise((r) => setImmediate(r));
  }
}
