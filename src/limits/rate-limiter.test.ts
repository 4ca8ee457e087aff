import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRateLimiter } from "./memory-rate-limiter.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { RedisRateLimiter } from "./redis-rate-limiter.ts";

const REDIS_URL = process.env.TALLY_TEST_REDIS_URL || "";

/** A clock the tests move by hand. */
function clock(iso: string) {
  const c = { at: Date.parse(iso), now: () => c.at };
  return c;
}

interface Made {
  limiter: RateLimiter;
  cleanup(): Promise<void>;
}

const kinds: { name: string; make(now: () => number): Promise<Made> }[] = [
  {
    name: "memory",
    async make(now) {
      const limiter = new MemoryRateLimiter(now);
      return { limiter, cleanup: () => limiter.close() };
    },
  },
];
if (REDIS_URL) {
  kinds.push({
    name: "redis",
    async make(now) {
      const keyPrefix = `tally:test:${randomBytes(6).toString("hex")}:`;
      const limiter = new RedisRateLimiter(REDIS_URL, { keyPrefix, now });
      return {
        limiter,
        async cleanup() {
          await limiter.close();
          const r = new Redis(REDIS_URL);
          const keys = await r.keys(`${keyPrefix}*`);
          if (keys.length > 0) await r.del(...keys);
          await r.quit();
        },
      };
    },
  });
}

describe.each(kinds)("RateLimiter contract ($name)", (kind) => {
  let made: Made | null = null;
  afterEach(async () => {
    await made?.cleanup();
    made = null;
  });

  it("counts each hit in the minute and day of its own timestamp, skipping ended windows", async () => {
    const c = clock("2025-06-15T12:00:30Z");
    made = await kind.make(c.now);
    const l = made.limiter;
    await l.record([
      { accountId: "a", ts: Date.parse("2025-06-15T12:00:10Z") },
      { accountId: "a", ts: Date.parse("2025-06-15T12:00:20Z") },
      { accountId: "a", ts: Date.parse("2025-06-15T11:59:59Z") }, // ended minute, today
      { accountId: "a", ts: Date.parse("2025-05-01T12:00:00Z") }, // a backfill: nowhere
      { accountId: "b", ts: Date.parse("2025-06-15T12:00:00Z") },
    ]);
    expect(await l.peek("a")).toEqual({ minute: 2, day: 3 });
    expect(await l.peek("b")).toEqual({ minute: 1, day: 1 });
    expect(await l.peek("c")).toEqual({ minute: 0, day: 0 });
    c.at = Date.parse("2025-06-15T12:01:00Z");
    expect(await l.peek("a")).toEqual({ minute: 0, day: 3 });
    c.at = Date.parse("2025-06-16T00:00:00Z");
    expect(await l.peek("a")).toEqual({ minute: 0, day: 0 });
  });

  it("consumes one only while both windows have room, and nothing when refused", async () => {
    const c = clock("2025-06-15T12:00:00Z");
    made = await kind.make(c.now);
    const l = made.limiter;
    const limits = { perMinute: 2, perDay: 3 };
    expect(await l.consume("a", limits)).toEqual({ allowed: true, used: { minute: 1, day: 1 } });
    expect(await l.consume("a", limits)).toEqual({ allowed: true, used: { minute: 2, day: 2 } });
    expect(await l.consume("a", limits)).toEqual({ allowed: false, used: { minute: 2, day: 2 } });
    expect(await l.peek("a")).toEqual({ minute: 2, day: 2 });
    c.at += 60_000;
    expect(await l.consume("a", limits)).toEqual({ allowed: true, used: { minute: 1, day: 3 } });
    expect(await l.consume("a", limits)).toEqual({ allowed: false, used: { minute: 1, day: 3 } });
    expect(await l.consume("a", { perMinute: null, perDay: null })).toEqual({
      allowed: true,
      used: { minute: 2, day: 4 },
    });
  });

  it("admits exactly the limit under concurrent calls", async () => {
    made = await kind.make(clock("2025-06-15T12:00:00Z").now);
    const l = made.limiter;
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => l.consume("a", { perMinute: 17, perDay: null })),
    );
    expect(answers.filter((a) => a.allowed)).toHaveLength(17);
    expect(await l.peek("a")).toEqual({ minute: 17, day: 17 });
  });
});

describe("MemoryRateLimiter", () => {
  it("drops ended windows, so counters do not grow without bound", async () => {
    const c = clock("2025-06-15T12:00:00Z");
    const l = new MemoryRateLimiter(c.now);
    for (let i = 0; i < 100; i++) {
      await l.record([{ accountId: `acct-${i}`, ts: c.at }]);
      c.at += 60_000;
    }
    // 100 day counters (still today) and at most the last two minute counters, not 100 of them
    expect(l.size).toBeLessThanOrEqual(102);
    c.at += 2 * 86_400_000;
    await l.peek("x");
    expect(l.size).toBe(0);
  });
});

describe.runIf(REDIS_URL)("RedisRateLimiter", () => {
  it("sets an expiry just past each window's end", async () => {
    const c = clock("2025-06-15T12:00:30Z");
    const keyPrefix = `tally:test:${randomBytes(6).toString("hex")}:`;
    const l = new RedisRateLimiter(REDIS_URL, { keyPrefix, now: c.now });
    const r = new Redis(REDIS_URL);
    try {
      await l.record([{ accountId: "a", ts: c.at }]);
      const minuteKey = `${keyPrefix}{a}:m:${Date.parse("2025-06-15T12:00:00Z")}`;
      const dayKey = `${keyPrefix}{a}:d:${Date.parse("2025-06-15T00:00:00Z")}`;
      expect(await r.get(minuteKey)).toBe("1");
      const minuteTtl = await r.pttl(minuteKey);
      expect(minuteTtl).toBeGreaterThan(85_000);
      expect(minuteTtl).toBeLessThanOrEqual(90_000);
      const dayTtl = await r.pttl(dayKey);
      // 11h59m30s to midnight, plus the minute of grace
      expect(dayTtl).toBeGreaterThan(43_100_000);
      expect(dayTtl).toBeLessThanOrEqual(43_170_000 + 60_000);
    } finally {
      await l.close();
      const keys = await r.keys(`${keyPrefix}*`);
      if (keys.length > 0) await r.del(...keys);
      await r.quit();
    }
  });

  it("answers UNAVAILABLE when Redis cannot be reached", async () => {
    const l = new RedisRateLimiter("redis://127.0.0.1:1", {
      redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => null },
    });
    await expect(l.peek("a")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await l.close();
  });
});
