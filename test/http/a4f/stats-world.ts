import { expect } from "vitest";
import { expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { buildWorld, type World } from "../../support/world.ts";

/** POST as root (or `key`), expecting 200 or 201, and the parsed body. */
export async function post(h: Harness, url: string, payload: unknown, key = ROOT_KEY) {
  const res = await h.request({ method: "POST", url, payload: payload as object, key });
  expect([200, 201], `${res.statusCode} ${res.body}`).toContain(res.statusCode);
  return res.json();
}

/** Creates a plan (`plan.id` and its limits, as `POST /v1/plans` takes them) and subscribes the account to it now. */
export async function subscribeToPlan(
  h: Harness,
  accountId: string,
  plan: { id: string } & Record<string, unknown>,
) {
  await post(h, "/v1/plans", plan);
  await post(h, `/v1/accounts/${accountId}/subscriptions`, { plan_id: plan.id });
}

export async function getUsage(h: Harness, key: string, query = "") {
  const res = await h.request({ method: "GET", url: `/v1/usage${query}`, key });
  expectStatus(res, 200);
  return res.json();
}

export async function limitsCheck(h: Harness, key: string, payload?: object) {
  const res = await h.request({ method: "POST", url: "/v1/limits/check", key, payload });
  expectStatus(res, 200);
  return res.json();
}

export interface StatsWorld extends World {
  dave: { id: string; key: string; keyId: string };
}

/**
 * The world the statistics tests read: plan "starter" then "pro" (5 rpm, 100 rpd, 30 days, allow
 * flux-1-dev and gpt-mini, block gpt-mini), two payments, and events of four kinds and models.
 * The clock ends at 2025-06-15T12:00:30Z.
 */
export async function buildStatsWorld(h: Harness): Promise<StatsWorld> {
  h.clock.set("2025-06-15T12:00:00Z");
  const w = await buildWorld(h);
  const user = await post(h, `/v1/accounts/${w.account.id}/users`, {
    username: "dave",
    role: "member",
    node_id: "MDQ6VXNlcjE=",
  });
  const key = await post(h, `/v1/users/${user.id}/keys`, { label: "Production Key" });
  await post(h, "/v1/plans", {
    id: "starter",
    requests_per_minute: 1,
    requests_per_day: 10,
    validity_days: 10,
  });
  await post(h, "/v1/plans", {
    id: "pro",
    requests_per_minute: 5,
    requests_per_day: 100,
    validity_days: 30,
    model_whitelist: ["flux-1-dev", "gpt-mini"],
    model_blacklist: ["gpt-mini"],
  });
  await post(h, `/v1/accounts/${w.account.id}/subscriptions`, {
    plan_id: "starter",
    activated_at: "2025-05-01T00:00:00Z",
  });
  await post(h, `/v1/accounts/${w.account.id}/subscriptions`, {
    plan_id: "pro",
    activated_at: "2025-06-01T00:00:00Z",
  });
  await post(h, `/v1/accounts/${w.account.id}/payments`, {
    amount_usd: 10.5,
    paid_at: "2025-05-01T00:00:00Z",
  });
  await post(h, `/v1/accounts/${w.account.id}/payments`, {
    amount_usd: "0.0043",
    paid_at: "2025-06-01T00:00:00Z",
  });
  h.clock.set("2025-06-15T12:00:30Z");
  const batch = await post(
    h,
    "/v1/events",
    {
      events: [
        { id: "e1", model_id: "flux-1-dev", quantity: 3, timestamp: "2025-06-15T11:59:30Z" },
        {
          id: "e2",
          model_id: "gpt-mini",
          quantity: 1000,
          tokens: { prompt: 600, completion: 400 },
          timestamp: "2025-06-15T12:00:00Z",
        },
        {
          id: "e3",
          model_id: "embed-small",
          quantity: 500,
          tokens: { prompt: 500, completion: 0 },
          timestamp: "2025-06-14T10:00:00Z",
        },
        { id: "e4", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-06-15T12:00:10Z" },
      ],
    },
    w.admin.key,
  );
  expect(batch.accepted).toBe(4);
  const one = await post(
    h,
    "/v1/events",
    { id: "e5", model_id: "tts-1", quantity: "12.5", timestamp: "2025-06-15T12:00:05Z" },
    w.member.key,
  );
  expect(one.accepted).toBe(1);
  // another account's usage must not show
  await post(
    h,
    "/v1/events",
    { id: "x1", model_id: "flux-1-dev", quantity: 7, timestamp: "2025-06-15T12:00:00Z" },
    w.other.admin.key,
  );
  return { ...w, dave: { id: user.id, key: key.key, keyId: key.id } };
}
