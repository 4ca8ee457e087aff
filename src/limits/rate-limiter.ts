import type { RateLimits, WindowUse } from "../domain/rate-limits.ts";

/** A request to count: the account it belongs to and its own instant (an event's timestamp). */
export interface RequestHit {
  accountId: string;
  ts: number;
}

/**
 * Per-account request counters over fixed UTC minute and day windows. MemoryRateLimiter serves
 * one process; RedisRateLimiter lets several Tally instances share the counters. Both read the
 * current time from the injected clock, so tests can move it across window boundaries.
 */
export interface RateLimiter {
  /**
   * Counts each hit as one request in the minute and the day containing its own timestamp, never
   * refusing (reports describe work already done). Windows that have already ended are skipped.
   */
  record(hits: readonly RequestHit[]): Promise<void>;
  /** Requests counted in the windows containing now; reading consumes nothing. */
  peek(accountId: string): Promise<WindowUse>;
  /**
   * Takes one request now when both windows are under their limits (atomically: concurrent callers
   * never overshoot), and nothing when not. Answers the counts as they are afterwards.
   */
  consume(accountId: string, limits: RateLimits): Promise<{ allowed: boolean; used: WindowUse }>;
  close(): Promise<void>;
}
