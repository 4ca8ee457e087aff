import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type Dec, parseDec } from "../domain/decimal.ts";
import { type BudgetReserver, type ReserveOptions, StaleSpendError } from "./budget-reserver.ts";
import { MemoryBudgetReserver } from "./memory-budget-reserver.ts";
import { RedisBudgetReserver } from "./redis-budget-reserver.ts";

const REDIS_URL = process.env.TALLY_TEST_REDIS_URL || "";

const usd = (s: string): Dec => parseDec(s);

interface Made {
  /** two reservers sharing their holds: two Redis connections, or the same process's one */
  a: BudgetReserver;
  b: BudgetReserver;
  cleanup(): Promise<void>;
}

const kinds: { name: string; make(graceMs?: number): Promise<Made> }[] = [
  {
    name: "memory",
    async make(graceMs) {
      const r = new MemoryBudgetReserver(Date.now, graceMs);
      return { a: r, b: r, cleanup: () => r.close() };
    },
  },
];
if (REDIS_URL) {
  kinds.push({
    name: "redis",
    async make(graceMs) {
      const keyPrefix = `tally:test:budget:${randomBytes(6).toString("hex")}:`;
      const a = new RedisBudgetReserver(REDIS_URL, { keyPrefix, graceMs });
      const b = new RedisBudgetReserver(REDIS_URL, { keyPrefix, graceMs });
      return {
        a,
        b,
        async cleanup() {
          await Promise.all([a.close(), b.close()]);
          const r = new Redis(REDIS_URL);
          const keys = await r.keys(`${keyPrefix}*`);
          if (keys.length > 0) await r.del(...keys);
          await r.quit();
        },
      };
    },
  });
}

/** Options for a hard limit with a fresh snapshot of spend. */
async function hard(r: BudgetReserver, limit: string, spent = "0", ttlMs = 30_000): Promise<ReserveOptions> {
  return { limit: usd(limit), spentSoFar: usd(spent), spentAsOf: await r.mark(), ttlMs };
}

describe.each(kinds)("BudgetReserver contract ($name)", (kind) => {
  let made: Made | null = null;
  afterEach(async () => {
    await made?.cleanup();
    made = null;
  });

  it("20 concurrent reservations against a budget for 5 admit exactly 5, across two reservers", async () => {
    made = await kind.make();
    const { a, b } = made;
    // 10 decimal places: exact only if the sum is done in exact units, not doubles
    const each = usd("1.2345678901");
    const options = await hard(a, "6.1728394505"); // exactly 5 x each
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).reserve("acct", each, options)),
    );
    expect(answers.filter((x) => x.ok)).toHaveLength(5);
    expect(await a.held("acct")).toBe(usd("6.1728394505"));
    const refused = answers.find((x) => !x.ok);
    expect(refused).toMatchObject({ ok: false, held: usd("6.1728394505"), available: 0n });
    // another account is not touched
    expect((await b.reserve("other", each, await hard(b, "1.2345678901"))).ok).toBe(true);
  });

  it("counts the spend so far: 7 of 10 spent leaves room for 3 of 1", async () => {
    made = await kind.make();
    const { a } = made;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await a.reserve("acct", usd("1"), await hard(a, "10", "7")));
    expect(answers.map((x) => x.ok)).toEqual([true, true, true, false, false]);
    expect(answers[2]).toMatchObject({ ok: true, held: usd("2") });
    expect(answers[3]).toMatchObject({ ok: false, held: usd("3"), available: 0n });
    // nothing left: even a free request is refused; over the limit already: available is negative
    expect((await a.reserve("acct", 0n, await hard(a, "10", "7"))).ok).toBe(false);
    expect(await a.reserve("x", usd("1"), await hard(a, "10", "12"))).toMatchObject({
      ok: false,
      available: usd("-2"),
    });
  });

  it("holds expire, so a crashed instance's reservations free the budget", async () => {
    made = await kind.make();
    const { a, b } = made;
    const first = await a.reserve("acct", usd("5"), await hard(a, "5", "0", 150));
    expect(first.ok).toBe(true);
    expect((await b.reserve("acct", usd("1"), await hard(b, "5"))).ok).toBe(false);
    await sleep(250);
    expect(await b.held("acct")).toBe(0n);
    expect((await b.reserve("acct", usd("5"), await hard(b, "5"))).ok).toBe(true);
    // the expired hold cannot be settled or released any more
    if (!first.ok) throw new Error("unreachable");
    expect(await a.settle(first.holdId, usd("1"))).toBe(false);
    expect(await a.release(first.holdId)).toBe(false);
  });

  it("renew keeps a long request's hold past its first ttl", async () => {
    made = await kind.make();
    const { a } = made;
    const hold = await a.reserve("acct", usd("4"), await hard(a, "5", "0", 200));
    if (!hold.ok) throw new Error("refused");
    await sleep(100);
    expect(await a.renew(hold.holdId, 2_000)).toBe(true);
    await sleep(200);
    expect(await a.held("acct")).toBe(usd("4"));
    expect((await a.reserve("acct", usd("2"), await hard(a, "5"))).ok).toBe(false);
  });

  it("settling to a smaller real cost releases the rest at once", async () => {
    made = await kind.make();
    const { a, b } = made;
    const hold = await a.reserve("acct", usd("5"), await hard(a, "5"));
    if (!hold.ok) throw new Error("refused");
    expect((await b.reserve("acct", usd("0.000000000000000001"), await hard(b, "5"))).ok).toBe(false);
    expect(await a.settle(hold.holdId, usd("1.75"))).toBe(true);
    expect(await b.held("acct")).toBe(usd("1.75"));
    expect((await b.reserve("acct", usd("3.25"), await hard(b, "5"))).ok).toBe(true);
    expect((await b.reserve("acct", usd("0.000000000000000001"), await hard(b, "5"))).ok).toBe(false);
  });

  it("a released hold counts for a spend read taken before its release, never after: no cost counted twice or not at all", async () => {
    made = await kind.make();
    const { a, b } = made;
    const before = await b.mark(); // b reads spend now: 0, the event below is not committed yet
    const hold = await a.reserve("acct", usd("3"), await hard(a, "5"));
    if (!hold.ok) throw new Error("refused");
    await a.settle(hold.holdId, usd("3"));
    // ...the event (cost 3) is committed, then:
    expect(await a.release(hold.holdId)).toBe(true);
    await sleep(10);
    // b's stale read (spent 0) still counts the hold: 5 - 0 - 3 leaves 2, so 2.5 is refused
    const stale = { limit: usd("5"), spentSoFar: 0n, spentAsOf: before, ttlMs: 30_000 };
    expect(await b.reserve("acct", usd("2.5"), stale)).toMatchObject({ ok: false, held: usd("3") });
    // a read after the release sees the event (spent 3) and no longer counts the hold: 2 fits
    expect(await b.reserve("acct", usd("2"), await hard(b, "5", "3"))).toMatchObject({ ok: true, held: 0n });
    // a released hold is no longer running
    expect(await a.held("acct")).toBe(usd("2"));
    expect(await a.settle(hold.holdId, usd("1"))).toBe(false);
  });

  it("without a limit (soft budgets only) admits everything and still holds it", async () => {
    made = await kind.make();
    const { a, b } = made;
    const open = { limit: null, spentSoFar: usd("100"), spentAsOf: await a.mark(), ttlMs: 30_000 };
    expect(await a.reserve("acct", usd("7"), open)).toMatchObject({ ok: true, held: 0n });
    expect(await b.reserve("acct", usd("7"), open)).toMatchObject({ ok: true, held: usd("7") });
    expect(await a.held("acct")).toBe(usd("14"));
  });

  it("refuses to reserve against a read of spend older than the release grace", async () => {
    made = await kind.make(300);
    const { a } = made;
    const old = (await a.mark()) - 1_000;
    await expect(
      a.reserve("acct", usd("1"), { limit: usd("5"), spentSoFar: 0n, spentAsOf: old, ttlMs: 1_000 }),
    ).rejects.toBeInstanceOf(StaleSpendError);
    expect(await a.held("acct")).toBe(0n);
  });

  it("mark never runs ahead of the reserver's clock", async () => {
    made = await kind.make(300);
    const { a } = made;
    // a hold released at t is counted by every snapshot marked before t
    const mark = await a.mark();
    const hold = await a.reserve("acct", usd("1"), await hard(a, "5"));
    if (!hold.ok) throw new Error("refused");
    await a.release(hold.holdId);
    const snap = { limit: usd("1"), spentSoFar: 0n, spentAsOf: mark, ttlMs: 1_000 };
    expect((await a.reserve("acct", usd("1"), snap)).ok).toBe(false);
  });
});

describe.runIf(REDIS_URL)("RedisBudgetReserver", () => {
  it("keys expire after the account's last hold, so idle accounts leave nothing behind", async () => {
    const keyPrefix = `tally:test:budget:${randomBytes(6).toString("hex")}:`;
    const r = new RedisBudgetReserver(REDIS_URL, { keyPrefix });
    const raw = new Redis(REDIS_URL);
    try {
      await r.reserve("acct", usd("1"), {
        limit: usd("5"),
        spentSoFar: 0n,
        spentAsOf: await r.mark(),
        ttlMs: 5_000,
      });
      const keys = await raw.keys(`${keyPrefix}*`);
      expect(keys.length).toBe(2); // exp and amt; rel appears on the first release
      for (const k of keys) {
        const ttl = await raw.pttl(k);
        expect(ttl).toBeGreaterThan(4_000);
        expect(ttl).toBeLessThanOrEqual(6_000);
      }
    } finally {
      await r.close();
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      await raw.quit();
    }
  });
});

describe("MemoryBudgetReserver", () => {
  it("drops expired holds", async () => {
    const c = { at: Date.parse("2026-11-30T12:00:00Z") };
    const r = new MemoryBudgetReserver(() => c.at);
    for (let i = 0; i < 50; i++) {
      await r.reserve(`acct-${i % 5}`, usd("1"), {
        limit: null,
        spentSoFar: 0n,
        spentAsOf: c.at,
        ttlMs: 1_000,
      });
    }
    expect(r.size).toBe(50);
    c.at += 1_000;
    for (let i = 0; i < 5; i++) expect(await r.held(`acct-${i}`)).toBe(0n);
    expect(r.size).toBe(0);
    // accounts never seen again are dropped too, at most a minute later
    await r.reserve("gone", usd("1"), { limit: null, spentSoFar: 0n, spentAsOf: c.at, ttlMs: 1_000 });
    c.at += 60_000;
    await r.reserve("new", usd("1"), { limit: null, spentSoFar: 0n, spentAsOf: c.at, ttlMs: 1_000 });
    expect(r.size).toBe(1);
  });
});
