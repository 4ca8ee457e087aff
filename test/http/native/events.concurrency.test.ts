import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ONE, parseDec } from "../../../src/domain/decimal.ts";
import { buildApp } from "../../../src/http/app.ts";
import { createServices } from "../../../src/services.ts";
import { PostgresStore } from "../../../src/store/postgres/postgres-store.ts";
import { SqliteStore } from "../../../src/store/sqlite/sqlite-store.ts";
import type { Store } from "../../../src/store/store.ts";
import { createHarness, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

const POOL = 300;
const quantityOf = (i: number) => (i % 7) + 1;

interface Sent {
  key: string;
  payload: unknown;
  ids: number[];
}

/** 50 requests over one pool of ids: 25 overlapping batches and 25 single events, many ids in several. */
function requests(w: World): Sent[] {
  const out: Sent[] = [];
  for (let r = 0; r < 25; r++) {
    const ids = Array.from({ length: 40 }, (_, j) => (r * 13 + j) % POOL);
    out.push({
      key: r % 2 === 0 ? w.admin.key : w.member.key,
      ids,
      payload: {
        events: ids.map((i) => ({
          id: `c-${i}`,
          model_id: "flux-1-dev",
          quantity: quantityOf(i),
          timestamp: 1_750_000_000_000 + i * 1000,
        })),
      },
    });
  }
  for (let r = 0; r < 25; r++) {
    const i = (r * 37) % POOL;
    out.push({
      key: w.admin.key,
      ids: [i],
      payload: {
        id: `c-${i}`,
        model_id: "flux-1-dev",
        quantity: quantityOf(i),
        timestamp: 1_750_000_000_000 + i * 1000,
      },
    });
  }
  return out;
}

describe.each(storeKinds())("concurrent retries of POST /v1/events ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let second: { close(): Promise<void>; inject: Harness["app"]["inject"] } | null = null;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => {
    await second?.close();
    second = null;
    await h.close();
  });

  it("stores each id exactly once with exact totals, across two app instances on one database", async () => {
    // a second Tally instance over its own connection to the same database
    const store2: Store =
      kind.name === "postgres"
        ? new PostgresStore(h.testStore.env.DATABASE_URL, { max: 4 })
        : new SqliteStore(h.testStore.env.TALLY_DB);
    const services2 = createServices(store2, { rootKey: ROOT_KEY, now: h.clock.now });
    const app2 = await buildApp(services2);
    second = {
      inject: app2.inject.bind(app2),
      async close() {
        await app2.close();
        await services2.close();
      },
    };
    const sent = requests(w);
    const responses: {
      ids: number[];
      body: {
        accepted: number;
        duplicates: number;
        rejected: unknown[];
        results: { id: string; usage_id: string }[];
      };
    }[] = [];
    // three rounds of 50 concurrent requests: the first races on the ids, the later ones are retries
    for (let round = 0; round < 3; round++) {
      const order = sent
        .map((s, i) => ({ s, i }))
        .sort((a, b) => ((a.i * 31 + round * 17) % 50) - ((b.i * 31 + round * 17) % 50));
      const results = await Promise.all(
        order.map(({ s, i }) => {
          const inject = (i + round) % 2 === 0 ? h.app.inject.bind(h.app) : second!.inject;
          return inject({
            method: "POST",
            url: "/v1/events",
            headers: { authorization: `Bearer ${s.key}` },
            payload: s.payload as object,
          });
        }),
      );
      results.forEach((res, j) => {
        expect(res.statusCode, res.body).toBe(200);
        responses.push({ ids: order[j].s.ids, body: res.json() });
      });
    }
    const distinct = new Set(sent.flatMap((s) => s.ids));
    const totalSent = responses.reduce((n, r) => n + r.ids.length, 0);
    expect(responses.reduce((n, r) => n + r.body.accepted, 0)).toBe(distinct.size);
    expect(responses.reduce((n, r) => n + r.body.accepted + r.body.duplicates, 0)).toBe(totalSent);
    for (const r of responses) expect(r.body.rejected).toEqual([]);
    // every answer for an id names the one stored usage_id
    const usageIds = new Map<string, Set<string>>();
    for (const r of responses)
      for (const x of r.body.results) usageIds.set(x.id, (usageIds.get(x.id) ?? new Set()).add(x.usage_id));
    for (const [id, set] of usageIds) expect(set.size, id).toBe(1);

    const stored = await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10_000 });
    expect(stored.length).toBe(distinct.size);
    expect(new Set(stored.map((e) => e.eventId)).size).toBe(distinct.size);
    for (const e of stored) expect(usageIds.get(e.eventId)?.has(e.usageId), e.eventId).toBe(true);

    const quantity = [...distinct].reduce((s, i) => s + BigInt(quantityOf(i)), 0n);
    const [line] = await h.services.query.totals({ accountId: w.account.id });
    expect([line.requests, line.quantity, line.cost]).toEqual([
      distinct.size,
      quantity * ONE,
      quantity * parseDec("0.025"),
    ]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });
});
