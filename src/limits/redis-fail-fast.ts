import type { RedisOptions } from "ioredis";

/**
 * How every Redis connection of Tally's is opened: a command fails rather than waits (not retried
 * after a reconnect, half a second at most), so a lost Redis costs a request at most that; the
 * fallbacks (fallback-rate-limiter.ts, fallback-budget-reserver.ts) then answer from this
 * process's own counters and holds without asking Redis.
 */
export const REDIS_FAIL_FAST: RedisOptions = {
  maxRetriesPerRequest: 0,
  connectTimeout: 1000,
  commandTimeout: 500,
  retryStrategy: (times) => Math.min(times * 100, 2000),
};
