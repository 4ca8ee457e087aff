import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import {
  accountTotals,
  exact,
  grantLicense,
  NOT_LICENSED_TEXT,
  report,
  SLUG,
  SUCCESS,
  storedEvents,
  subscribeToPlan,
  units,
  upsertModel,
} from "./license-world.ts";

describe.each(storeKinds())("POST /v1/licenses/models/{model_slug}/usage: happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await grantLicense(h, w.account.id);
  });
  afterEach(async () => h.close());

  it("records one image event for the key and its user, as the seed's snippet sends it", async () => {
    const res = await report(h, w.admin.key, { body: { number_of_generations: 1 } });
    expectStatus(res, 200);
    expect(res.json()).toEqual(SUCCESS);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const events = await storedEvents(h, w.account.id);
    expect(events).toHaveLength(1);
    const e = events[0];
    expect({
      ts: e.ts,
      userId: e.userId,
      keyId: e.keyId,
      modelId: e.modelId,
      apiName: e.apiName,
      endpoint: e.endpoint,
      kind: e.kind,
      unit: e.unit,
      quantity: e.quantity,
      unitPrice: e.unitPrice,
      cost: e.cost,
      currency: e.currency,
      statusActive: e.statusActive,
    }).toEqual({
      ts: h.clock.now(),
      userId: w.admin.id,
      keyId: w.admin.keyId,
      modelId: SLUG,
      apiName: SLUG,
      endpoint: "/v1/licenses/models/{model_slug}/usage",
      kind: "image",
      unit: "image",
      quantity: units(1),
      unitPrice: exact("0.025"),
      cost: exact("0.025"),
      currency: "USD",
      statusActive: true,
    });
    expect(e.eventId).toMatch(/^license-report:[0-9a-f-]{36}$/);
  });

  it("counts an empty JSON object as one generation", async () => {
    expectStatus(await report(h, w.admin.key, { body: {} }), 200);
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 1, quantity: units(1), cost: exact("0.025") },
    ]);
  });

  it("ignores unknown body fields, as FastAPI does", async () => {
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 2, note: "x" } }), 200);
    expect((await storedEvents(h, w.account.id)).map((e) => e.quantity)).toEqual([units(2)]);
  });

  it("records a bulk report as one event of that quantity, cost exactly quantity x price", async () => {
    const res = await report(h, w.admin.key, { body: { number_of_generations: 50 } });
    expectStatus(res, 200);
    expect(res.json()).toEqual(SUCCESS);
    const events = await storedEvents(h, w.account.id);
    expect(events).toHaveLength(1);
    expect(events[0].quantity).toBe(units(50));
    expect(events[0].cost).toBe(exact("1.25"));
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 1, quantity: units(50), cost: exact("1.25") },
    ]);
    // the key family (per key and user) sees it too
    const byKey = await h.services.query.totals({ accountId: w.account.id, family: "key" });
    expect(byKey.map((l) => [l.keyId, l.userId, l.quantity, l.cost])).toEqual([
      [w.admin.keyId, w.admin.id, units(50), exact("1.25")],
    ]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("accepts the maximum of 1,000,000 generations in one report, exactly priced", async () => {
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 1_000_000 } }), 200);
    expect(await accountTotals(h, w.account.id)).toEqual([
      {
        modelId: SLUG,
        kind: "image",
        unit: "image",
        requests: 1,
        quantity: units(1_000_000),
        cost: exact("25000"),
      },
    ]);
  });

  it("sums many reports exactly, per key and user", async () => {
    for (const n of [1, 2, 3]) {
      expectStatus(await report(h, w.admin.key, { body: { number_of_generations: n } }), 200);
    }
    expectStatus(await report(h, w.member.key, { body: { number_of_generations: 7 } }), 200);
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 4, quantity: units(13), cost: exact("0.325") },
    ]);
    const member = await h.services.query.totals({
      accountId: w.account.id,
      family: "key",
      userId: w.member.id,
    });
    expect(member.map((l) => [l.keyId, l.requests, l.quantity, l.cost])).toEqual([
      [w.member.keyId, 1, units(7), exact("0.175")],
    ]);
  });

  it("prices each report at the model's price in force at that moment", async () => {
    await upsertModel(h, {
      id: SLUG,
      unit: "image",
      kind: "image",
      unit_price: "0.03",
      effective_from: "2025-06-15T13:00:00Z",
    });
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 2 } }), 200);
    h.clock.set("2025-06-15T13:00:00Z");
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 2 } }), 200);
    const events = await storedEvents(h, w.account.id);
    expect(events.map((e) => [e.unitPrice, e.cost])).toEqual([
      [exact("0.025"), exact("0.05")],
      [exact("0.03"), exact("0.06")],
    ]);
  });

  it("reads a JSON body sent without a content type, as FastAPI does", async () => {
    const res = await report(h, w.admin.key, { raw: '{"number_of_generations": 4}' });
    expectStatus(res, 200);
    expect((await storedEvents(h, w.account.id)).map((e) => e.quantity)).toEqual([units(4)]);
  });

  it("accepts a JSON content type with a charset", async () => {
    const res = await report(h, w.admin.key, {
      raw: '{"number_of_generations": 3}',
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expectStatus(res, 200);
    expect((await storedEvents(h, w.account.id)).map((e) => e.quantity)).toEqual([units(3)]);
  });

  it("without an Idempotency-Key, every report counts", async () => {
    for (let i = 0; i < 3; i++) {
      expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 1 } }), 200);
    }
    const events = await storedEvents(h, w.account.id);
    expect(events).toHaveLength(3);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
  });

  it("with an Idempotency-Key, a retried report counts once and answers 200 again", async () => {
    const headers = { "idempotency-key": "gen-batch-0001" };
    const first = await report(h, w.admin.key, { body: { number_of_generations: 5 }, headers });
    const again = await report(h, w.admin.key, { body: { number_of_generations: 5 }, headers });
    expectStatus(first, 200);
    expectStatus(again, 200);
    expect(again.json()).toEqual(SUCCESS);
    const events = await storedEvents(h, w.account.id);
    expect(events.map((e) => [e.eventId, e.quantity])).toEqual([
      ["license-report:flux-1-dev:gen-batch-0001", units(5)],
    ]);
    // another key is another report
    const other = await report(h, w.admin.key, {
      body: { number_of_generations: 5 },
      headers: { "idempotency-key": "gen-batch-0002" },
    });
    expectStatus(other, 200);
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 2, quantity: units(10), cost: exact("0.25") },
    ]);
  });

  it("20 concurrent retries with one Idempotency-Key store exactly one event, all answered 200", async () => {
    const headers = { "idempotency-key": "retry-storm" };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        report(h, w.member.key, { body: { number_of_generations: 3 }, headers }),
      ),
    );
    for (const res of answers) {
      expectStatus(res, 200);
      expect(res.json()).toEqual(SUCCESS);
    }
    const events = await storedEvents(h, w.account.id);
    expect(events).toHaveLength(1);
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 1, quantity: units(3), cost: exact("0.075") },
    ]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("an Idempotency-Key is scoped to the model: the same key on two models counts twice", async () => {
    await upsertModel(h, { id: "flux-1-kontext-dev", unit: "image", kind: "image", unit_price: "0.04" });
    await grantLicense(h, w.account.id, "flux-1-kontext-dev", { starts_at: "2020-01-01T00:00:00Z" });
    const headers = { "idempotency-key": "k-1" };
    expectStatus(await report(h, w.admin.key, { body: {}, headers }), 200);
    expectStatus(await report(h, w.admin.key, { slug: "flux-1-kontext-dev", body: {}, headers }), 200);
    const events = await storedEvents(h, w.account.id);
    expect(events.map((e) => e.eventId).sort()).toEqual([
      "license-report:flux-1-dev:k-1",
      "license-report:flux-1-kontext-dev:k-1",
    ]);
  });

  it("honours a license window to the second: 403 before starts_at, 200 from it, 403 at ends_at", async () => {
    const model = "flux-tools";
    await upsertModel(h, {
      id: model,
      unit: "image",
      kind: "image",
      unit_price: "0.01",
      effective_from: "2020-01-01T00:00:00Z",
    });
    await grantLicense(h, w.account.id, model, {
      starts_at: "2025-07-01T00:00:00Z",
      ends_at: "2025-08-01T00:00:00Z",
    });
    const at = async (iso: string) => {
      h.clock.set(iso);
      return report(h, w.admin.key, { slug: model, body: { number_of_generations: 1 } });
    };
    const before = await at("2025-06-30T23:59:59Z");
    expectStatus(before, 403);
    expect(before.json()).toEqual({ detail: NOT_LICENSED_TEXT });
    expectStatus(await at("2025-06-30T23:59:59.999Z"), 403);
    expectStatus(await at("2025-07-01T00:00:00Z"), 200);
    expectStatus(await at("2025-07-31T23:59:59Z"), 200);
    const after = await at("2025-08-01T00:00:00Z");
    expectStatus(after, 403);
    expect(after.json()).toEqual({ detail: NOT_LICENSED_TEXT });
    const events = await storedEvents(h, w.account.id);
    expect(events.map((e) => new Date(e.ts).toISOString())).toEqual([
      "2025-07-01T00:00:00.000Z",
      "2025-07-31T23:59:59.000Z",
    ]);
  });

  it("a renewed license works after an expired one", async () => {
    const model = "flux-tools";
    await upsertModel(h, { id: model, unit: "image", kind: "image", unit_price: "0.01" });
    await grantLicense(h, w.account.id, model, {
      starts_at: "2025-01-01T00:00:00Z",
      ends_at: "2025-02-01T00:00:00Z",
    });
    expectStatus(await report(h, w.admin.key, { slug: model, body: {} }), 403);
    await grantLicense(h, w.account.id, model, { starts_at: "2025-06-01T00:00:00Z", ends_at: null });
    expectStatus(await report(h, w.admin.key, { slug: model, body: {} }), 200);
  });

  it("a plan whose allow list names the model lets the report through", async () => {
    await subscribeToPlan(h, w.account.id, { id: "licensed", model_whitelist: [SLUG, "gpt-mini"] });
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 2 } }), 200);
  });

  it("a plan whose block list names other models lets the report through", async () => {
    await subscribeToPlan(h, w.account.id, { id: "no-chat", model_blacklist: ["gpt-mini"] });
    expectStatus(await report(h, w.admin.key, { body: {} }), 200);
  });

  it("is never refused for rate-limit reasons", async () => {
    await subscribeToPlan(h, w.account.id, { id: "tiny", requests_per_minute: 1, requests_per_day: 1 });
    for (let i = 0; i < 5; i++) {
      expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 1 } }), 200);
    }
    expect(await storedEvents(h, w.account.id)).toHaveLength(5);
  });
});
