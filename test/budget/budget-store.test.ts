import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { v7 as uuidv7 } from "uuid";
import { afterEach, describe, expect, it } from "vitest";
import type { BudgetReserver } from "../../src/budget/budget-reserver.ts";
import { type BudgetAccount, BudgetService } from "../../src/budget/budget-service.ts";
import { MemoryBudgetReserver } from "../../src/budget/memory-budget-reserver.ts";
import { QuerySpendReader } from "../../src/budget/query-spend-reader.ts";
import { RedisBudgetReserver } from "../../src/budget/redis-budget-reserver.ts";
import { type Dec, parseDec } from "../../src/domain/decimal.ts";
import { QueryService } from "../../src/query/usage-query.ts";
import type { Store } from "../../src/store/store.ts";
import { usageEvent } from "../support/events.ts";
import { REDIS_URL, storeKinds, type TestStore } from "../support/stores.ts";

const usd = (s: string): Dec => parseDec(s);

async function newAccount(store: Store): Promise<string> {
  const id = `acct-${randomBytes(4).toString("hex")}`;
  await store.createAccount({ id, name: id, isEnabled: true, planId: null, createdAt: 0 });
  return id;
}

async function spendAt(
  store: Store,
  accountId: string,
  iso: string,
  cost: string,
  currency = "USD",
): Promise<void> {
  const c = usd(cost);
  await store.appendEvents([
    usageEvent({ accountId, eventId: uuidv7(), ts: Date.parse(iso), cost: c, unitPrice: c, currency }),
  ]);
}

describe.each(storeKinds())("budgets over the $name store", (kind) => {
  let made: TestStore | null = null;
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await made?.cleanup();
    made = null;
  });

  it("reads the month to date in the billing timezone and prepaid credit from rollups and payments", async () => {
    made = await kind.create();
    const { store } = made;
    const reader = new QuerySpendReader(new QueryService(store), store);
    const acct = await newAccount(store);
    // November in Kolkata (+05:30) is [Oct 31 18:30Z, Nov 30 18:30Z)
    await spendAt(store, acct, "2026-10-31T18:29:59.999Z", "100"); // October there
    await spendAt(store, acct, "2026-10-31T18:30:00.000Z", "0.000000000000000001");
    await spendAt(store, acct, "2026-11-15T09:07:00.123Z", "2.5");
    await spendAt(store, acct, "2026-11-30T18:29:59.999Z", "0.25");
    await spendAt(store, acct, "2026-11-30T18:30:00.000Z", "7"); // December there
    await spendAt(store, acct, "2026-11-15T09:07:00.123Z", "1000", "EUR"); // not USD: not counted
    const start = Date.parse("2026-10-31T18:30:00Z");
    const end = Date.parse("2026-11-30T18:30:00Z");
    expect(await reader.costBetween(acct, start, end)).toBe(usd("2.750000000000000001"));
    await store.createPayment({
      id: uuidv7(),
      accountId: acct,
      amountUsd: usd("150.5"),
      paidAt: 0,
      reference: null,
      createdAt: 0,
    });
    await store.createPayment({
      id: uuidv7(),
      accountId: acct,
      amountUsd: usd("0.5"),
      paidAt: 0,
      reference: null,
      createdAt: 0,
    });
    expect(await reader.credit(acct)).toEqual({ payments: usd("151"), cost: usd("109.750000000000000001") });
  });

  const reservers: { name: string; make(): Promise<[BudgetReserver, BudgetReserver]> }[] = [
    {
      name: "memory",
      async make() {
        const r = new MemoryBudgetReserver();
        closers.push(() => r.close());
        return [r, r];
      },
    },
  ];
  if (REDIS_URL) {
    reservers.push({
      name: "two Redis instances",
      async make() {
        const keyPrefix = `tally:test:budget:${randomBytes(6).toString("hex")}:`;
        const pair: [BudgetReserver, BudgetReserver] = [
          new RedisBudgetReserver(REDIS_URL, { keyPrefix }),
          new RedisBudgetReserver(REDIS_URL, { keyPrefix }),
        ];
        closers.push(async () => {
          await Promise.all(pair.map((r) => r.close()));
          const raw = new Redis(REDIS_URL);
          const keys = await raw.keys(`${keyPrefix}*`);
          if (keys.length > 0) await raw.del(...keys);
          await raw.quit();
        });
        return pair;
      },
    });
  }

  it.each(reservers)(
    "20 concurrent requests against a hard budget for 5 admit 5, committed to the store ($name)",
    async (r) => {
      made = await kind.create();
      const { store } = made;
      const reader = new QuerySpendReader(new QueryService(store), store);
      const [a, b] = await r.make();
      const services = [new BudgetService(a, reader), new BudgetService(b, reader)];
      const acct = await newAccount(store);
      await spendAt(store, acct, new Date().toISOString(), "95"); // already spent this month
      const account: BudgetAccount = {
        id: acct,
        billingTimezone: "America/New_York",
        billingMode: "postpaid",
        budget: { monthlyUsd: usd("100"), mode: "hard" },
      };
      const answers = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const service = services[i % 2];
          // each may cost up to 1 and really costs 1
          const admission = await service.reserve(account, usd("1"));
          if (admission.ok) {
            await service.finish(admission.hold, usd("1"), () =>
              spendAt(store, acct, new Date().toISOString(), "1"),
            );
          }
          return admission.ok;
        }),
      );
      expect(answers.filter(Boolean)).toHaveLength(5);
      const positions = await services[0].positions(account);
      expect(positions).toMatchObject([{ spent: usd("100"), held: 0n, available: 0n }]);
      expect(await services[1].check(account)).toMatchObject({
        allowed: false,
        refusal: { code: "budget_exceeded" },
      });
    },
  );
});
