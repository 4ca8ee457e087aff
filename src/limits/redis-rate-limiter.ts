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
import { REDIS_FAIL_FAST } from "./redis-fail-fast.ts";

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

/**
 * Raises both of an account's window counters to at least the given counts (the requests the
 * store holds for those windows), never lowering one: rebuilding a window after Redis comes back
 * (empty after a restart, or behind after a partition) counts nothing twice.
 * KEYS: minute key, day key. ARGV: minute count, day count, minute ttl, day ttl (ms).
 */
const RAISE = `
for i = 1, 2 do
  local have = tonumber(redis.call('GET', KEYS[i]) or '0')
  local want = tonumber(ARGV[i])
  if want > have then redis.call('SET', KEYS[i], want, 'PX', ARGV[i + 2]) end
end
return 1
`;

/** Expiry past a window's end, so instances whose clocks differ a little still read the same counter. */
const GRACE_MS = 60_000;

export interface RedisRateLimiterOptions {
  /** Namespace for every key (tests use a unique one each). */
  keyPrefix?: string;
  now?: () => number;
  redisOptions?: RedisOptions;
}

type ConsumeRedis = Redis & {
  tallyConsume(k1: string, k2: string, ml: number, dl: number, t1: number, t2: number): Promise<number[]>;
  tallyRaise(k1: string, k2: string, m: number, d: number, t1: number, t2: number): Promise<number>;
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
  private lastError: Error | null = null;

  constructor(url: string, options: RedisRateLimiterOptions = {}) {
    this.redis = new Redis(url, { ...REDIS_FAIL_FAST, ...options.redisOptions }) as ConsumeRedis;
    this.redis.defineCommand("tallyConsume", { numberOfKeys: 2, lua: CONSUME });
    this.redis.defineCommand("tallyRaise", { numberOfKeys: 2, lua: RAISE });
    // ioredis reconnects by itself; without a listener an unreachable server would crash the process
    this.redis.on("error", (err: Error) => {
      this.lastError = err;
    });
    this.prefix = options.keyPrefix ?? "tally:rl:";
    this.now = options.now ?? Date.now;
  }

  /** Connected and answering commands now. */
  get isReady(): boolean {
    return this.redis.status === "ready";
  }

  /** The last connection error ioredis reported (for a log line naming why Redis is out). */
  get lastConnectionError(): Error | null {
    return this.lastError;
  }

  /** Called on each (re)connection, once Redis answers commands. */
  onReady(listener: () => void): void {
    this.redis.on("ready", listener);
  }

  /** Called when the connection is lost (ioredis keeps reconnecting). */
  onDown(listener: () => void): void {
    this.redis.on("close", listener);
  }

  /** Resolves true once connected, false when `timeoutMs` passes first. */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on("ready", onReady);
    });
  }

  /** Drops the connection and connects again (after a command timed out on a live socket). */
  reconnect(): void {
    this.redis.disconnect(true);
  }

  /** Raises the account's current windows (starting at `windows`) to at least `counts`. */
  async raiseTo(
    accountId: string,
    windows: { minute: number; day: number },
    counts: WindowUse,
  ): Promise<void> {
    const at = this.now();
    await this.call(() =>
      this.redis.tallyRaise(
        this.key(accountId, "minute", windows.minute),
        this.key(accountId, "day", windows.day),
        counts.minute,
        counts.day,
        windowEnd(windows.minute, "minute") - at + GRACE_MS,
        windowEnd(windows.day, "day") - at + GRACE_MS,
      ),
    );
  }

  /** Counts the hits (in each window `skip` does not exclude); rejects with UNAVAILABLE when Redis did not take them. */
  record(hits: readonly RequestHit[], skip?: (hit: RequestHit, w: RateWindow) => boolean): Promise<void> {
    const at = this.now();
    const counts = new Map<string, { n: number; ttl: number }>();
    for (const hit of hits) {
      for (const w of RATE_WINDOWS) {
        const end = windowEnd(hit.ts, w);
        if (end <= at || skip?.(hit, w)) continue;
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
    return this.call(async () => {
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    });
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
      // the cause is for logs; callers' answers never quote driver internals
      const failure = new DomainError("UNAVAILABLE", "Rate limit store unavailable");
      failure.cause = err;
      throw failure;
    }
  }
}
