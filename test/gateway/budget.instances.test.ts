import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevUpstream, startDevUpstream } from "../../src/gateway/dev-upstream.ts";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { PG_URL, REDIS_URL, storeKinds, type TestStore } from "../support/stores.ts";

/**
 * Two Tally processes on one PostgreSQL schema and one Redis, as behind a load balancer, share one
 * hard budget: the holds live in Redis (one script per check-and-hold), so 20 concurrent chat
 * requests split across both admit exactly the 5 the budget fits, whichever instance each hits.
 */

const UPSTREAM_KEY_ENV = "TALLY_TEST_BUDGET_UPSTREAM_KEY";
const UPSTREAM_KEY = "dev-upstream-budget-secret";
/** USD per token */
const PRICE = "0.000002";
const MAX_TOKENS = 1000;

describe.skipIf(!PG_URL || !REDIS_URL)(
  "two Tally instances on PostgreSQL + Redis share one hard budget",
  () => {
    let ts: TestStore;
    let upstream: DevUpstream;
    let a: ServerProcess;
    let b: ServerProcess;

    const ok = async (p: ReturnType<typeof call>, what: string) => {
      const res = await p;
      if (res.status !== 200 && res.status !== 201) throw new Error(`${what}: ${res.status} ${res.text}`);
      return res.body as Record<string, unknown>;
    };

    beforeAll(async () => {
      upstream = await startDevUpstream({ apiKey: UPSTREAM_KEY });
      ts = await storeKinds()
        .find((k) => k.name === "postgres")!
        .create();
      const env = { ...ts.env, REDIS_URL, [UPSTREAM_KEY_ENV]: UPSTREAM_KEY };
      const adminKey = `test-admin-${randomBytes(16).toString("hex")}`;
      [a, b] = await Promise.all([startServer({ env, adminKey }), startServer({ env, adminKey })]);
    });
    afterAll(async () => {
      await a?.cleanup();
      await b?.cleanup();
      await upstream?.close();
      await ts?.cleanup();
    });

    it("20 concurrent requests over both instances against a budget for 5: 5 answered, 15 refused with 402, 5 records", async () => {
      const root = a.adminKey;
      await ok(
        call(a, "POST", "/v1/upstreams", {
          key: root,
          body: {
            id: "dev",
            base_url: `${upstream.url}/v1`,
            api_key_env: UPSTREAM_KEY_ENV,
            timeout_ms: 10_000,
          },
        }),
        "upstream",
      );
      // the upstream waits 300 ms before answering: every request is admitted while the others are
      // still in flight, so only the holds (not committed spend) can keep the sixth out
      await ok(
        call(a, "POST", "/v1/models", {
          key: root,
          body: {
            id: "chat",
            unit: "token",
            kind: "chat",
            unit_price: PRICE,
            effective_from: "2020-01-01T00:00:00Z",
            upstream_id: "dev",
            upstream_model: "dev-chat:delay=300",
          },
        }),
        "model",
      );
      const account = await ok(
        call(a, "POST", "/v1/accounts", { key: root, body: { name: "Twin Budget" } }),
        "account",
      );
      const accountId = account.id as string;
      await ok(
        call(a, "POST", `/v1/accounts/${accountId}/licenses`, {
          key: root,
          body: { model_id: "chat", starts_at: "2020-01-01T00:00:00Z" },
        }),
        "license",
      );
      const user = await ok(
        call(a, "POST", `/v1/accounts/${accountId}/users`, {
          key: root,
          body: { username: "twin", role: "admin" },
        }),
        "user",
      );
      const key = (await ok(call(a, "POST", `/v1/users/${user.id}/keys`, { key: root, body: {} }), "key"))
        .key as string;
      // each request holds (its few input tokens + max_tokens 1000) x 0.000002 USD, a little over
      // 0.002 (decision 0012): 0.011 fits five such holds and not six
      await ok(
        call(b, "PUT", `/v1/accounts/${accountId}/budget`, {
          key: root,
          body: { monthly_usd: "0.011", mode: "hard" },
        }),
        "budget",
      );

      const clients = [a, b].map((s) => new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 }));
      const before = upstream.requests.length;
      const answers = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          try {
            const done = await clients[i % 2].chat.completions.create({
              model: "chat",
              max_tokens: MAX_TOKENS,
              messages: [{ role: "user", content: `hi ${i}` }],
            });
            expect(done.usage?.completion_tokens).toBeGreaterThan(0);
            return { instance: i % 2, status: 200, code: null };
          } catch (err) {
            if (!(err instanceof OpenAI.APIError)) throw err;
            return { instance: i % 2, status: err.status, code: err.code ?? null };
          }
        }),
      );
      const admitted = answers.filter((x) => x.status === 200);
      const refused = answers.filter((x) => x.status === 402);
      expect(admitted).toHaveLength(5);
      expect(refused).toHaveLength(15);
      for (const r of refused) expect(r.code).toBe("budget_exceeded");
      expect(upstream.requests.length - before).toBe(5);

      // settling follows the answer: wait for the usage log to hold the 5 records, then make sure
      // no sixth one comes
      let records: unknown[] = [];
      for (let i = 0; i < 100 && records.length < 5; i++) {
        const res = await call(a, "GET", "/usage", { key });
        expect(res.status).toBe(200);
        records = res.body as unknown[];
        if (records.length < 5) await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200));
      const fromB = await call(b, "GET", "/usage", { key });
      expect(fromB.body as unknown[]).toHaveLength(5);
      expect(records).toHaveLength(5);
    });
  },
);
