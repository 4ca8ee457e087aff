import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { expectSeedError, expectUsage, getUsage, postEvents } from "./support.ts";

const RANGE = { start: "2025-04-01", end: "2025-04-02", expand: "summary" };
const flux = (quantity: number, cost: number) => ({
  endpoint_id: "flux-1-dev",
  unit: "image",
  quantity,
  unit_price: 0.025,
  cost,
  currency: "USD",
});

describe.each(storeKinds())("GET /v1/models/usage security ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await postEvents(h, w.account.id, [
      { id: "mine", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-04-01T10:00:00Z" },
    ]);
    await postEvents(h, w.other.accountId, [
      { id: "theirs", model_id: "flux-1-dev", quantity: 1000, timestamp: "2025-04-01T10:00:00Z" },
    ]);
  });
  afterEach(async () => h.close());

  it("401 authorization_error without a key, even with bad parameters", async () => {
    expect(expectSeedError(await getUsage(h, RANGE, null), 401, "authorization_error")).toBe(
      "Missing API key",
    );
    expect(expectSeedError(await getUsage(h, { limit: "0" }, null), 401, "authorization_error")).toBe(
      "Missing API key",
    );
  });

  it("401 for an unknown key, a malformed header and a revoked key", async () => {
    expect(expectSeedError(await getUsage(h, RANGE, "tly_not-a-key"), 401, "authorization_error")).toBe(
      "Invalid or revoked API key",
    );
    const malformed = await h.request({
      method: "GET",
      url: "/v1/models/usage",
      headers: { authorization: "Key" },
    });
    expectSeedError(malformed, 401, "authorization_error");
    expectStatus(await h.request({ method: "DELETE", url: `/v1/keys/${w.admin.keyId}`, key: ROOT_KEY }), 204);
    expect(expectSeedError(await getUsage(h, RANGE, w.admin.key), 401, "authorization_error")).toBe(
      "Invalid or revoked API key",
    );
  });

  it("403 authorization_error for a member key, before any parameter is read", async () => {
    const res = await getUsage(h, RANGE, w.member.key);
    expect(expectSeedError(res, 403, "authorization_error")).toBe(
      "This operation needs an account admin key",
    );
    expectSeedError(
      await getUsage(h, { limit: "0", timezone: "nope" }, w.member.key),
      403,
      "authorization_error",
    );
    expect(res.body).not.toContain("flux");
  });

  it("an admin sees only its own account; another account's id is 404", async () => {
    expect(expectUsage(await getUsage(h, RANGE, w.admin.key)).summary).toEqual([flux(1, 0.025)]);
    expect(expectUsage(await getUsage(h, RANGE, w.other.admin.key)).summary).toEqual([flux(1000, 25)]);
    expect(
      expectUsage(await getUsage(h, { ...RANGE, account_id: w.account.id }, w.admin.key)).summary,
    ).toEqual([flux(1, 0.025)]);
    const res = await getUsage(h, { ...RANGE, account_id: w.other.accountId }, w.admin.key);
    expect(expectSeedError(res, 404, "not_found")).toBe("account not found");
    // nothing of the other account's usage leaks (the random request id may hold any digits)
    expect(res.body.replace(/"request_id":"[^"]*"/, "")).not.toContain("1000");
  });

  it("the root key must name the account with account_id", async () => {
    expect(expectSeedError(await getUsage(h, RANGE, ROOT_KEY), 400, "validation_error")).toBe(
      "query.account_id: is required with the operator (root) key",
    );
    expect(
      expectUsage(await getUsage(h, { ...RANGE, account_id: w.other.accountId }, ROOT_KEY)).summary,
    ).toEqual([flux(1000, 25)]);
    expect(
      expectSeedError(
        await getUsage(h, { ...RANGE, account_id: "no-such-account" }, ROOT_KEY),
        404,
        "not_found",
      ),
    ).toBe("account not found");
  });

  it("429 rate_limited while the account's minute window is used up; reading consumes nothing", async () => {
    expectStatus(
      await h.request({
        method: "POST",
        url: "/v1/plans",
        key: ROOT_KEY,
        payload: { id: "tiny", requests_per_minute: 2, requests_per_day: null, validity_days: 30 },
      }),
      201,
    );
    expectStatus(
      await h.request({
        method: "POST",
        url: `/v1/accounts/${w.account.id}/subscriptions`,
        key: ROOT_KEY,
        payload: { plan_id: "tiny" },
      }),
      201,
    );
    // with a limit of 2 and none used, many reads pass: they are not counted
    for (let i = 0; i < 3; i++) expectUsage(await getUsage(h, RANGE, w.admin.key));
    const now = new Date(h.clock.now()).toISOString();
    await postEvents(h, w.account.id, [
      { id: "n1", model_id: "flux-1-dev", quantity: 1, timestamp: now },
      { id: "n2", model_id: "flux-1-dev", quantity: 1, timestamp: now },
    ]);
    const res = await getUsage(h, RANGE, w.admin.key);
    expect(expectSeedError(res, 429, "rate_limited")).toMatch(
      /^Rate limit exceeded: 2 of 2 requests per minute used; retry after \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000Z$/,
    );
    // the other account is not limited
    expectUsage(await getUsage(h, RANGE, w.other.admin.key));
    h.clock.advance(60_000);
    expectUsage(await getUsage(h, RANGE, w.admin.key));
  });

  it("errors carry the request id and never echo the presented secret", async () => {
    const secret = "tly_secret-that-must-not-leak";
    const res = await getUsage(h, RANGE, secret);
    expectSeedError(res, 401, "authorization_error");
    expect(res.body).not.toContain(secret);
  });
});
