import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { parseDec } from "../domain/decimal.ts";
import { FallbackBudgetReserver } from "./fallback-budget-reserver.ts";
import { RedisBudgetReserver } from "./redis-budget-reserver.ts";

const usd = (s: string) => parseDec(s);
const REDIS_URL = process.env.TALLY_TEST_REDIS_URL || "";

describe("FallbackBudgetReserver", () => {
  it("with Redis unreachable, holds this instance's reservations itself: still exactly 5 of 20", async () => {
    // nothing listens on port 1: every command fails, as with a lost Redis
    const redis = new RedisBudgetReserver("redis://127.0.0.1:1", { redisOptions: { connectTimeout: 200 } });
    const fallbacks: unknown[] = [];
    const r = new FallbackBudgetReserver(redis, Date.now, { onFallback: (err) => fallbacks.push(err) });
    try {
      const options = { limit: usd("5"), spentSoFar: 0n, spentAsOf: await r.mark(), ttlMs: 30_000 };
      expect(r.backend).toBe("memory");
      expect(fallbacks).toHaveLength(1);
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => r.reserve("acct", usd("1"), options)),
      );
      const held = answers.filter((a) => a.ok);
      expect(held).toHaveLength(5);
      const first = held[0];
      if (!first.ok) throw new Error("unreachable");
      // the hold is settled and released where it was made
      expect(await r.settle(first.holdId, usd("0.5"))).toBe(true);
      expect(await r.held("acct")).toBe(usd("4.5"));
      expect(await r.release(first.holdId)).toBe(true);
      expect(await r.held("acct")).toBe(usd("4"));
      expect(fallbacks).toHaveLength(1); // reported once per outage
    } finally {
      await r.close();
    }
  });

  it.runIf(REDIS_URL)("while Redis answers, its holds are the shared ones", async () => {
    const keyPrefix = `tally:test:budget:${randomBytes(6).toString("hex")}:`;
    const r = new FallbackBudgetReserver(new RedisBudgetReserver(REDIS_URL, { keyPrefix }));
    const other = new RedisBudgetReserver(REDIS_URL, { keyPrefix });
    try {
      const hold = await r.reserve("acct", usd("3"), {
        limit: usd("5"),
        spentSoFar: 0n,
        spentAsOf: await r.mark(),
        ttlMs: 30_000,
      });
      expect(hold.ok).toBe(true);
      expect(r.backend).toBe("redis");
      expect(await other.held("acct")).toBe(usd("3"));
      if (hold.ok) expect(await r.settle(hold.holdId, usd("1"))).toBe(true);
      expect(await other.held("acct")).toBe(usd("1"));
    } finally {
      await Promise.all([r.close(), other.close()]);
      const raw = new Redis(REDIS_URL);
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      await raw.quit();
    }
  });
});
