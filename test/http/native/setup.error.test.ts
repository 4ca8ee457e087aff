import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

/** A 4xx in the native format whose message and first issue name `field`. */
function expectFieldError(res: LightMyRequestResponse, status: number, field: string): void {
  expectStatus(res, status);
  const { error } = res.json();
  expect(error.code, res.body).toBe(status === 400 ? "VALIDATION" : error.code);
  expect(error.message, res.body).toMatch(new RegExp(`^${field.replace(/\./g, "\\.")}: `));
  expect(error.issues?.[0]?.loc?.filter((p: unknown) => p !== "body").join("."), res.body).toBe(field);
  expect(error.request_id).toBe(res.headers["x-request-id"]);
}

const MODEL = { id: "new-model", unit: "image", kind: "image", unit_price: 0.01 };
const PLAN = { id: "p1", requests_per_minute: 10, requests_per_day: 100, validity_days: 30 };

describe.each(storeKinds())("native setup routes, errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const post = (url: string, payload: unknown, key: string = ROOT_KEY) =>
    h.request({ method: "POST", url, payload: payload as object, key });

  it("POST /v1/accounts names the bad field", async () => {
    const cases: [unknown, string][] = [
      [{}, "name"],
      [{ name: "" }, "name"],
      [{ name: 5 }, "name"],
      [{ name: "x".repeat(201) }, "name"],
      [{ name: "x", colour: "red" }, "colour"],
      [{ name: "x", plan_id: "no-such-plan" }, "plan_id"],
      [{ name: "x", plan_id: 7 }, "plan_id"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post("/v1/accounts", payload), 400, field);
  });

  it("POST /v1/accounts/{id}/users names the bad field, 409 on a taken username, 404 for no account", async () => {
    const url = `/v1/accounts/${w.account.id}/users`;
    const cases: [unknown, string][] = [
      [{ role: "admin" }, "username"],
      [{ username: "x" }, "role"],
      [{ username: "x", role: "owner" }, "role"],
      [{ username: "x", role: "admin", node_id: 5 }, "node_id"],
      [{ username: "x", role: "admin", email: "x@y" }, "email"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post(url, payload), 400, field);
    // nothing half written: the username is still free
    expectStatus(await post(url, { username: "x", role: "member" }), 201);
    const taken = await post(url, { username: "x", role: "admin" });
    expectStatus(taken, 409);
    expect(taken.json().error).toMatchObject({
      code: "CONFLICT",
      message: "username x exists in this account",
    });
    expectStatus(await post("/v1/accounts/no-such-account/users", { username: "y", role: "admin" }), 404);
  });

  it("POST /v1/users/{id}/keys names the bad field, 404 for no user", async () => {
    const url = `/v1/users/${w.member.id}/keys`;
    const cases: [unknown, string][] = [
      [{ label: "" }, "label"],
      [{ label: 5 }, "label"],
      [{ label: "x".repeat(101) }, "label"],
      [{ label: "ok", scope: "all" }, "scope"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post(url, payload), 400, field);
    expectStatus(await post(url, ["x"]), 400);
    expect((await h.services.store.listKeys(w.member.id)).length).toBe(1);
    const missing = await post("/v1/users/no-such-user/keys", {});
    expectStatus(missing, 404);
    expect(missing.json().error.code).toBe("NOT_FOUND");
  });

  it("DELETE /v1/keys/{id} and GET /v1/accounts/{id} answer 404 for unknown ids", async () => {
    expectStatus(await h.request({ method: "DELETE", url: "/v1/keys/no-such-key", key: ROOT_KEY }), 404);
    expectStatus(await h.request({ method: "GET", url: "/v1/accounts/no-such-account", key: ROOT_KEY }), 404);
  });

  it("POST /v1/models names the bad field and writes nothing", async () => {
    const cases: [unknown, string][] = [
      [{ ...MODEL, id: undefined }, "id"],
      [{ ...MODEL, unit: undefined }, "unit"],
      [{ ...MODEL, unit_price: undefined }, "unit_price"],
      [{ ...MODEL, unit_price: -0.01 }, "unit_price"],
      [{ ...MODEL, unit_price: "-1" }, "unit_price"],
      [{ ...MODEL, unit_price: "0.0000000000001" }, "unit_price"], // 13 places
      [{ ...MODEL, unit_price: "abc" }, "unit_price"],
      [{ ...MODEL, unit_price: true }, "unit_price"],
      [{ ...MODEL, unit_price: 2_000_000 }, "unit_price"],
      [{ ...MODEL, kind: "robot" }, "kind"],
      [{ ...MODEL, currency: "usd" }, "currency"],
      [{ ...MODEL, reporting_enabled: "yes" }, "reporting_enabled"],
      [{ ...MODEL, effective_from: "yesterday" }, "effective_from"],
      [{ ...MODEL, effective_from: "2025-01-01" }, "effective_from"],
      [{ ...MODEL, effective_from: -5 }, "effective_from"],
      [{ ...MODEL, tier: "gold" }, "tier"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post("/v1/models", payload), 400, field);
    expect(await h.services.store.getModel("new-model")).toBeNull();
    // an existing model's price is not changed by a rejected update
    expectFieldError(
      await post("/v1/models", { ...MODEL, id: "flux-1-dev", unit_price: -1 }),
      400,
      "unit_price",
    );
    expect((await h.services.store.listPrices("flux-1-dev")).map((p) => p.unitPrice)).toEqual([
      25n * 10n ** 15n,
    ]);
  });

  it("POST /v1/plans names the bad field and writes nothing", async () => {
    const cases: [unknown, string][] = [
      [{ ...PLAN, id: undefined }, "id"],
      [{ ...PLAN, requests_per_minute: undefined }, "requests_per_minute"],
      [{ ...PLAN, requests_per_minute: -1 }, "requests_per_minute"],
      [{ ...PLAN, requests_per_day: 1.5 }, "requests_per_day"],
      [{ ...PLAN, requests_per_day: "100" }, "requests_per_day"],
      [{ ...PLAN, validity_days: -5 }, "validity_days"],
      [{ ...PLAN, validity_days: undefined }, "validity_days"],
      [{ ...PLAN, model_whitelist: "flux-1-dev" }, "model_whitelist"],
      [{ ...PLAN, model_blacklist: [""] }, "model_blacklist.0"],
      [{ ...PLAN, included: { "flux-1-dev": -1 } }, "included.flux-1-dev"],
      [{ ...PLAN, included: { "flux-1-dev": "0.0000001" } }, "included.flux-1-dev"],
      [{ ...PLAN, rpm: 5 }, "rpm"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post("/v1/plans", payload), 400, field);
    expect(await h.services.store.getPlan("p1")).toBeNull();
  });

  it("POST /v1/accounts/{id}/licenses names the bad field, 404 for no account", async () => {
    const url = `/v1/accounts/${w.account.id}/licenses`;
    const cases: [unknown, string][] = [
      [{}, "model_id"],
      [{ model_id: "no-such-model" }, "model_id"],
      [{ model_id: "flux-1-dev", starts_at: "2025-01-01" }, "starts_at"],
      [{ model_id: "flux-1-dev", starts_at: true }, "starts_at"],
      [
        { model_id: "flux-1-dev", starts_at: "2025-06-01T00:00:00Z", ends_at: "2025-06-01T00:00:00Z" },
        "ends_at",
      ],
      [{ model_id: "flux-1-dev", ends_at: "2025-01-01T00:00:00Z" }, "ends_at"],
      [{ model_id: "flux-1-dev", seats: 3 }, "seats"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post(url, payload), 400, field);
    expect(await h.services.store.listLicenses(w.account.id)).toEqual([]);
    expectStatus(await post("/v1/accounts/no-such-account/licenses", { model_id: "flux-1-dev" }), 404);
  });

  it("POST /v1/accounts/{id}/subscriptions names the bad field, 404 for no account", async () => {
    expectStatus(await post("/v1/plans", PLAN), 201);
    const url = `/v1/accounts/${w.account.id}/subscriptions`;
    const cases: [unknown, string][] = [
      [{}, "plan_id"],
      [{ plan_id: "no-such-plan" }, "plan_id"],
      [{ plan_id: "p1", activated_at: "soon" }, "activated_at"],
      [{ plan_id: "p1", note: "x" }, "note"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post(url, payload), 400, field);
    expect(await h.services.store.listSubscriptions(w.account.id)).toEqual([]);
    expect((await h.services.store.getAccount(w.account.id))?.planId).toBeNull();
    expectStatus(await post("/v1/accounts/no-such-account/subscriptions", { plan_id: "p1" }), 404);
  });

  it("POST /v1/accounts/{id}/payments names the bad field, 404 for no account", async () => {
    const url = `/v1/accounts/${w.account.id}/payments`;
    const cases: [unknown, string][] = [
      [{}, "amount_usd"],
      [{ amount_usd: -5 }, "amount_usd"],
      [{ amount_usd: "0.0000000000000000001" }, "amount_usd"], // 19 places
      [{ amount_usd: true }, "amount_usd"],
      [{ amount_usd: "1e10" }, "amount_usd"],
      [{ amount_usd: 5, paid_at: "2025-13-01T00:00:00Z" }, "paid_at"],
      [{ amount_usd: 5, reference: 5 }, "reference"],
      [{ amount_usd: 5, currency: "EUR" }, "currency"],
    ];
    for (const [payload, field] of cases) expectFieldError(await post(url, payload), 400, field);
    expect(await h.services.store.listPayments(w.account.id)).toEqual([]);
    expectStatus(await post("/v1/accounts/no-such-account/payments", { amount_usd: 1 }), 404);
  });

  it("refuses bodies that are not JSON objects", async () => {
    const invalid = await h.request({
      method: "POST",
      url: "/v1/accounts",
      key: ROOT_KEY,
      headers: { "content-type": "application/json" },
      payload: "{not json",
    });
    expectStatus(invalid, 400);
    expect(invalid.json().error).toMatchObject({ code: "VALIDATION", message: "body: is not valid JSON" });
    const text = await h.request({
      method: "POST",
      url: "/v1/accounts",
      key: ROOT_KEY,
      headers: { "content-type": "text/plain" },
      payload: "name=x",
    });
    expect(text.statusCode).toBeGreaterThanOrEqual(400);
    expect(text.statusCode).toBeLessThan(500);
    for (const payload of ["null", "[]", '"x"', "5"]) {
      const res = await h.request({
        method: "POST",
        url: "/v1/accounts",
        key: ROOT_KEY,
        headers: { "content-type": "application/json" },
        payload,
      });
      expectStatus(res, 400);
      expect(res.json().error.code).toBe("VALIDATION");
    }
  });

  it("refuses bodies over 1 MiB with 413", async () => {
    const res = await post("/v1/accounts", { name: "x", pad: "y".repeat(1024 * 1024) });
    expectStatus(res, 413);
    expect(res.json().error).toMatchObject({
      code: "PAYLOAD_TOO_LARGE",
      request_id: res.headers["x-request-id"],
    });
    const big = await post(`/v1/accounts/${w.account.id}/users`, {
      username: "z".repeat(1024 * 1024 + 10),
      role: "admin",
    });
    expectStatus(big, 413);
  });

  it("answers unknown routes with 404 in the native format", async () => {
    const res = await h.request({ method: "GET", url: "/v1/nothing-here?x=1", key: ROOT_KEY });
    expectStatus(res, 404);
    expect(res.json()).toEqual({
      error: {
        code: "NOT_FOUND",
        message: "Route GET /v1/nothing-here not found",
        request_id: res.headers["x-request-id"],
      },
    });
  });
});
