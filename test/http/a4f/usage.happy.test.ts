import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import {
  buildStatsWorld,
  getUsage,
  limitsCheck,
  post,
  type StatsWorld,
  subscribeToPlan,
} from "./stats-world.ts";

const ALL = [
  "account_information",
  "subscription_details",
  "billing_information",
  "rate_limits_and_restrictions",
  "usage_statistics",
  "model_specific_usage",
];

describe.each(storeKinds())("GET /v1/usage ($name)", (kind) => {
  let h: Harness;
  let w: StatsWorld;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildStatsWorld(h);
  });
  afterEach(async () => h.close());

  it("answers every section with the seed's fields, types and exact values", async () => {
    const res = await h.request({ method: "GET", url: "/v1/usage", key: w.dave.key });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(ALL);
    expect(body).toEqual({
      account_information: {
        username: "dave",
        current_plan: "pro",
        is_enabled: true,
        api_key: w.dave.key,
        node_id: "MDQ6VXNlcjE=",
      },
      subscription_details: {
        creation_date: "2025-06-15T12:00:00.000Z",
        total_validity_days: 30,
        // 2025-06-01 + 30 days = 2025-07-01T00:00Z; 15.5 days left at 2025-06-15T12:00:30Z
        effective_days_remaining: 15,
        plan_activation_history: [
          { plan_id: "starter", activated_at: "2025-05-01T00:00:00.000Z" },
          { plan_id: "pro", activated_at: "2025-06-01T00:00:00.000Z" },
        ],
      },
      billing_information: {
        payment_transactions: [10.5, 0.0043],
        total_amount_paid_usd: 10.5043,
        // 5 x 0.025 + 1000 x 0.00000015 + 500 x 0.00000002 + 12.5 x 0.0005
        cumulative_cost_usd: 0.13141,
      },
      rate_limits_and_restrictions: {
        requests_per_minute_limit: 5,
        // e2, e4, e5 fall in 12:00; e1 (11:59:30) only in the day, e3 (yesterday) nowhere
        requests_per_minute_remaining: 2,
        requests_per_minute_reset: "2025-06-15T12:01:00.000Z",
        requests_per_day_limit: 100,
        requests_per_day_remaining: 96,
        requests_per_day_reset: "2025-06-16T00:00:00.000Z",
        model_whitelist: { models: ["flux-1-dev", "gpt-mini"] },
        model_blacklist: { models: ["gpt-mini"] },
      },
      usage_statistics: {
        overall_request_counts: {
          total: 5,
          chat: 1,
          embedding: 1,
          image: 2,
          video: 0,
          audio: 0,
          tts: 1,
          other: 0,
        },
        token_consumption: {
          total: 1500,
          prompt: 1100,
          completion: 400,
          chat: 1000,
          embedding: 500,
          image: 0,
          video: 0,
          audio: 0,
          tts: 0,
          other: 0,
        },
        image_consumption: { total: 5, "flux-1-dev": 5 },
      },
      model_specific_usage: {
        "embed-small": { requests: 1, quantity: 500, unit: "token", tokens: 500, cost_usd: 0.00001 },
        "flux-1-dev": { requests: 2, quantity: 5, unit: "image", tokens: 0, cost_usd: 0.125 },
        "gpt-mini": { requests: 1, quantity: 1000, unit: "token", tokens: 1000, cost_usd: 0.00015 },
        "tts-1": { requests: 1, quantity: 12.5, unit: "second", tokens: 0, cost_usd: 0.00625 },
      },
    });
    // money leaves as exact JSON numbers, digit for digit
    expect(res.body).toContain('"total_amount_paid_usd":10.5043');
    expect(res.body).toContain('"cumulative_cost_usd":0.13141');
  });

  it("agrees with the workspace usage API to the last digit", async () => {
    const ws = await h.request({
      method: "GET",
      url: "/v1/models/usage?start=2025-06-01&end=2025-06-16&expand=summary",
      headers: { authorization: `Key ${w.admin.key}` },
    });
    expect(ws.statusCode, ws.body).toBe(200);
    const summary = ws.json().summary as { endpoint_id: string; quantity: number; cost: number }[];
    const models = (await getUsage(h, w.dave.key, "?section=model_specific_usage")).model_specific_usage;
    // one price per model in this world, so one summary line per model
    expect(summary.map((l) => l.endpoint_id).sort()).toEqual(Object.keys(models).sort());
    for (const l of summary) {
      expect([l.endpoint_id, models[l.endpoint_id].quantity, models[l.endpoint_id].cost_usd]).toEqual([
        l.endpoint_id,
        l.quantity,
        l.cost,
      ]);
    }
  });

  it("limits the answer to the sections asked for, in the seed's order", async () => {
    const body = await getUsage(h, w.dave.key, "?section=rate_limits_and_restrictions,account_information");
    expect(Object.keys(body)).toEqual(["account_information", "rate_limits_and_restrictions"]);
    const repeated = await getUsage(
      h,
      w.dave.key,
      "?section=model_specific_usage&section=billing_information",
    );
    expect(Object.keys(repeated)).toEqual(["billing_information", "model_specific_usage"]);
    const spaced = await getUsage(h, w.dave.key, "?section=%20usage_statistics%20,usage_statistics");
    expect(Object.keys(spaced)).toEqual(["usage_statistics"]);
    const empty = await getUsage(h, w.dave.key, "?section=");
    expect(Object.keys(empty)).toEqual(ALL);
  });

  it("is not counted against the limits, and the remaining counts are live across a minute boundary", async () => {
    const limits = async () =>
      (await getUsage(h, w.dave.key, "?section=rate_limits_and_restrictions")).rate_limits_and_restrictions;
    for (let i = 0; i < 3; i++) {
      const l = await limits();
      expect([l.requests_per_minute_remaining, l.requests_per_day_remaining]).toEqual([2, 96]);
    }
    expect((await limitsCheck(h, w.dave.key)).allowed).toBe(true);
    let l = await limits();
    expect([l.requests_per_minute_remaining, l.requests_per_day_remaining]).toEqual([1, 95]);
    // one more event in this minute
    await post(h, "/v1/events", { id: "e6", model_id: "flux-1-dev", quantity: 1 }, w.dave.key);
    l = await limits();
    expect([l.requests_per_minute_remaining, l.requests_per_day_remaining]).toEqual([0, 94]);
    // the report is never refused, so use can pass the limit: remaining stays at 0
    await post(h, "/v1/events", { id: "e7", model_id: "flux-1-dev", quantity: 1 }, w.dave.key);
    l = await limits();
    expect([l.requests_per_minute_remaining, l.requests_per_day_remaining]).toEqual([0, 93]);
    h.clock.set("2025-06-15T12:00:59.999Z");
    expect((await limits()).requests_per_minute_remaining).toBe(0);
    h.clock.set("2025-06-15T12:01:00Z");
    l = await limits();
    expect(l).toMatchObject({
      requests_per_minute_remaining: 5,
      requests_per_minute_reset: "2025-06-15T12:02:00.000Z",
      requests_per_day_remaining: 93,
    });
    h.clock.set("2025-06-16T00:00:00Z");
    l = await limits();
    expect([l.requests_per_minute_remaining, l.requests_per_day_remaining]).toEqual([5, 100]);
  });

  it("counts validity days down from the current activation, never below 0", async () => {
    const sub = async () =>
      (await getUsage(h, w.dave.key, "?section=subscription_details")).subscription_details;
    h.clock.set("2025-06-30T23:59:59Z");
    expect((await sub()).effective_days_remaining).toBe(0);
    h.clock.set("2025-06-29T23:59:59Z");
    expect((await sub()).effective_days_remaining).toBe(1);
    h.clock.set("2025-08-01T00:00:00Z");
    expect((await sub()).effective_days_remaining).toBe(0);
    // a new activation restarts the count and joins the history
    await post(h, `/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "starter" });
    expect(await sub()).toEqual({
      creation_date: "2025-06-15T12:00:00.000Z",
      total_validity_days: 10,
      effective_days_remaining: 10,
      plan_activation_history: [
        { plan_id: "starter", activated_at: "2025-05-01T00:00:00.000Z" },
        { plan_id: "pro", activated_at: "2025-06-01T00:00:00.000Z" },
        { plan_id: "starter", activated_at: "2025-08-01T00:00:00.000Z" },
      ],
    });
  });

  it("shows unlimited plans with -999999 and 'unlimited'", async () => {
    await subscribeToPlan(h, w.account.id, {
      id: "unlimited",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: -999999,
    });
    const body = await getUsage(h, w.dave.key, "?section=subscription_details,rate_limits_and_restrictions");
    expect(body.subscription_details).toMatchObject({
      total_validity_days: -999999,
      effective_days_remaining: -999999,
    });
    expect(body.rate_limits_and_restrictions).toEqual({
      requests_per_minute_limit: -999999,
      requests_per_minute_remaining: "unlimited",
      requests_per_minute_reset: "2025-06-15T12:01:00.000Z",
      requests_per_day_limit: -999999,
      requests_per_day_remaining: "unlimited",
      requests_per_day_reset: "2025-06-16T00:00:00.000Z",
      model_whitelist: "none",
      model_blacklist: "none",
    });
  });

  it("answers an account without a plan or usage with zeros and 'none'", async () => {
    const body = await getUsage(h, w.other.admin.key);
    expect(body.account_information).toEqual({
      username: "carol",
      current_plan: "none",
      is_enabled: true,
      api_key: w.other.admin.key,
      node_id: null,
    });
    expect(body.subscription_details).toMatchObject({
      total_validity_days: 0,
      effective_days_remaining: 0,
      plan_activation_history: [],
    });
    expect(body.billing_information).toEqual({
      payment_transactions: [],
      total_amount_paid_usd: 0,
      cumulative_cost_usd: 0.175,
    });
    expect(body.rate_limits_and_restrictions).toMatchObject({
      requests_per_minute_limit: -999999,
      requests_per_minute_remaining: "unlimited",
      model_whitelist: "none",
      model_blacklist: "none",
    });
    expect(body.usage_statistics.image_consumption).toEqual({ total: 7, "flux-1-dev": 7 });
    expect(Object.keys(body.model_specific_usage)).toEqual(["flux-1-dev"]);
  });

  it("accepts the key as Bearer, Key or x-key", async () => {
    for (const headers of [
      { authorization: `Key ${w.dave.key}` },
      { "x-key": w.dave.key },
      { authorization: `bearer ${w.dave.key}` },
    ]) {
      const res = await h.request({ method: "GET", url: "/v1/usage?section=account_information", headers });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().account_information.api_key).toBe(w.dave.key);
    }
  });
});
