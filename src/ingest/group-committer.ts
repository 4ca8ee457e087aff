import type { KeyUseRecorder } from "../auth/authenticator.ts";
import type { AppendOutcome, Store, UsageEvent } from "../store/store.ts";

interface Pending {
  events: UsageEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: every request's events wait in one queue, and a single writer commits all that
 * arrived while the previous transaction ran, in one durable transaction. A request is answered
 * only after the transaction holding its events has committed. If a group fails, each request in
 * it is retried alone, so one bad request cannot fail its neighbours.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private queued = 0;
  private running = false;
  private scheduled = false;
  private readonly listeners: ((inserted: UsageEvent[]) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly keyUses: KeyUseRecorder,
    private readonly maxEvents = 20_000,
  ) {}

  /** Called after each commit with the events it inserted (not duplicates). */
  onCommitted(listener: (inserted: UsageEvent[]) => void): void {
    this.listeners.push(listener);
  }

  submit(events: UsageEvent[]): Promise<AppendOutcome[]> {
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.queued += events.length;
      if (!this.running && !this.scheduled) {
        this.scheduled = true;
        // let requests that are already readable join this group before it commits
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
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
        await this.commit(group);
      }
    } finally {
      this.running = false;
    }
  }

  private async commit(group: Pending[]): Promise<void> {
    const events = group.length === 1 ? group[0].events : group.flatMap((p) => p.events);
    try {
      const outcomes = await this.store.appendEvents(events, this.keyUses.drain());
      let offset = 0;
      for (const p of group) {
        p.resolve(outcomes.slice(offset, offset + p.events.length));
        offset += p.events.length;
      }
      this.notify(events, outcomes);
    } catch (err) {
      if (group.length === 1) {
        group[0].reject(err);
        return;
      }
      for (const p of group) await this.commit([p]);
    }
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
    while (this.running || this.scheduled || this.queue.length > 0) await new Promise((r) => setImmediate(r));
  }
}
