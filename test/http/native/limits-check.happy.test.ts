import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { limitsCheck, post, subscribeToPlan } from "../a4f/stats-world.ts";

const MINUTE_RESET = "2025-06-15T12:01:00.000Z";
const DAY_RESET = "2025-06-16T00:00:00.000Z";

describe.each(storeKinds())("POST /v1/limits/check ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await subscribeToPlan(h, w.account.id, {
      id: "tight",
      requests_per_minute: 3,
      requests_per_day: 5,
      validity_days: 30,
      model_whitelist: ["flux-1-dev", "gpt-mini"],
      model_blacklist: ["gpt-mini"],
    });
  });
  afterEach(async () => h.close());

  it("counts a checked request once when its event says admitted, and twice otherwise", async () => {
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true, remaining: 2 });
    await post(
      h,
      "/v1/events",
      { id: "checked", model_id: "flux-1-dev", quantity: 1, admitted: true },
      w.member.key,
    );
    await h.services.committer.idle();
    // the admitted event is billed but not counted again
    expect((await h.services.query.totals({ accountId: w.account.id }))[0].requests).toBe(1);
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true, remaining: 1 });
    await post(h, "/v1/events", { id: "unchecked", model_id: "flux-1-dev", quantity: 1 }, w.member.key);
    await h.services.committer.idle();
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: false, remaining: 0 });
  });

  it("consumes exactly one request when allowed and none when refused, across windows", async () => {
    expect(await limitsCheck(h, w.member.key)).toEqual({
      allowed: true,
      reason: null,
      account_id: w.account.id,
      window: "minute",
      limit: 3,
      remaining: 2,
      reset: MINUTE_RESET,
      windows: {
        minute: { limit: 3, remaining: 2, reset: MINUTE_RESET },
        day: { limit: 5, remaining: 4, reset: DAY_RESET },
      },
    });
    // a recorded event counts one request too, whatever its quantity
    await post(h, "/v1/events", { id: "e1", model_id: "flux-1-dev", quantity: 50 }, w.admin.key);
    expect(await limitsCheck(h, w.admin.key)).toMatchObject({ allowed: true, remaining: 0 });
    for (let i = 0; i < 3; i++) {
      expect(await limitsCheck(h, w.member.key)).toEqual({
        allowed: false,
        reason: "rate_limited",
        account_id: w.account.id,
        window: "minute",
        limit: 3,
        remaining: 0,
        reset: MINUTE_RESET,
        windows: {
          minute: { limit: 3, remaining: 0, reset: MINUTE_RESET },
          day: { limit: 5, remaining: 2, reset: DAY_RESET },
        },
      });
    }
    h.clock.set("2025-06-15T12:01:00Z");
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true, window: "day", remaining: 1 });
    expect(await limitsCheck(h, w.member.key)).toMatchObject({
      allowed: true,
      window: "day",
      limit: 5,
      remaining: 0,
      reset: DAY_RESET,
    });
    expect(await limitsCheck(h, w.member.key)).toMatchObject({
      allowed: false,
      reason: "rate_limited",
      window: "day",
      remaining: 0,
      windows: { minute: { remaining: 1 }, day: { remaining: 0 } },
    });
    h.clock.set("2025-06-16T00:00:00Z");
    expect(await limitsCheck(h, w.member.key)).toMatchObject({
      allowed: true,
      window: "minute",
      remaining: 2,
    });
    // limits are per account: the other account is untouched
    expect(await limitsCheck(h, w.other.admin.key)).toMatchObject({ allowed: true, limit: null });
  });

  it("decides with the license and the plan's lists when model_id is given, consuming nothing on refusal", async () => {
    for (const model_id of ["flux-1-dev", "gpt-mini", "tts-1"]) {
      await post(h, `/v1/accounts/${w.account.id}/licenses`, { model_id });
    }
    const cases: [string, boolean, string | null][] = [
      ["embed-small", false, "not_licensed"],
      ["gpt-mini", false, "plan_blocked"], // allowed, but blocked
      ["tts-1", false, "plan_blocked"], // licensed, not on the allow list
      ["no-such-model", false, "unknown_model"],
      ["flux-1-dev", true, null],
    ];
    for (const [model_id, allowed, reason] of cases) {
      const r = await limitsCheck(h, w.member.key, { model_id });
      expect([model_id, r.allowed, r.reason, r.windows.minute.remaining]).toEqual([
        model_id,
        allowed,
        reason,
        allowed ? 2 : 3,
      ]);
    }
  });

  it("never refuses an unlimited plan or an account without a plan", async () => {
    await subscribeToPlan(h, w.account.id, {
      id: "free",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: 7,
    });
    for (const key of [w.member.key, w.other.admin.key]) {
      for (let i = 0; i < 20; i++) {
        const r = await limitsCheck(h, key);
        expect(r).toMatchObject({
          allowed: true,
          reason: null,
          window: null,
          limit: null,
          remaining: null,
          reset: null,
        });
      }
    }
  });

  it("lets the root key check a named account", async () => {
    const r = await limitsCheck(h, ROOT_KEY, { account_id: w.account.id });
    expect(r).toMatchObject({ allowed: true, account_id: w.account.id, remaining: 2 });
    expect(await limitsCheck(h, w.admin.key)).toMatchObject({ remaining: 1 });
  });

  it("a hard monthly budget that is used up refuses, with its numbers; a soft one admits; nothing is counted", async () => {
    const budget = async (b: object | null) => {
      const res = await h.request({
        method: "PUT",
        url: `/v1/accounts/${w.account.id}/budget`,
        payload: JSON.stringify(b),
        headers: { "content-type": "application/json" },
        key: ROOT_KEY,
      });
      expect(res.statusCode, res.body).toBeLessThan(300);
    };
    await budget({ monthly_usd: "0.05", mode: "hard" });
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true, reason: null });
    // 2 images at 0.025: exactly the budget, spent
    await post(h, "/v1/events", { id: "spend", model_id: "flux-1-dev", quantity: 2 }, w.member.key);
    await h.services.committer.idle();
    const refused = await limitsCheck(h, w.member.key);
    expect(refused).toMatchObject({
      allowed: false,
      reason: "budget_exceeded",
      budget: { limit: "0.05", spent: "0.05", available: "0" },
    });
    // the refused checks consumed no request: 1 allowed check + 1 event so far
    expect(refused.windows.minute.remaining).toBe(1);
    await budget({ monthly_usd: "0.05", mode: "soft" });
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true, reason: null });
    await budget(null);
    expect((await limitsCheck(h, w.member.key)).budget).toBeUndefined();
  });

  it("a prepaid account whose payments are spent is refused for insufficient credit", async () => {
    const patch = await h.request({
      method: "PATCH",
      url: `/v1/accounts/${w.account.id}`,
      payload: { billing_mode: "prepaid" },
      key: ROOT_KEY,
    });
    expect(patch.statusCode, patch.body).toBe(200);
    expect(await limitsCheck(h, w.member.key)).toMatchObject({
      allowed: false,
      reason: "insufficient_credit",
    });
    await post(h, `/v1/accounts/${w.account.id}/payments`, { amount_usd: 1 });
    expect(await limitsCheck(h, w.member.key)).toMatchObject({ allowed: true });
  });
});
