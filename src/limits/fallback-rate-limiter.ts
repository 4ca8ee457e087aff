import { type RateLimits, type WindowUse, windowStart } from "../domain/rate-limits.ts";
import type { Log } from "../ops/log.ts";
import { type CountSeed, MemoryRateLimiter } from "./memory-rate-limiter.ts";
import type { RateLimiter, RequestHit } from "./rate-limiter.ts";
import type { RedisRateLimiter } from "./redis-rate-limiter.ts";

export interface FallbackHooks {
  /** the backend in use changed */
  onBackend?: (backend: "redis" | "memory") => void;
  /** Redis was lost (or not there at start): per-instance counters from now on */
  onFallback?: () => void;
}

/**
 * Redis's counters while Redis answers, this process's own counters at once when it does not
 * (no waiting on a dead connection: commands are sent only while connected, and fail fast).
 *
 * Both sides start from the store: the per-instance counters are seeded, per account, from the
 * rollups when the fallback begins; and after each (re)connection each account's current Redis
 * windows are raised to the store's counts before Redis answers for it, so events recorded during
 * an outage are counted, a restarted Redis does not start the day at zero, and a request the
 * store already holds is never added on top.
 */
export class FallbackRateLimiter implements RateLimiter {
  /** the per-instance counters, while Redis is out; a fresh set (re-seeded) for each outage */
  private memory: MemoryRateLimiter | null = null;
  /** accounts whose Redis windows were rebuilt from the store since the last connection */
  private rebuilt = new Set<string>();
  private up: boolean;

  constructor(
    private readonly redis: RedisRateLimiter,
    private readonly seed: CountSeed,
    private readonly now: () => number,
    private readonly log: Log,
    private readonly hooks: FallbackHooks = {},
  ) {
    this.up = redis.isReady;
    redis.onReady(() => this.recover());
    redis.onDown(() => this.fallBack("connection lost"));
    if (this.up) hooks.onBackend?.("redis");
    else this.fallBack("not reachable at start");
  }

  /** Which counters answer now. */
  get backend(): "redis" | "memory" {
    return this.up ? "redis" : "memory";
  }

  async record(hits: readonly RequestHit[]): Promise<void> {
    if (this.up) {
      try {
        const at = this.now();
        const fresh = await this.rebuildAll(new Set(hits.map((h) => h.accountId)), at);
        // a window rebuilt just now already holds what the store holds, these hits included
        await this.redis.record(hits, (h, w) => fresh.get(h.accountId)?.[w] === windowStart(h.ts, w));
        return;
      } catch (err) {
        this.fallBack(err);
      }
    }
    await this.fallback().record(hits);
  }

  async peek(accountId: string): Promise<WindowUse> {
    if (this.up) {
      try {
        await this.rebuild(accountId, this.now());
        return await this.redis.peek(accountId);
      } catch (err) {
        this.fallBack(err);
      }
    }
    return this.fallback().peek(accountId);
  }

  async consume(accountId: string, limits: RateLimits): Promise<{ allowed: boolean; used: WindowUse }> {
    if (this.up) {
      try {
        await this.rebuild(accountId, this.now());
        return await this.redis.consume(accountId, limits);
      } catch (err) {
        this.fallBack(err);
      }
    }
    return this.fallback().consume(accountId, limits);
  }

  async close(): Promise<void> {
    this.up = false;
    await this.memory?.close();
    await this.redis.close();
  }

  private fallback(): MemoryRateLimiter {
    if (!this.memory) this.fallBack("not connected");
    return this.memory!;
  }

  /** Switches to per-instance counters; logged and counted once per outage. */
  private fallBack(reason: unknown): void {
    const wasUp = this.up;
    this.up = false;
    if (this.memory) return;
    this.memory = new MemoryRateLimiter(this.now, this.seed);
    const cause = reason instanceof Error ? (reason.cause ?? reason) : this.redis.lastConnectionError;
    this.log.warn(
      { err: cause ?? undefined, reason: typeof reason === "string" ? reason : undefined },
      "Redis unavailable: rate limits use this instance's own counters until it returns",
    );
    this.hooks.onFallback?.();
    this.hooks.onBackend?.("memory");
    // a command that timed out on a socket that still looks open: reconnect to find out
    if (wasUp && this.redis.isReady) this.redis.reconnect();
  }

  private recover(): void {
    this.rebuilt = new Set();
    const wasDown = this.memory !== null;
    this.up = true;
    const memory = this.memory;
    this.memory = null;
    void memory?.close();
    if (wasDown) this.log.info("Redis is back: rate limits use the shared counters again");
    this.hooks.onBackend?.("redis");
  }

  private async rebuildAll(accounts: Set<string>, at: number): Promise<Map<string, Windows>> {
    const fresh = new Map<string, Windows>();
    for (const accountId of accounts) {
      const windows = await this.rebuild(accountId, at);
      if (windows) fresh.set(accountId, windows);
    }
    return fresh;
  }

  /**
   * Raises the account's Redis windows to the store's counts, once per connection. Answers the
   * windows it covered when it did so now, null when it had been done.
   */
  private async rebuild(accountId: string, at: number): Promise<Windows | null> {
    if (this.rebuilt.has(accountId)) return null;
    const windows = { minute: windowStart(at, "minute"), day: windowStart(at, "day") };
    const rebuilt = this.rebuilt;
    let counts: WindowUse;
    try {
      counts = await this.seed(accountId, windows);
    } catch (err) {
      // the store is out, not Redis: keep Redis's counters and rebuild on a later call
      this.log.warn({ err }, "rate limiter: could not read the store to rebuild Redis's windows");
      return null;
    }
    await this.redis.raiseTo(accountId, windows, counts);
    // a reconnection meanwhile started a new set: this rebuild belongs to the old connection
    if (rebuilt === this.rebuilt) rebuilt.add(accountId);
    return windows;
  }
}

type Windows = { minute: number; day: number };
