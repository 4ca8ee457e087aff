import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServer } from "../support/server-process.ts";
import { PG_URL, REDIS_URL, storeKinds, type TestStore } from "../support/stores.ts";
import { RELIABILITY } from "./support/enabled.ts";
import {
  createModel,
  createTenant,
  type EventsAnswer,
  MODEL_ID,
  postEvents,
  proved,
  START_MS,
  sleep,
  tallyVerify,
} from "./support/tally.ts";

/**
 * Two Tally processes on one PostgreSQL schema and one Redis, as behind a load balancer: the same
 * event ids sent to both at the same moment are stored once and counted once (in the totals and in
 * the shared rate windows), and a plan of N requests a minute admits exactly N of N+k checks spread
 * over both.
 */

const IDS = 2400;
const BATCH = 100;
const SINGLES = 200;

interface Check {
  allowed: boolean;
  reason: string | null;
  windows: { minute: { remaining: number | null }; day: { remaining: number | null } };
}

async function limitsCheck(server: ServerProcess, key: string): Promise<{ status: number; body: Check }> {
  const res = await fetch(`${server.url}/v1/limits/check`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Check };
}

const utcDay = () => new Date().toISOString().slice(0, 10);

describe.runIf(RELIABILITY && PG_URL && REDIS_URL)("two instances on one PostgreSQL and Redis", () => {
  let ts: TestStore;
  let a: ServerProcess;
  let b: ServerProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    const postgres = storeKinds().find((k) => k.name === "postgres")!;
    ts = await postgres.create();
    env = { ...ts.env, REDIS_URL };
    a = await startServer({ env, timeoutMs: START_MS });
    b = await startServer({ env, adminKey: a.adminKey, timeoutMs: START_MS });
    await createModel(a);
  });
  afterAll(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await ts?.cleanup();
  });

  it("stores each of the same ids sent to both at once exactly once, and counts it in the shared window", async () => {
    const DAY_LIMIT = 1_000_000;
    const tenant = await createTenant(a, "Twin Co", {
      requests_per_minute: null,
      requests_per_day: DAY_LIMIT,
    });
    const dayAtStart = utcDay();
    const requests: unknown[] = [];
    for (let i = 0; i < IDS; i += BATCH) {
      requests.push({
        events: Array.from({ length: BATCH }, (_, j) => ({
          id: `twin-${i + j}`,
          model_id: MODEL_ID,
          quantity: 1,
        })),
      });
    }
    for (let i = 0; i < SINGLES; i++)
      requests.push({ id: `twin-single-${i}`, model_id: MODEL_ID, quantity: 1 });
    const total = IDS + SINGLES;

    // four workers; each request goes to both instances at the same moment
    const answers: EventsAnswer[] = [];
    const pending = [...requests];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let body = pending.shift(); body; body = pending.shift()) {
          const both = await Promise.all([
            postEvents(a.url, tenant.key, body),
            postEvents(b.url, tenant.key, body),
          ]);
          for (const r of both) {
            expect(r.status, "both instances acknowledge").toBe(200);
            answers.push(r.json!);
          }
        }
      }),
    );

    const byId = new Map<string, { accepted: number; duplicate: number; usageIds: Set<string> }>();
    for (const ans of answers) {
      expect(ans.rejected).toEqual([]);
      for (const r of ans.results) {
        const e = byId.get(r.id) ?? { accepted: 0, duplicate: 0, usageIds: new Set() };
        if (r.status === "inserted") e.accepted += 1;
        else if (r.status === "duplicate") e.duplicate += 1;
        e.usageIds.add(r.usage_id);
        byId.set(r.id, e);
      }
    }
    expect(byId.size).toBe(total);
    const notOnce = [...byId].filter(
      ([, e]) => e.accepted !== 1 || e.duplicate !== 1 || e.usageIds.size !== 1,
    );
    expect(notOnce.slice(0, 5), "ids not accepted exactly once with one usage id").toEqual([]);
    const accepted = answers.reduce((s, x) => s + x.accepted, 0);
    const duplicates = answers.reduce((s, x) => s + x.duplicates, 0);
    expect([accepted, duplicates]).toEqual([total, total]);

    const events = await ts.store.listEvents({ accountId: tenant.accountId, skip: 0, limit: 1_000_000 });
    const stored = new Map<string, number>();
    for (const e of events) stored.set(e.eventId, (stored.get(e.eventId) ?? 0) + 1);
    expect(stored.size).toBe(total);
    expect(
      [...stored.values()].every((n) => n === 1),
      "every id stored once",
    ).toBe(true);
    for (const e of events) expect(byId.get(e.eventId)?.usageIds.has(e.usageId)).toBe(true);
    expect(await ts.store.verifyRollups()).toEqual([]);

    // the shared day window counted each event once, whichever instance accepted it
    await sleep(500);
    const check = await limitsCheck(b, tenant.key);
    expect(check.status).toBe(200);
    const dayUsed = DAY_LIMIT - (check.body.windows.day.remaining ?? 0);
    // Each instance rebuilds the account's windows from the store at its first use of the
    // connection, which races with the other instance's commits (decision 0016): the window may be
    // off by at most the four workers' batches in flight, at each of the two rebuilds. Counting
    // the duplicates too (5,200) or the instances not sharing the window (about half) is far outside.
    const bound = 2 * 4 * BATCH;
    if (utcDay() === dayAtStart)
      expect(
        Math.abs(dayUsed - (total + 1)),
        `day window ${dayUsed} = ${total} events + 1 check, within the batches in flight at the rebuilds (${bound})`,
      ).toBeLessThanOrEqual(bound);

    const verify = await tallyVerify(ts.env);
    proved(
      "two instances, same ids",
      `${requests.length * 2} requests carrying ${total * 2} events (each id to both instances at once): ` +
        `accepted ${accepted}, duplicates ${duplicates}, stored ${events.length} distinct ids each once, ` +
        `shared day window ${dayUsed} for ${total} events + 1 check (off by ${dayUsed - total - 1}, bound ${bound}); tally verify: ${verify}`,
    );
  });

  it("admits exactly N of N+k limit checks spread over both instances", async () => {
    const N = 40;
    const K = 25;
    const tenant = await createTenant(a, "Limited Co", { requests_per_minute: N, requests_per_day: null });
    // the burst must fall inside one UTC minute
    const second = new Date().getUTCSeconds();
    if (second > 40) await sleep((61 - second) * 1000);
    const startedMinute = new Date().getUTCMinutes();
    const results = await Promise.all(
      Array.from({ length: N + K }, (_, i) => limitsCheck(i % 2 === 0 ? a : b, tenant.key)),
    );
    expect(new Date().getUTCMinutes(), "the burst stayed in one minute").toBe(startedMinute);
    for (const r of results) expect(r.status).toBe(200);
    const allowed = results.filter((r) => r.body.allowed).length;
    const refused = results.filter((r) => !r.body.allowed);
    expect(allowed, `allowed of ${N + K} with a plan of ${N} a minute`).toBe(N);
    expect(refused.every((r) => r.body.reason === "rate_limited")).toBe(true);
    // and neither instance admits one more afterwards
    for (const s of [a, b]) {
      const more = await limitsCheck(s, tenant.key);
      expect([more.body.allowed, more.body.reason, more.body.windows.minute.remaining]).toEqual([
        false,
        "rate_limited",
        0,
      ]);
    }
    const verify = await tallyVerify(ts.env);
    proved(
      "two instances, rate limit",
      `plan ${N}/minute, ${N + K} concurrent checks over both instances: ${allowed} allowed, ${refused.length} refused rate_limited, then both refuse; tally verify: ${verify}`,
    );
  });
});
