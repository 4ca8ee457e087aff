import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

/**
 * A model priced per meter (DESIGN.md "Meters") through every read surface: one request with
 * quantities per meter has the exact sum of its meters' costs; workspace usage shows a line per
 * meter; the usage log one record; key statistics one entry per model with a meter breakdown;
 * verify agrees with the rollups, also after a correction.
 */
describe.each(storeKinds())("meters ($name)", (kind) => {
  let h: Harness;
  let w: World;

  const post = (url: string, payload: object, key = ROOT_KEY) =>
    h.request({ method: "POST", url, payload, key });

  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    const model = await post("/v1/models", {
      id: "gpt-metered",
      unit: "token",
      kind: "chat",
      meters: { input_token: "0.00000015", output_token: "0.0000006", cached_input_token: "0.000000075" },
      effective_from: "2025-01-01T00:00:00Z",
    });
    expectStatus(model, 201);
    expect(model.json()).toMatchObject({
      unit_price: 0,
      meters: { input_token: 0.00000015, output_token: 0.0000006, cached_input_token: 0.000000075 },
    });
  });
  afterEach(async () => h.close());

  async function send(events: object[]) {
    const res = await post("/v1/events", { events }, w.member.key);
    await h.services.committer.idle();
    return res;
  }

  it("prices one request as the exact sum over its meters and shows it on every surface", async () => {
    const res = await send([
      {
        id: "chat-1",
        model_id: "gpt-metered",
        quantities: { input_token: 1200, cached_input_token: 800, output_token: 300 },
        timestamp: "2025-06-15T10:00:00Z",
      },
      {
        id: "chat-2",
        model_id: "gpt-metered",
        quantities: { input_token: 1, output_token: 3 },
        timestamp: "2025-06-15T10:30:00Z",
      },
    ]);
    expectStatus(res, 200);
    expect(res.json()).toMatchObject({ accepted: 2, rejected: [] });

    // 1200 x 0.00000015 + 800 x 0.000000075 + 300 x 0.0000006 = 0.00018 + 0.00006 + 0.00018 = 0.00042
    // 1 x 0.00000015 + 3 x 0.0000006 = 0.00000195
    const usage = await h.request({
      method: "GET",
      url: "/v1/models/usage?start=2025-06-15&end=2025-06-16&timezone=UTC&timeframe=day&expand=summary",
      key: w.admin.key,
    });
    expectStatus(usage, 200);
    const lines = usage.json().summary as {
      endpoint_id: string;
      unit: string;
      quantity: number;
      cost: number;
    }[];
    const metered = lines.filter((l) => l.endpoint_id === "gpt-metered");
    expect(metered.map((l) => [l.unit, l.quantity, l.cost]).sort()).toEqual(
      [
        ["cached_input_token", 800, 0.00006],
        ["input_token", 1201, 0.00018015],
        ["output_token", 303, 0.0001818],
      ].sort(),
    );

    const log = await h.request({ method: "GET", url: "/usage?limit=10", key: w.admin.key });
    const records = (log.json() as { api_name: string; units_used: number; cost_usd: number }[]).filter(
      (r) => r.api_name === "gpt-metered",
    );
    expect(records.map((r) => [r.units_used, r.cost_usd]).sort()).toEqual([
      [2300, 0.00042],
      [4, 0.00000195],
    ]);

    const stats = await h.request({
      method: "GET",
      url: "/v1/usage?section=model_specific_usage,usage_statistics",
      key: w.member.key,
    });
    expectStatus(stats, 200);
    expect(stats.json().model_specific_usage["gpt-metered"]).toEqual({
      requests: 2,
      quantity: 2304,
      unit: "token",
      tokens: 2304,
      cost_usd: 0.00042195,
      meters: {
        cached_input_token: { quantity: 800, cost_usd: 0.00006 },
        input_token: { quantity: 1201, cost_usd: 0.00018015 },
        output_token: { quantity: 303, cost_usd: 0.0001818 },
      },
    });
    expect(stats.json().usage_statistics.overall_request_counts.total).toBe(2);
    expect(await h.services.store.verifyRollups()).toEqual([]);

    // a range with sub-minute edges reads those edges from the events: the same meter lines
    const at = Date.parse("2025-06-15T10:00:00Z");
    const edge = await h.services.query.totals({
      accountId: w.account.id,
      range: { start: at - 1, end: at + 1 },
    });
    const ONE = 10n ** 18n;
    expect(
      edge.map((l) => [l.unit, l.requests, l.quantity / ONE, l.tokensPrompt, l.tokensCompletion]).sort(),
    ).toEqual(
      [
        ["cached_input_token", 0, 800n, 800, 0],
        ["input_token", 1, 1200n, 1200, 0],
        ["output_token", 0, 300n, 0, 300],
      ].sort(),
    );
  });

  it("refuses what cannot be priced, naming the field, and stores nothing", async () => {
    const res = await send([
      { id: "a", model_id: "gpt-metered", quantity: 5 },
      { id: "b", model_id: "gpt-metered", quantities: { input_audio_token: 5 } },
      { id: "c", model_id: "gpt-metered", quantities: { input_token: 5 }, cost: 1 },
      { id: "d", model_id: "gpt-mini", quantities: { input_token: 5 } },
      { id: "e", model_id: "gpt-metered", quantities: { input_tokens: 5 } },
      { id: "f", model_id: "gpt-metered", quantity: 1, quantities: { input_token: 5 } },
    ]);
    expectStatus(res, 422);
    expect(res.json().rejected.map((r: { field: string }) => r.field)).toEqual([
      "events.0.quantities",
      "events.1.quantities.input_audio_token",
      "events.2.cost",
      "events.3.quantities",
      "events.4.quantities.input_tokens",
      "events.5.quantity",
    ]);
    expect(await h.services.query.totals({ accountId: w.account.id })).toEqual([]);
  });

  it("a corrected or deleted metered record moves every meter line, and verify agrees", async () => {
    const res = await send([
      { id: "x", model_id: "gpt-metered", quantities: { input_token: 100, output_token: 10 } },
      { id: "y", model_id: "gpt-metered", quantities: { input_token: 7 } },
    ]);
    const [x] = res.json().results as { usage_id: string }[];
    const off = await h.request({
      method: "PUT",
      url: `/usage/${x.usage_id}`,
      payload: { status_active: false },
      key: w.admin.key,
    });
    expect(off.statusCode, off.body).toBe(200);
    let totals = await h.services.query.totals({ accountId: w.account.id });
    expect(totals.map((l) => [l.unit, l.quantity])).toEqual([["input_token", 7n * 10n ** 18n]]);
    expect(await h.services.store.verifyRollups()).toEqual([]);

    const refused = await h.request({
      method: "PUT",
      url: `/usage/${x.usage_id}`,
      payload: { units_used: 50 },
      key: w.admin.key,
    });
    expectStatus(refused, 422);
    expect(refused.body).toContain("units_used");

    const del = await h.request({
      method: "DELETE",
      url: `/usage/${res.json().results[1].usage_id}`,
      key: w.admin.key,
    });
    expectStatus(del, 204);
    totals = await h.services.query.totals({ accountId: w.account.id });
    expect(totals).toEqual([]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("a price version per meter applies from its effective_from; earlier events keep theirs", async () => {
    await send([
      {
        id: "old",
        model_id: "gpt-metered",
        quantities: { input_token: 1000 },
        timestamp: "2025-06-01T00:00:00Z",
      },
    ]);
    const next = await post("/v1/models", {
      id: "gpt-metered",
      unit: "token",
      kind: "chat",
      meters: { input_token: "0.0000002", output_token: "0.0000008" },
      effective_from: "2025-06-10T00:00:00Z",
    });
    expectStatus(next, 200);
    await send([
      {
        id: "new",
        model_id: "gpt-metered",
        quantities: { input_token: 1000 },
        timestamp: "2025-06-12T00:00:00Z",
      },
    ]);
    const totals = await h.services.query.totals({ accountId: w.account.id });
    expect(totals.map((l) => [l.unit, l.unitPrice, l.cost]).sort()).toEqual(
      [
        ["input_token", 150_000_000_000n, 150_000_000_000_000n],
        ["input_token", 200_000_000_000n, 200_000_000_000_000n],
      ].sort(),
    );
    const model = await h.request({ method: "GET", url: "/v1/models/gpt-metered", key: ROOT_KEY });
    expect(model.json().prices).toHaveLength(2);
    expect(model.json().prices[1].meters).toEqual({ input_token: 0.0000002, output_token: 0.0000008 });
  });

  it("an invoice bills a line per meter: a plan's charge on one meter, the price book on the others", async () => {
    h.clock.set("2025-07-01T00:00:00Z");
    expectStatus(
      await post("/v1/plans", {
        id: "chat-plan",
        requests_per_minute: null,
        requests_per_day: null,
        validity_days: -999999,
        charges: [
          {
            model_id: "gpt-metered",
            meter: "output_token",
            pricing: "standard",
            unit_price: "0.000001",
            included_quantity: 100,
          },
        ],
      }),
      201,
    );
    expectStatus(
      await post(`/v1/accounts/${w.account.id}/subscriptions`, {
        plan_id: "chat-plan",
        activated_at: "2025-06-01T00:00:00Z",
      }),
      201,
    );
    await send([
      {
        id: "j1",
        model_id: "gpt-metered",
        quantities: { input_token: 10000, output_token: 2100 },
        timestamp: "2025-06-03T00:00:00Z",
      },
      {
        id: "j2",
        model_id: "gpt-metered",
        quantities: { input_token: 5000 },
        timestamp: "2025-06-20T00:00:00Z",
      },
    ]);
    const closed = await post("/v1/invoices/close", { period: "2025-06", account_id: w.account.id });
    expectStatus(closed, 200);
    const [invoice] = closed.json().invoices;
    const lines = invoice.lines.map(
      (l: { meter: string; quantity: number; amount: number; events: number }) => [
        l.meter,
        l.quantity,
        l.amount,
        l.events,
      ],
    );
    // input: 15,000 x 0.00000015 = 0.00225 (price book); output: (2,100 - 100 included) x 0.000001 = 0.002
    expect(lines.sort()).toEqual(
      [
        ["input_token", 15000, 0.00225, 2],
        ["output_token", 2100, 0.002, 2],
      ].sort(),
    );
    expect(invoice.subtotal).toBe(0.00425);
  });
});
