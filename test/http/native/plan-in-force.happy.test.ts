import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { getUsage, limitsCheck, post } from "../a4f/stats-world.ts";

/**
 * The plan in force comes from the subscription history (decision 0018, "The plan in force"):
 * limits, entitlements and key statistics follow a subscription's end, its reopening, and a later
 * subscription.
 */
describe.each(storeKinds())("the plan in force ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let base: string;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    base = `/v1/accounts/${w.account.id}`;
    await post(h, "/v1/plans", {
      id: "tight",
      requests_per_minute: 3,
      requests_per_day: null,
      validity_days: 30,
      model_blacklist: ["gpt-mini"],
    });
    await post(h, "/v1/plans", {
      id: "roomy",
      requests_per_minute: 100,
      requests_per_day: null,
      validity_days: -999999,
    });
    await post(h, `${base}/licenses`, { model_id: "gpt-mini", starts_at: "2025-01-01T00:00:00Z" });
  });
  afterEach(async () => h.close());

  const end = async (subId: string, endsAt: string | null) => {
    const res = await h.request({
      method: "PATCH",
      url: `${base}/subscriptions/${subId}`,
      payload: { ends_at: endsAt },
      key: ROOT_KEY,
    });
    expectStatus(res, 200);
  };
  /** The minute limit a check sees (null: none), and whether gpt-mini is allowed. */
  const state = async () => {
    const plain = await limitsCheck(h, w.member.key);
    const model = await limitsCheck(h, w.member.key, { model_id: "gpt-mini" });
    const stats = await getUsage(h, w.member.key);
    const plans = (await h.request({ method: "GET", url: "/v1/plans", key: w.admin.key })).json();
    const account = (await h.request({ method: "GET", url: base, key: ROOT_KEY })).json();
    const listed = (await h.request({ method: "GET", url: "/v1/accounts", key: ROOT_KEY })).json();
    expect(listed.data.find((a: { id: string }) => a.id === account.id).plan_id).toBe(account.plan_id);
    return {
      accountPlan: account.plan_id,
      minuteLimit: plain.windows.minute.limit,
      gptMini: model.allowed ? "allowed" : model.reason,
      currentPlan: stats.account_information.current_plan,
      visiblePlans: plans.data.map((p: { id: string }) => p.id),
    };
  };
  const TIGHT = {
    accountPlan: "tight",
    minuteLimit: 3,
    gptMini: "plan_blocked",
    currentPlan: "tight",
    visiblePlans: ["tight"],
  };
  const NONE = {
    accountPlan: null,
    minuteLimit: null,
    gptMini: "allowed",
    currentPlan: "none",
    visiblePlans: [],
  };
  const ROOMY = {
    accountPlan: "roomy",
    minuteLimit: 100,
    gptMini: "allowed",
    currentPlan: "roomy",
    visiblePlans: ["roomy"],
  };

  it("a subscription ended in the past stops its plan applying; reopened (ends_at null) it applies again", async () => {
    expect(await state()).toEqual(NONE);
    const sub = await post(h, `${base}/subscriptions`, {
      plan_id: "tight",
      activated_at: "2025-06-01T00:00:00Z",
    });
    expect(await state()).toEqual(TIGHT);
    await end(sub.id, "2025-06-10T00:00:00Z");
    expect(await state()).toEqual(NONE);
    // the history still shows it
    expect((await getUsage(h, w.member.key)).subscription_details.plan_activation_history).toHaveLength(1);
    await end(sub.id, null);
    expect(await state()).toEqual(TIGHT);
  });

  it("a subscription ending later applies until its end, exclusive", async () => {
    const sub = await post(h, `${base}/subscriptions`, {
      plan_id: "tight",
      activated_at: "2025-06-01T00:00:00Z",
    });
    await end(sub.id, "2025-06-15T12:10:00Z");
    expect(await state()).toEqual(TIGHT);
    h.clock.set("2025-06-15T12:09:59.999Z");
    expect((await limitsCheck(h, w.member.key)).windows.minute.limit).toBe(3);
    h.clock.set("2025-06-15T12:10:00Z");
    expect(await state()).toEqual(NONE);
  });

  it("a later subscription replaces an earlier one; ended, the earlier one still running applies again", async () => {
    await post(h, `${base}/subscriptions`, { plan_id: "tight", activated_at: "2025-06-01T00:00:00Z" });
    // not begun yet: the earlier plan is still in force
    const later = await post(h, `${base}/subscriptions`, {
      plan_id: "roomy",
      activated_at: "2025-06-15T13:00:00Z",
    });
    expect(await state()).toEqual(TIGHT);
    h.clock.set("2025-06-15T13:00:00Z");
    expect(await state()).toEqual(ROOMY);
    expect((await getUsage(h, w.member.key)).subscription_details).toMatchObject({
      total_validity_days: -999999,
      effective_days_remaining: -999999,
    });
    await end(later.id, "2025-06-15T13:00:01Z");
    expect(await state()).toEqual(ROOMY);
    h.clock.set("2025-06-15T13:00:01Z");
    expect(await state()).toEqual(TIGHT);
  });
});
