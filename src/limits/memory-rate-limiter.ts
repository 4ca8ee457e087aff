import {
  hasRoom,
  RATE_WINDOWS,
  type RateLimits,
  type RateWindow,
  type WindowUse,
  windowEnd,
  windowStart,
} from "../domain/rate-limits.ts";
import { MINUTE_MS } from "../domain/time.ts";
import type { RateLimiter, RequestHit } from "./rate-limiter.ts";

interface Counter {
  count: number;
  end: number;
}

/**
 * Reads how many requests an account's already recorded events make in the current minute and
 * day windows (from the rollups), so a restarted process starts from the real counts.
 */
export type CountSeed = (accountId: string, windows: { minute: number; day: number }) => Promise<WindowUse>;

/**
 * Counters in this process's memory (the default, for a single instance). Check-and-increment is
 * synchronous, so it is atomic. Ended windows are dropped at most once a minute of clock time, so
 * the map holds only current (and future-dated) windows. With a `seed`, an account's counters
 * start, the first time this process sees the account, from the events already recorded in its
 * current windows, so a restart forgets no recorded request.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private readonly seeded = new Map<string, Promise<{ minute: number; day: number }>>();
  private lastPrune: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly seed?: CountSeed,
  ) {
    this.lastPrune = now();
  }

  async record(hits: readonly RequestHit[]): Promise<void> {
    const at = this.now();
    this.prune(at);
    const byAccount = new Map<string, RequestHit[]>();
    for (const hit of hits) {
      const list = byAccount.get(hit.accountId);
      if (list) list.push(hit);
      else byAccount.set(hit.accountId, [hit]);
    }
    for (const [accountId, list] of byAccount) {
      // the first sight of an account reads its counts from the store, which already holds these
      // events: only hits outside the windows that reading covered are added. Known gap: an event
      // committed while that read is in flight may be in it and still be added by its own
      // record() call, so a seed can over-count (never under-count) by the commits it overlaps.
      const fresh = this.seed !== undefined && !this.seeded.has(accountId);
      const covered = await this.ensureSeeded(accountId, at);
      for (const hit of list) {
        for (const w of RATE_WINDOWS) {
          const end = windowEnd(hit.ts, w);
          if (end <= at) continue;
          if (fresh && windowStart(hit.ts, w) === covered[w]) continue;
          this.add(hit.accountId, w, hit.ts, 1);
        }
      }
    }
  }

  async peek(accountId: string): Promise<WindowUse> {
    await this.ensureSeeded(accountId, this.now());
    const at = this.now();
    this.prune(at);
    return this.use(accountId, at);
  }

  async consume(accountId: string, limits: RateLimits): Promise<{ allowed: boolean; used: WindowUse }> {
    await this.ensureSeeded(accountId, this.now());
    const at = this.now();
    this.prune(at);
    const used = this.use(accountId, at);
    if (!hasRoom(limits, used)) return { allowed: false, used };
    for (const w of RATE_WINDOWS) this.add(accountId, w, at, 1);
    return { allowed: true, used: { minute: used.minute + 1, day: used.day + 1 } };
  }

  async close(): Promise<void> {
    this.counters.clear();
  }

  /** Number of live counters (for tests: growth is bounded by the windows in force). */
  get size(): number {
    return this.counters.size;
  }

  /** Seeds an account once per process; answers the window starts the seed covered. */
  private ensureSeeded(accountId: string, at: number): Promise<{ minute: number; day: number }> {
    const windows = { minute: windowStart(at, "minute"), day: windowStart(at, "day") };
    if (!this.seed) return Promise.resolve(windows);
    let done = this.seeded.get(accountId);
    if (!done) {
      const seed = this.seed;
      done = seed(accountId, windows).then((counts) => {
        for (const w of RATE_WINDOWS) if (counts[w] > 0) this.add(accountId, w, windows[w], counts[w]);
        return windows;
      });
      // a failed read is retried on the next call rather than remembered
      done.catch(() => this.seeded.delete(accountId));
      this.seeded.set(accountId, done);
    }
    return done;
  }

  private use(accountId: string, at: number): WindowUse {
    return {
      minute: this.counters.get(key(accountId, "minute", windowStart(at, "minute")))?.count ?? 0,
      day: this.counters.get(key(accountId, "day", windowStart(at, "day")))?.count ?? 0,
    };
  }

  private add(accountId: string, w: RateWindow, at: number, n: number): void {
    const k = key(accountId, w, windowStart(at, w));
    const c = this.counters.get(k);
    if (c) c.count += n;
    else this.counters.set(k, { count: n, end: windowEnd(at, w) });
  }

  private prune(at: number): void {
    if (at - this.lastPrune < MINUTE_MS) return;
    this.lastPrune = at;
    for (const [k, c] of this.counters) if (c.end <= at) this.counters.delete(k);
  }
}

const key = (accountId: string, w: RateWindow, start: number): string =>
  `${accountId}\u0000${w}\u0000${start}`;
