import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ONE, parseDec } from "../../src/domain/decimal.ts";
import { QueryService } from "../../src/query/usage-query.ts";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";

/**
 * Crash safety: the real server takes concurrent single-event and batch requests, gets SIGKILL
 * in the middle of the load, and restarts on the same database. Every event id that was
 * acknowledged (2xx) must be stored exactly once, and the rollups must still equal the raw events.
 */

const LOOPS = 8;
const LOAD_MS = 2000;
const KILL_AFTER_MS = 1500;

interface Ack {
  id: string;
  usageId: string;
}

describe.each(storeKinds())("crash safety of the real server ($name)", (kind) => {
  let ts: TestStore;
  let server: ServerProcess | null = null;
  beforeEach(async () => {
    ts = await kind.create();
  });
  afterEach(async () => {
    await server?.cleanup();
    server = null;
    await ts.cleanup();
  });

  const start = (adminKey?: string) =>
    kind.name === "postgres"
      ? startServer({ env: ts.env, adminKey })
      : startServer({ dbPath: ts.env.TALLY_DB, adminKey });

  it("keeps every acknowledged event exactly once across kill -9 and restart", async () => {
    server = await start();
    const root = server.adminKey;
    const account = await call(server, "POST", "/v1/accounts", { key: root, body: { name: "Crash Co" } });
    expect(account.status).toBe(201);
    const accountId = (account.body as { id: string }).id;
    const user = await call(server, "POST", `/v1/accounts/${accountId}/users`, {
      key: root,
      body: { username: "ops", role: "admin" },
    });
    const key = await call(server, "POST", `/v1/users/${(user.body as { id: string }).id}/keys`, {
      key: root,
      body: {},
    });
    const secret = (key.body as { key: string }).key;
    const model = await call(server, "POST", "/v1/models", {
      key: root,
      body: {
        id: "crash-model",
        unit: "request",
        kind: "other",
        unit_price: "0.0043",
        effective_from: "2020-01-01T00:00:00Z",
      },
    });
    expect(model.status).toBe(201);

    const acked = new Map<string, string>();
    let failures = 0;
    let stop = false;
    const record = (acks: Ack[]) => {
      for (const a of acks) {
        const before = acked.get(a.id);
        // a retry of an acknowledged id must name the same stored event
        if (before !== undefined) expect(a.usageId).toBe(before);
        acked.set(a.id, a.usageId);
      }
    };
    const loop = async (n: number) => {
      let i = 0;
      let last: unknown = null;
      const url = `${server!.url}/v1/events`;
      while (!stop) {
        i += 1;
        const retry = last !== null && i % 5 === 0;
        const body = retry
          ? last
          : n % 2 === 0
            ? { id: `l${n}-${i}`, model_id: "crash-model", quantity: 1 }
            : {
                events: Array.from({ length: 25 }, (_, j) => ({
                  id: `l${n}-${i}-${j}`,
                  model_id: "crash-model",
                  quantity: 1,
                })),
              };
        last = body;
        try {
          const res = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", "x-key": secret },
            body: JSON.stringify(body),
          });
          if (res.status >= 200 && res.status < 300) {
            const json = (await res.json()) as {
              rejected: unknown[];
              results: { id: string; usage_id: string }[];
            };
            expect(json.rejected).toEqual([]);
            record(json.results.map((r) => ({ id: r.id, usageId: r.usage_id })));
          } else failures += 1;
        } catch {
          // the server died under us: the request is unacknowledged
          failures += 1;
          if (stop) break;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const began = performance.now();
    const loops = Array.from({ length: LOOPS }, (_, n) => loop(n));
    await new Promise((r) => setTimeout(r, KILL_AFTER_MS));
    await server.kill();
    const killedAt = performance.now() - began;
    await new Promise((r) => setTimeout(r, Math.max(0, LOAD_MS - killedAt)));
    stop = true;
    await Promise.all(loops);
    expect(acked.size, "some events were acknowledged before the kill").toBeGreaterThan(100);
    expect(failures, "some requests were cut off by the kill").toBeGreaterThan(0);

    // restart on the same database: acknowledged ids are there, and retries are duplicates
    server = await start(root);
    const sample = [...acked.keys()].filter((_, i) => i % Math.max(1, Math.floor(acked.size / 500)) === 0);
    const retry = await call(server, "POST", "/v1/events", {
      key: secret,
      body: { events: sample.map((id) => ({ id, model_id: "crash-model", quantity: 1 })) },
    });
    expect(retry.status).toBe(200);
    const rb = retry.body as {
      accepted: number;
      duplicates: number;
      results: { id: string; usage_id: string }[];
    };
    expect([rb.accepted, rb.duplicates]).toEqual([0, sample.length]);
    for (const r of rb.results) expect(r.usage_id).toBe(acked.get(r.id));
    const after = await call(server, "POST", "/v1/events", {
      key: secret,
      body: { id: "after-restart", model_id: "crash-model", quantity: 1 },
    });
    expect((after.body as { accepted: number }).accepted).toBe(1);
    expect(await server.stop()).toBe(0);
    server = null;

    // read the database the server left behind
    const store = ts.store;
    const events = await store.listEvents({ accountId, skip: 0, limit: 1_000_000 });
    const count = new Map<string, number>();
    for (const e of events) count.set(e.eventId, (count.get(e.eventId) ?? 0) + 1);
    const missing = [...acked.keys()].filter((id) => !count.has(id));
    expect(missing, "acknowledged ids missing after the crash").toEqual([]);
    expect([...count.entries()].filter(([, c]) => c !== 1)).toEqual([]);
    for (const e of events) if (acked.has(e.eventId)) expect(e.usageId).toBe(acked.get(e.eventId));
    expect(await store.verifyRollups()).toEqual([]);
    const [line] = await new QueryService(store).totals({ accountId });
    expect([line.requests, line.quantity, line.cost]).toEqual([
      events.length,
      BigInt(events.length) * ONE,
      BigInt(events.length) * parseDec("0.0043"),
    ]);
  });
});
