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
 * Counters in this process's memory (the default, for a single instance). Check-and-increment is
 * synchronous, so it is atomic. Ended windows are dropped at most once a minute of clock time, so
 * the map holds only current (and future-dated) windows.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private lastPrune: number;

  constructor(private readonly now: () => number = Date.now) {
    this.lastPrune = now();
  }

  async record(hits: readonly RequestHit[]): Promise<void> {
    const at = this.now();
    this.prune(at);
    for (const hit of hits) {
      for (const w of RATE_WINDOWS) {
        const end = windowEnd(hit.ts, w);
        if (end <= at) continue;
        this.add(hit.accountId, w, hit.ts, 1);
      }
    }
  }

  async peek(accountId: string): Promise<WindowUse> {
    const at = this.now();
    this.prune(at);
    return this.use(accountId, at);
  }

  async consume(accountId: string, limits: RateLimits): Promise<{ allowed: boolean; used: WindowUse }> {
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
