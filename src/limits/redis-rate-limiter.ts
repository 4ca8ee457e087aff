import { Redis, type RedisOptions } from "ioredis";
import { DomainError } from "../domain/errors.ts";
import {
  RATE_WINDOWS,
  type RateLimits,
  type RateWindow,
  type WindowUse,
  windowEnd,
  windowStart,
} from "../domain/rate-limits.ts";
import type { RateLimiter, RequestHit } from "./rate-limiter.ts";

/**
 * Checks both windows and increments both only when both are under their limits, in one atomic
 * script, so instances sharing the Redis never admit more than the limit between them.
 * KEYS: minute key, day key. ARGV: minute limit, day limit (-1 = unlimited), minute ttl, day ttl (ms).
 */
const CONSUME = `
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local ml = tonumber(ARGV[1])
local dl = tonumber(ARGV[2])
if (ml >= 0 and m >= ml) or (dl >= 0 and d >= dl) then
  return {0, m, d}
end
m = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
d = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, m, d}
`;

/** Expiry past a window's end, so instances whose clocks differ a little still read the same counter. */
const GRACE_MS = 60_000;

export interface RedisRateLimiterOptions {
  /** Namespace for every key (tests use a unique one each). */
  keyPrefix?: string;
  now?: () => number;
  /** Called when counting recorded events fails (counting never fails a report). */
  onError?: (err: unknown) => void;
  redisOptions?: RedisOptions;
}

type ConsumeRedis = Redis & {
  tallyConsume(k1: string, k2: string, ml: number, dl: number, t1: number, t2: number): Promise<number[]>;
};

/**
 * Counters in Redis, shared by every Tally instance pointing at it (REDIS_URL). Keys are
 * `<prefix>{<account>}:<m|d>:<window start>` with an expiry just past the window's end, so Redis
 * holds only current windows. Recorded events cost one pipelined round trip per commit.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ConsumeRedis;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;

  constructor(url: string, options: RedisRateLimiterOptions = {}) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, ...options.redisOptions }) as ConsumeRedis;
    this.redis.defineCommand("tallyConsume", { numberOfKeys: 2, lua: CONSUME });
    // ioredis reconnects by itself; without a listener an unreachable server would crash the process
    this.redis.on("error", () => {});
    this.prefix = options.keyPrefix ?? "tally:rl:";
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? ((err) => console.error("rate limiter: counting failed", err));
  }

  record(hits: readonly RequestHit[]): Promise<void> {
    const at = this.now();
    const counts = new Map<string, { n: number; ttl: number }>();
    for (const hit of hits) {
      for (const w of RATE_WINDOWS) {
        const end = windowEnd(hit.ts, w);
        if (end <= at) continue;
        const k = this.key(hit.accountId, w, hit.ts);
        const c = counts.get(k);
        if (c) c.n += 1;
        else counts.set(k, { n: 1, ttl: end - at + GRACE_MS });
      }
    }
    if (counts.size === 0) return Promise.resolve();
    // built and sent synchronously: a later read on this connection is queued after it
    const pipeline = this.redis.pipeline();
    for (const [k, { n, ttl }] of counts) pipeline.incrby(k, n).pexpire(k, ttl);
    return pipeline.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err);
        if (failed) this.onError(failed[0]);
      },
      (err) => this.onError(err),
    );
  }

  async peek(accountId: string): Promise<WindowUse> {
    const at = this.now();
    const [m, d] = await this.call(() =>
      this.redis.mget(this.key(accountId, "minute", at), this.key(accountId, "day", at)),
    );
    return { minute: Number(m ?? 0), day: Number(d ?? 0) };
  }

  async consume(accountId: string, limits: RateLimits): Promise<{ allowed: boolean; used: WindowUse }> {
    const at = this.now();
    const [ok, m, d] = await this.call(() =>
      this.redis.tallyConsume(
        this.key(accountId, "minute", at),
        this.key(accountId, "day", at),
        limits.perMinute ?? -1,
        limits.perDay ?? -1,
        windowEnd(at, "minute") - at + GRACE_MS,
        windowEnd(at, "day") - at + GRACE_MS,
      ),
    );
    return { allowed: ok === 1, used: { minute: Number(m), day: Number(d) } };
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private key(accountId: string, w: RateWindow, at: number): string {
    // the hash tag keeps an account's two windows in one slot, as the atomic script needs
    return `${this.prefix}{${accountId}}:${w === "minute" ? "m" : "d"}:${windowStart(at, w)}`;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new DomainError("UNAVAILABLE", `Rate limit store unavailable: ${(err as Error).message}`);
    }
  }
}
