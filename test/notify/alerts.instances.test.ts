import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createServices, type Services } from "../../src/services.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { PG_URL, storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/**
 * Two instances on one PostgreSQL crossing the same thresholds at the same moment: each threshold
 * is recorded once and has one outbox row per endpoint (the firing's key and the message ids
 * derived from it), however the two evaluations interleave.
 */
const postgres = storeKinds().find((k) => k.name === "postgres");

describe.skipIf(!postgres)("alerts across two instances on PostgreSQL", () => {
  let h: Harness;
  let w: World;
  let second: Services;

  beforeEach(async () => {
    h = await createHarness(postgres!, { realClock: true });
    w = await buildWorld(h);
    const schema = new URL(h.testStore.env.DATABASE_URL).searchParams.get("options")!.split("=")[1];
    const store = new PostgresStore(PG_URL, { schema, max: 4 });
    second = createServices(store, { rootKey: ROOT_KEY });
  });

  afterEach(async () => {
    await second.close();
    await h.close();
  });

  it("twenty rules crossed by both instances at once: twenty firings, one message each", async () => {
    const post = (url: string, payload: object) => h.request({ method: "POST", url, payload, key: ROOT_KEY });
    const hook = await post("/v1/webhooks", {
      url: "http://127.0.0.1:9/never-sent",
      events: ["usage.threshold_crossed"],
      account_id: w.account.id,
    });
    expectStatus(hook, 201);
    const rules: string[] = [];
    for (let i = 1; i <= 20; i++) {
      const rule = await post(`/v1/accounts/${w.account.id}/alerts`, {
        metric: "quantity",
        period: "month",
        thresholds: [80],
        basis: "absolute",
        value: i,
      });
      expectStatus(rule, 201);
      rules.push(rule.json().id);
    }
    expectStatus(
      await h.request({
        method: "POST",
        url: "/v1/events",
        payload: { events: [{ id: "big", model_id: "flux-1-dev", quantity: 100 }] },
        key: w.member.key,
      }),
      200,
    );
    await h.services.committer.idle();

    const now = Date.now();
    const fired = await Promise.all([
      h.services.alerts.evaluate(w.account.id, [now]),
      second.alerts.evaluate(w.account.id, [now]),
      h.services.alerts.evaluate(w.account.id, [now]),
      second.alerts.evaluate(w.account.id, [now]),
    ]);
    // every evaluation may believe it fired; the store keeps each firing once
    expect(fired.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(20);

    const store = h.services.store;
    for (const id of rules) {
      const firings = await store.listAlertFirings(
        id,
        Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1),
      );
      expect(firings.filter((f) => f.kind === "crossed")).toHaveLength(1);
    }
    const log = await store.listDeliveries(hook.json().id, { limit: 100, before: null });
    expect(log.messages).toHaveLength(20);
    expect(new Set(log.messages.map((m) => JSON.parse(m.body).data.rule_id))).toEqual(new Set(rules));
  });
});
