import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type Dec, parseDec, ZERO } from "../domain/decimal.ts";
import type { BudgetReserver } from "./budget-reserver.ts";
import { type BudgetAccount, BudgetService, type SpendReader } from "./budget-service.ts";
import { MemoryBudgetReserver } from "./memory-budget-reserver.ts";
import { RedisBudgetReserver } from "./redis-budget-reserver.ts";

const REDIS_URL = process.env.TALLY_TEST_REDIS_URL || "";
const usd = (s: string): Dec => parseDec(s);

/** A store's committed events and payments; reads can be held open to interleave other work. */
class FakeSpend implements SpendReader {
  events: { accountId: string; ts: number; cost: Dec }[] = [];
  payments = new Map<string, Dec>();
  calls: { accountId: string; start: number; end: number }[] = [];
  /** when set, a read takes its snapshot now and answers only after this resolves */
  gate: Promise<void> | null = null;

  async costBetween(accountId: string, start: number, end: number): Promise<Dec> {
    this.calls.push({ accountId, start, end });
    let sum = ZERO;
    for (const e of this.events) if (e.accountId === accountId && e.ts >= start && e.ts < end) sum += e.cost;
    if (this.gate) await this.gate;
    return sum;
  }

  async credit(accountId: string): Promise<{ payments: Dec; cost: Dec }> {
    let cost = ZERO;
    for (const e of this.events) if (e.accountId === accountId) cost += e.cost;
    const payments = this.payments.get(accountId) ?? ZERO;
    if (this.gate) await this.gate;
    return { payments, cost };
  }

  commit(accountId: string, cost: Dec): () => Promise<void> {
    return async () => {
      await sleep(1);
      this.events.push({ accountId, ts: Date.now(), cost });
    };
  }
}

const account = (over: Partial<BudgetAccount> = {}): BudgetAccount => ({
  id: "acct",
  billingTimezone: "UTC",
  billingMode: "postpaid",
  budget: { monthlyUsd: usd("5"), mode: "hard" },
  ...over,
});

interface Made {
  a: BudgetReserver;
  b: BudgetReserver;
  cleanup(): Promise<void>;
}

const kinds: { name: string; make(): Promise<Made> }[] = [
  {
    name: "memory",
    async make() {
      const r = new MemoryBudgetReserver();
      return { a: r, b: r, cleanup: () => r.close() };
    },
  },
];
if (REDIS_URL) {
  kinds.push({
    name: "redis, two instances",
    async make() {
      const keyPrefix = `tally:test:budget:${randomBytes(6).toString("hex")}:`;
      const a = new RedisBudgetReserver(REDIS_URL, { keyPrefix });
      const b = new RedisBudgetReserver(REDIS_URL, { keyPrefix });
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

describe.each(kinds)("BudgetService ($name)", (kind) => {
  let made: Made | null = null;
  afterEach(async () => {
    await made?.cleanup();
    made = null;
  });

  it("20 concurrent requests against a hard budget for 5 admit exactly 5, then settle and commit", async () => {
    made = await kind.make();
    const spend = new FakeSpend();
    const services = [new BudgetService(made.a, spend), new BudgetService(made.b, spend)];
    const acct = account({ budget: { monthlyUsd: usd("0.005"), mode: "hard" } });
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const service = services[i % 2];
        const admission = await service.reserve(acct, usd("0.001"));
        if (admission.ok)
          await service.finish(admission.hold, usd("0.001"), spend.commit("acct", usd("0.001")));
        return admission;
      }),
    );
    expect(answers.filter((x) => x.ok)).toHaveLength(5);
    const refused = answers.find((x) => !x.ok);
    expect(refused).toMatchObject({ ok: false, refusal: { code: "budget_exceeded", limit: "0.005" } });
    expect(spend.events).toHaveLength(5);
    // everything settled and committed: the store's spend alone fills the budget
    expect((await services[0].reserve(acct, usd("0.000001"))).ok).toBe(false);
    expect(await services[0].positions(acct)).toEqual([
      { kind: "budget", mode: "hard", limit: usd("0.005"), spent: usd("0.005"), held: ZERO, available: ZERO },
    ]);
  });

  it("one request after another: each counts once, the max-cost hold settled to the real cost", async () => {
    made = await kind.make();
    const spend = new FakeSpend();
    const service = new BudgetService(made.a, spend);
    const admitted: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      // each may cost up to 2 and really costs 1: a budget of 5 takes four (then 1 is left, 2 does not fit)
      const admission = await service.reserve(account(), usd("2"));
      admitted.push(admission.ok);
      if (admission.ok) await service.finish(admission.hold, usd("1"), spend.commit("acct", usd("1")));
      await sleep(5);
    }
    expect(admitted).toEqual([true, true, true, true, false, false]);
    expect((await service.reserve(account(), usd("1"))).ok).toBe(true);
  });

  it("a request finishing while another reads the spend is counted by the hold, not lost", async () => {
    made = await kind.make();
    const spend = new FakeSpend();
    const a = new BudgetService(made.a, spend);
    const b = new BudgetService(made.b, spend);
    const first = await a.reserve(account(), usd("3"));
    if (!first.ok) throw new Error("refused");
    // b reads the spend (0) and is held up before it reserves ...
    let open = () => {};
    spend.gate = new Promise((resolve) => {
      open = resolve;
    });
    const second = b.reserve(account(), usd("2.5"));
    await sleep(20);
    spend.gate = null;
    // ... while the first request settles, commits its event (cost 3) and releases its hold
    await a.finish(first.hold, usd("3"), spend.commit("acct", usd("3")));
    await sleep(10);
    open();
    // only 2 is really left: b must not be admitted on its stale read of 0
    expect(await second).toMatchObject({ ok: false, refusal: { held: "3", available: "2" } });
    await sleep(10);
    expect((await b.reserve(account(), usd("2"))).ok).toBe(true);
  });

  it("soft mode admits over the budget and says so", async () => {
    made = await kind.make();
    const spend = new FakeSpend();
    spend.events.push({ accountId: "acct", ts: Date.now(), cost: usd("4.5") });
    const service = new BudgetService(made.a, spend);
    const soft = account({ budget: { monthlyUsd: usd("5"), mode: "soft" } });
    expect(await service.reserve(soft, usd("0.25"))).toMatchObject({ ok: true, overBudget: [] });
    const over = await service.reserve(soft, usd("1"));
    expect(over).toMatchObject({ ok: true, overBudget: [{ kind: "budget", mode: "soft", limit: usd("5") }] });
    if (!over.ok) return;
    expect(over.hold?.amount).toBe(usd("1"));
    const check = await service.check(soft, usd("1"));
    expect(check).toMatchObject({ allowed: true, overBudget: [{ kind: "budget" }] });
  });

  it("prepaid: credit is payments - cost; a request beyond it gets the 402 data", async () => {
    made = await kind.make();
    const spend = new FakeSpend();
    spend.payments.set("acct", usd("10"));
    // last year's events count against credit too (credit is not monthly)
    spend.events.push({ accountId: "acct", ts: Date.parse("2025-01-01T00:00:00Z"), cost: usd("9.25") });
    const service = new BudgetService(made.a, spend);
    const prepaid = account({ billingMode: "prepaid", budget: null });
    const refused = await service.reserve(prepaid, usd("1"));
    expect(refused).toEqual({
      ok: false,
      refusal: {
        code: "insufficient_credit",
        message: "Insufficient prepaid credit: this request may cost up to 1 USD and 0.75 USD is available",
        limit: "10",
        spent: "9.25",
        held: "0",
        available: "0.75",
        requested: "1",
      },
    });
    expect((await service.reserve(prepaid, usd("0.75"))).ok).toBe(true);
    expect(await service.check(prepaid)).toMatchObject({ allowed: false, refusal: { available: "0" } });
    spend.payments.set("acct", usd("20"));
    expect(await service.check(prepaid)).toMatchObject({ allowed: true });
  });
});

describe("BudgetService", () => {
  it("reads the month to date in the account's billing timezone", async () => {
    const spend = new FakeSpend();
    const now = Date.parse("2026-11-30T20:00:00Z"); // already December 1st in Kolkata (+05:30)
    const service = new BudgetService(new MemoryBudgetReserver(() => now), spend, () => now);
    await service.reserve(account({ billingTimezone: "Asia/Kolkata" }), usd("1"));
    expect(spend.calls).toEqual([
      {
        accountId: "acct",
        start: Date.parse("2026-11-30T18:30:00Z"),
        end: Date.parse("2026-12-31T18:30:00Z"),
      },
    ]);
  });

  it("an account with no budget and no prepaid credit reserves and reads nothing", async () => {
    const spend = new FakeSpend();
    const reserver = new MemoryBudgetReserver();
    const service = new BudgetService(reserver, spend);
    expect(await service.reserve(account({ budget: null }), usd("1000"))).toEqual({
      ok: true,
      hold: null,
      overBudget: [],
    });
    expect(spend.calls).toEqual([]);
    expect(reserver.size).toBe(0);
    expect(await service.check(account({ budget: null }))).toEqual({
      allowed: true,
      overBudget: [],
      limits: [],
    });
  });

  it("a failed commit keeps the hold until it expires", async () => {
    const spend = new FakeSpend();
    const c = { at: Date.parse("2026-11-15T12:00:00Z") };
    const reserver = new MemoryBudgetReserver(() => c.at);
    const service = new BudgetService(reserver, spend, () => c.at);
    const admission = await service.reserve(account(), usd("4"), 60_000);
    if (!admission.ok) throw new Error("refused");
    await expect(
      service.finish(admission.hold, usd("3"), async () => {
        throw new Error("store down");
      }),
    ).rejects.toThrow("store down");
    expect(await reserver.held("acct")).toBe(usd("3"));
    c.at += 60_000;
    expect(await reserver.held("acct")).toBe(ZERO);
  });
});
