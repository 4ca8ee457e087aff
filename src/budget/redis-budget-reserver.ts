import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Redis, type RedisOptions } from "ioredis";
import { type Dec, joinCost, splitCost } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { REDIS_FAIL_FAST } from "../limits/redis-fail-fast.ts";
import {
  accountOfHold,
  type BudgetReserver,
  holdIdOf,
  RELEASE_GRACE_MS,
  type ReserveOptions,
  type ReserveOutcome,
  StaleSpendError,
} from "./budget-reserver.ts";

/*
 * Per account, three keys in one hash slot: `exp` (sorted set: hold id -> expiry, ms),
 * `amt` (hash: hold id -> "nano:atto", the amount split as the store splits costs, so that Lua's
 * doubles add it exactly) and `rel` (hash: hold id -> the instant its event was committed).
 * Every script reads the time from Redis (TIME), so all instances share one clock for expiry and
 * release. Money is compared as (nano, atto) pairs, never as one double.
 */
const PRELUDE = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- the keys outlive the account's longest hold, so an idle account leaves nothing behind
local function touch(now)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #last == 0 then return end
  local ttl = math.floor(tonumber(last[2]) - now) + 1000
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
local function live(id, now)
  local exp = redis.call('ZSCORE', KEYS[1], id)
  return exp and tonumber(exp) > now and redis.call('HEXISTS', KEYS[3], id) == 0
end
local function drop_expired(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(gone) do
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
end
-- sum of the holds counted for a snapshot taken at as_of (nil: only those still running)
local function sum_held(as_of)
  local hn, ha = 0, 0
  local amounts = redis.call('HGETALL', KEYS[2])
  for i = 1, #amounts, 2 do
    local rel = redis.call('HGET', KEYS[3], amounts[i])
    if (not rel) or (as_of and tonumber(rel) >= as_of) then
      local n, a = string.match(amounts[i + 1], '^(-?%d+):(%d+)$')
      hn = hn + tonumber(n)
      ha = ha + tonumber(a)
    end
  end
  return hn + math.floor(ha / 1000000000), ha % 1000000000
end
`;

/**
 * ARGV: hold id, amount nano, amount atto, headroom nano, headroom atto ('' = no limit), spent as-of,
 * grace ms, ttl ms. Returns {1, now, held nano, held atto} when held, {0, ...} when refused,
 * {-1, now} when the snapshot is stale. `fits` is domain/budget.ts's rule on (nano, atto) pairs:
 * something is left, and the amount is no more than what is left.
 */
const RESERVE = `${PRELUDE}
local now = clock()
local as_of = tonumber(ARGV[6])
if as_of < now - tonumber(ARGV[7]) then return {-1, now} end
drop_expired(now)
local hn, ha = sum_held(as_of)
if ARGV[4] ~= '' then
  local avn, ava = tonumber(ARGV[4]) - hn, tonumber(ARGV[5]) - ha
  if ava < 0 then
    ava = ava + 1000000000
    avn = avn - 1
  end
  local an, aa = tonumber(ARGV[2]), tonumber(ARGV[3])
  local left = avn > 0 or (avn == 0 and ava > 0)
  local within = an < avn or (an == avn and aa <= ava)
  if not (left and within) then return {0, now, hn, ha} end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[8]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
touch(now)
return {1, now, hn, ha}
`;

/** ARGV: hold id, actual nano, actual atto. */
const SETTLE = `${PRELUDE}
local now = clock()
if not live(ARGV[1], now) then return {0, now} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return {1, now}
`;

/** ARGV: hold id, ttl ms. */
const RENEW = `${PRELUDE}
local now = clock()
if not live(ARGV[1], now) then return {0, now} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
touch(now)
return {1, now}
`;

/** ARGV: hold id, grace ms. The hold stays for snapshots taken before now, then expires. */
const RELEASE = `${PRELUDE}
local now = clock()
if not live(ARGV[1], now) then return {0, now} end
redis.call('HSET', KEYS[3], ARGV[1], now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
touch(now)
return {1, now}
`;

/** The running holds now. */
const HELD = `${PRELUDE}
local now = clock()
drop_expired(now)
local hn, ha = sum_held(nil)
return {1, now, hn, ha}
`;

type Reply = [number, number, number?, number?];

type ScriptRedis = Redis & {
  tallyBudgetReserve(k1: string, k2: string, k3: string, ...args: string[]): Promise<Reply>;
  tallyBudgetSettle(k1: string, k2: string, k3: string, ...args: string[]): Promise<Reply>;
  tallyBudgetRenew(k1: string, k2: string, k3: string, ...args: string[]): Promise<Reply>;
  tallyBudgetRelease(k1: string, k2: string, k3: string, ...args: string[]): Promise<Reply>;
  tallyBudgetHeld(k1: string, k2: string, k3: string): Promise<Reply>;
};

export interface RedisBudgetReserverOptions {
  /** Namespace for every key (tests use a unique one each). */
  keyPrefix?: string;
  graceMs?: number;
  redisOptions?: RedisOptions;
}

/** Redis's clock is read from replies; past this age a sample is refreshed before trusting it. */
const SAMPLE_MAX_AGE_MS = 10_000;
/** `mark` stays below Redis's clock by this much: TIME is truncated to ms, and clocks drift a little. */
const MARK_MARGIN_MS = 2;

/**
 * Holds in Redis, shared by every Tally instance pointing at it (REDIS_URL): each operation is one
 * script, so check-and-hold is atomic across instances.
 */
export class RedisBudgetReserver implements BudgetReserver {
  private readonly redis: ScriptRedis;
  private readonly prefix: string;
  private readonly graceMs: number;
  /** the latest Redis time seen, and this process's monotonic clock when it arrived */
  private sample: { redisMs: number; localMs: number } | null = null;

  constructor(url: string, options: RedisBudgetReserverOptions = {}) {
    this.redis = new Redis(url, { ...REDIS_FAIL_FAST, ...options.redisOptions }) as ScriptRedis;
    this.redis.defineCommand("tallyBudgetReserve", { numberOfKeys: 3, lua: RESERVE });
    this.redis.defineCommand("tallyBudgetSettle", { numberOfKeys: 3, lua: SETTLE });
    this.redis.defineCommand("tallyBudgetRenew", { numberOfKeys: 3, lua: RENEW });
    this.redis.defineCommand("tallyBudgetRelease", { numberOfKeys: 3, lua: RELEASE });
    this.redis.defineCommand("tallyBudgetHeld", { numberOfKeys: 3, lua: HELD });
    // ioredis reconnects by itself; without a listener an unreachable server would crash the process
    this.redis.on("error", () => {});
    this.prefix = options.keyPrefix ?? "tally:budget:";
    this.graceMs = options.graceMs ?? RELEASE_GRACE_MS;
  }

  /** Called on each (re)connection, once Redis answers commands. */
  onReady(listener: () => void): void {
    this.redis.on("ready", listener);
  }

  /**
   * Redis's clock, estimated from the latest reply: the time it carried plus the time elapsed here
   * since it arrived. That reply's time was taken before it arrived, so the estimate never runs
   * ahead of Redis (a later mark only makes more released holds count, never fewer).
   */
  async mark(): Promise<number> {
    const local = performance.now();
    if (!this.sample || local - this.sample.localMs > SAMPLE_MAX_AGE_MS) {
      const [s, us] = await this.call(() => this.redis.time());
      this.observe(Number(s) * 1000 + Math.floor(Number(us) / 1000));
    }
    const sample = this.sample as { redisMs: number; localMs: number };
    return Math.floor(sample.redisMs + (performance.now() - sample.localMs)) - MARK_MARGIN_MS;
  }

  async reserve(accountId: string, amount: Dec, o: ReserveOptions): Promise<ReserveOutcome> {
    const holdId = holdIdOf(accountId, randomUUID());
    const a = splitCost(amount);
    const headroom = o.limit === null ? null : splitCost(o.limit - o.spentSoFar);
    const reply = await this.call(() =>
      this.redis.tallyBudgetReserve(
        ...this.keys(accountId),
        holdId,
        a.nano.toString(),
        a.atto.toString(),
        headroom ? headroom.nano.toString() : "",
        headroom ? headroom.atto.toString() : "",
        String(Math.floor(o.spentAsOf)),
        String(this.graceMs),
        String(Math.max(1, Math.floor(o.ttlMs))),
      ),
    );
    this.observe(reply[1]);
    if (reply[0] === -1) throw new StaleSpendError(reply[1] - o.spentAsOf, this.graceMs);
    const held = joinCost(reply[2] ?? 0, reply[3] ?? 0);
    if (reply[0] === 1) return { ok: true, holdId, held };
    return { ok: false, held, available: o.limit === null ? 0n : o.limit - o.spentSoFar - held };
  }

  async settle(holdId: string, actualCost: Dec): Promise<boolean> {
    const c = splitCost(actualCost);
    return this.run(holdId, (keys) =>
      this.redis.tallyBudgetSettle(...keys, holdId, c.nano.toString(), c.atto.toString()),
    );
  }

  async renew(holdId: string, ttlMs: number): Promise<boolean> {
    return this.run(holdId, (keys) =>
      this.redis.tallyBudgetRenew(...keys, holdId, String(Math.max(1, Math.floor(ttlMs)))),
    );
  }

  async release(holdId: string): Promise<boolean> {
    return this.run(holdId, (keys) => this.redis.tallyBudgetRelease(...keys, holdId, String(this.graceMs)));
  }

  async held(accountId: string): Promise<Dec> {
    const reply = await this.call(() => this.redis.tallyBudgetHeld(...this.keys(accountId)));
    this.observe(reply[1]);
    return joinCost(reply[2] ?? 0, reply[3] ?? 0);
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private async run(
    holdId: string,
    fn: (keys: [string, string, string]) => Promise<Reply>,
  ): Promise<boolean> {
    const reply = await this.call(() => fn(this.keys(accountOfHold(holdId))));
    this.observe(reply[1]);
    return reply[0] === 1;
  }

  private observe(redisMs: number): void {
    this.sample = { redisMs, localMs: performance.now() };
  }

  private keys(accountId: string): [string, string, string] {
    // the hash tag keeps an account's keys in one slot, as the atomic scripts need
    const base = `${this.prefix}{${accountId}}:`;
    return [`${base}exp`, `${base}amt`, `${base}rel`];
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new DomainError("UNAVAILABLE", `Budget store unavailable: ${(err as Error).message}`);
    }
  }
}
