import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

const NOW = "2025-06-15T12:00:00.000Z";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(storeKinds())("native setup routes, happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const call = (method: "GET" | "POST" | "DELETE", url: string, payload?: unknown, key: string = ROOT_KEY) =>
    h.request({ method, url, payload: payload as object, key });

  it("POST /v1/accounts creates an account (201) and GET reads it", async () => {
    const res = await call("POST", "/v1/accounts", { name: "Initech" });
    expectStatus(res, 201);
    const body = res.json();
    expect(body.id).toMatch(UUID);
    expect(body).toEqual({
      id: body.id,
      name: "Initech",
      is_enabled: true,
      plan_id: null,
      billing_timezone: "UTC",
      billing_mode: "postpaid",
      created_at: NOW,
    });
    const read = await call("GET", `/v1/accounts/${body.id}`);
    expectStatus(read, 200);
    expect(read.json()).toEqual(body);
    // an account's admin reads its own account
    const own = await call("GET", `/v1/accounts/${w.account.id}`, undefined, w.admin.key);
    expectStatus(own, 200);
    expect(own.json()).toEqual({
      id: w.account.id,
      name: "Acme",
      is_enabled: true,
      plan_id: null,
      billing_timezone: "UTC",
      billing_mode: "postpaid",
      created_at: NOW,
    });
  });

  it("POST /v1/accounts with plan_id subscribes the account", async () => {
    expectStatus(
      await call("POST", "/v1/plans", {
        id: "pro",
        requests_per_minute: 60,
        requests_per_day: null,
        validity_days: 30,
      }),
      201,
    );
    const res = await call("POST", "/v1/accounts", { name: "Hooli", plan_id: "pro" });
    expectStatus(res, 201);
    expect(res.json()).toMatchObject({ name: "Hooli", plan_id: "pro" });
    expect(
      (await h.services.store.listSubscriptions(res.json().id)).map((s) => [s.planId, s.activatedAt]),
    ).toEqual([["pro", Date.parse(NOW)]]);
  });

  it("POST /v1/accounts/{id}/users creates users (root and the account's admin)", async () => {
    const res = await call("POST", `/v1/accounts/${w.account.id}/users`, {
      username: "dave",
      role: "member",
      node_id: "node-7",
    });
    expectStatus(res, 201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.stringMatching(UUID),
      account_id: w.account.id,
      username: "dave",
      role: "member",
      node_id: "node-7",
      created_at: NOW,
    });
    const byAdmin = await call(
      "POST",
      `/v1/accounts/${w.account.id}/users`,
      { username: "erin", role: "admin" },
      w.admin.key,
    );
    expectStatus(byAdmin, 201);
    expect(byAdmin.json()).toMatchObject({
      account_id: w.account.id,
      username: "erin",
      role: "admin",
      node_id: null,
    });
    expect(await h.services.store.getUser(body.id)).toMatchObject({
      accountId: w.account.id,
      nodeId: "node-7",
    });
  });

  it("POST /v1/users/{id}/keys issues a key shown once, usable at once, labelled Key N by default", async () => {
    const res = await call("POST", `/v1/users/${w.member.id}/keys`, {});
    expectStatus(res, 201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.stringMatching(UUID),
      user_id: w.member.id,
      account_id: w.account.id,
      label: "Key 2",
      prefix: body.key.slice(0, 10),
      key: expect.stringMatching(/^tly_[0-9A-Za-z]{40}$/),
      created_at: NOW,
      last_used_at: null,
      revoked_at: null,
      previous_key_expires_at: null,
    });
    // stored only as a hash
    const stored = await h.services.store.getKey(body.id);
    expect(JSON.stringify(stored, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(
      body.key,
    );
    expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
    // the new key works
    expectStatus(await call("GET", `/v1/accounts/${w.account.id}`, undefined, body.key), 200);
    // a label, and a key issued by the account's admin; no body at all is fine too
    const labelled = await call(
      "POST",
      `/v1/users/${w.member.id}/keys`,
      { label: "Production Key" },
      w.admin.key,
    );
    expectStatus(labelled, 201);
    expect(labelled.json().label).toBe("Production Key");
    const bare = await h.request({ method: "POST", url: `/v1/users/${w.member.id}/keys`, key: ROOT_KEY });
    expectStatus(bare, 201);
    expect(bare.json().label).toBe("Key 4");
    expect(new Set([body.key, labelled.json().key, bare.json().key]).size).toBe(3);
  });

  it("DELETE /v1/keys/{id} revokes a key (204) and it is refused from then on", async () => {
    expectStatus(await call("GET", `/v1/accounts/${w.account.id}`, undefined, w.member.key), 200);
    const res = await call("DELETE", `/v1/keys/${w.member.keyId}`, undefined, w.admin.key);
    expectStatus(res, 204);
    expect(res.body).toBe("");
    const after = await call("GET", `/v1/accounts/${w.account.id}`, undefined, w.member.key);
    expectStatus(after, 401);
    expect((await h.services.store.getKey(w.member.keyId))?.revokedAt).toBe(Date.parse(NOW));
    // the root key revokes too
    expectStatus(await call("DELETE", `/v1/keys/${w.other.admin.keyId}`), 204);
    expectStatus(await call("GET", `/v1/accounts/${w.other.accountId}`, undefined, w.other.admin.key), 401);
  });

  it("POST /v1/models creates (201) then updates (200), adding a price version only when the price changes", async () => {
    const created = await call("POST", "/v1/models", {
      id: "sdxl",
      unit: "image",
      kind: "image",
      unit_price: "0.00000015",
    });
    expectStatus(created, 201);
    expect(created.json()).toEqual({
      id: "sdxl",
      unit: "image",
      kind: "image",
      unit_price: 0.00000015,
      currency: "USD",
      reporting_enabled: true,
      effective_from: NOW,
      created_at: NOW,
      updated_at: NOW,
    });
    // the exact digits on the wire, not 1.5e-7
    expect(created.body).toContain('"unit_price":0.00000015');

    h.clock.advance(60_000);
    const same = await call("POST", "/v1/models", {
      id: "sdxl",
      unit: "image",
      kind: "image",
      unit_price: 0.00000015,
      reporting_enabled: false,
    });
    expectStatus(same, 200);
    expect(same.json()).toEqual({
      id: "sdxl",
      unit: "image",
      kind: "image",
      unit_price: 0.00000015,
      currency: "USD",
      reporting_enabled: false,
      effective_from: NOW,
      created_at: NOW,
      updated_at: "2025-06-15T12:01:00.000Z",
    });

    const repriced = await call("POST", "/v1/models", {
      id: "sdxl",
      unit: "image",
      kind: "image",
      unit_price: 0.04,
      currency: "EUR",
      effective_from: "2025-07-01T00:00:00Z",
    });
    expectStatus(repriced, 200);
    expect(repriced.json()).toMatchObject({
      unit_price: 0.04,
      currency: "EUR",
      effective_from: "2025-07-01T00:00:00.000Z",
      reporting_enabled: false,
    });

    // the operator sees every model, in OpenAI's list shape with Tally's fields
    const list = await call("GET", "/v1/models");
    expectStatus(list, 200);
    expect(list.json().object).toBe("list");
    const models = list.json().data as { id: string }[];
    expect(models.find((m) => m.id === "sdxl")).toEqual({
      id: "sdxl",
      object: "model",
      created: Math.floor(Date.parse(NOW) / 1000),
      owned_by: "tally",
      unit: "image",
      kind: "image",
      reporting_enabled: false,
      upstream_id: null,
      upstream_model: null,
      prices: [
        { unit_price: 0.00000015, currency: "USD", effective_from: NOW },
        { unit_price: 0.04, currency: "EUR", effective_from: "2025-07-01T00:00:00.000Z" },
      ],
    });
    expect(models.map((m) => m.id)).toEqual(["embed-small", "flux-1-dev", "gpt-mini", "sdxl", "tts-1"]);
    // an account's key sees only the models its account may use (sdxl was never licensed to it)
    const own = await call("GET", "/v1/models", undefined, w.member.key);
    expectStatus(own, 200);
    expect((own.json().data as { id: string }[]).map((m) => m.id)).not.toContain("sdxl");
  });

  it("POST /v1/plans creates (201) then updates (200) with exact included quantities", async () => {
    const body = {
      id: "pro",
      requests_per_minute: 60,
      requests_per_day: null,
      validity_days: -999999,
      model_whitelist: ["flux-1-dev"],
      included: { "flux-1-dev": 100.5 },
    };
    const created = await call("POST", "/v1/plans", body);
    expectStatus(created, 201);
    expect(created.json()).toEqual({
      id: "pro",
      requests_per_minute: 60,
      requests_per_day: null,
      validity_days: -999999,
      model_whitelist: ["flux-1-dev"],
      model_blacklist: null,
      included: { "flux-1-dev": 100.5 },
      created_at: NOW,
      updated_at: NOW,
      currency: "USD",
      base_fee: 0,
      charges: [],
    });
    h.clock.advance(1000);
    const updated = await call("POST", "/v1/plans", {
      id: "pro",
      requests_per_minute: null,
      requests_per_day: 1000,
      validity_days: 30,
      model_blacklist: ["tts-1"],
    });
    expectStatus(updated, 200);
    expect(updated.json()).toEqual({
      id: "pro",
      requests_per_minute: null,
      requests_per_day: 1000,
      validity_days: 30,
      model_whitelist: null,
      model_blacklist: ["tts-1"],
      included: {},
      created_at: NOW,
      updated_at: "2025-06-15T12:00:01.000Z",
      currency: "USD",
      base_fee: 0,
      charges: [],
    });
  });

  it("POST /v1/accounts/{id}/licenses licenses a model with time bounds", async () => {
    const res = await call("POST", `/v1/accounts/${w.account.id}/licenses`, {
      model_id: "flux-1-dev",
      starts_at: "2025-01-01T00:00:00+02:00",
      ends_at: Date.parse("2026-01-01T00:00:00Z"),
    });
    expectStatus(res, 201);
    expect(res.json()).toEqual({
      id: expect.stringMatching(UUID),
      account_id: w.account.id,
      model_id: "flux-1-dev",
      starts_at: "2024-12-31T22:00:00.000Z",
      ends_at: "2026-01-01T00:00:00.000Z",
      created_at: NOW,
    });
    const open = await call("POST", `/v1/accounts/${w.account.id}/licenses`, { model_id: "tts-1" });
    expectStatus(open, 201);
    expect(open.json()).toMatchObject({ starts_at: NOW, ends_at: null });
    expect((await h.services.store.listLicenses(w.account.id)).map((l) => l.modelId)).toEqual([
      "flux-1-dev",
      "tts-1",
    ]);
  });

  it("POST /v1/accounts/{id}/subscriptions keeps history and sets the current plan", async () => {
    for (const id of ["basic", "pro"]) {
      expectStatus(
        await call("POST", "/v1/plans", {
          id,
          requests_per_minute: null,
          requests_per_day: null,
          validity_days: 30,
        }),
        201,
      );
    }
    const first = await call("POST", `/v1/accounts/${w.account.id}/subscriptions`, {
      plan_id: "basic",
      activated_at: "2025-06-01T00:00:00Z",
    });
    expectStatus(first, 201);
    expect(first.json()).toEqual({
      id: expect.stringMatching(UUID),
      account_id: w.account.id,
      plan_id: "basic",
      activated_at: "2025-06-01T00:00:00.000Z",
      ends_at: null,
      created_at: NOW,
    });
    const second = await call("POST", `/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "pro" });
    expectStatus(second, 201);
    expect(second.json()).toMatchObject({ plan_id: "pro", activated_at: NOW });
    expect((await call("GET", `/v1/accounts/${w.account.id}`)).json().plan_id).toBe("pro");
    expect((await h.services.store.listSubscriptions(w.account.id)).map((s) => s.planId)).toEqual([
      "basic",
      "pro",
    ]);
  });

  it("POST /v1/accounts/{id}/payments records an exact amount", async () => {
    const res = await call("POST", `/v1/accounts/${w.account.id}/payments`, {
      amount_usd: "1234.567890123456789",
      paid_at: "2025-06-10T08:00:00Z",
      reference: "inv-42",
    });
    expectStatus(res, 201);
    expect(res.json()).toMatchObject({
      id: expect.stringMatching(UUID),
      account_id: w.account.id,
      paid_at: "2025-06-10T08:00:00.000Z",
      reference: "inv-42",
      created_at: NOW,
    });
    expect(res.body).toContain('"amount_usd":1234.567890123456789');
    const plain = await call("POST", `/v1/accounts/${w.account.id}/payments`, { amount_usd: 50 });
    expectStatus(plain, 201);
    expect(plain.json()).toMatchObject({ amount_usd: 50, paid_at: NOW, reference: null });
    expect((await h.services.store.listPayments(w.account.id)).map((p) => p.amountUsd)).toEqual([
      1234_567890123456789n * 10n ** 3n,
      50n * 10n ** 18n,
    ]);
  });

  it("GET /healthz answers without a key, and /openapi.json lists every native route", async () => {
    const health = await h.request({ method: "GET", url: "/healthz" });
    expectStatus(health, 200);
    expect(health.json()).toEqual({ status: "ok", store: kind.name });
    const spec = await h.request({ method: "GET", url: "/openapi.json" });
    expectStatus(spec, 200);
    const paths = spec.json().paths;
    for (const [path, method] of [
      ["/v1/accounts", "post"],
      ["/v1/accounts/{id}", "get"],
      ["/v1/accounts/{id}/users", "post"],
      ["/v1/users/{id}/keys", "post"],
      ["/v1/keys/{id}", "delete"],
      ["/v1/models", "post"],
      ["/v1/models", "get"],
      ["/v1/accounts/{id}/licenses", "post"],
      ["/v1/plans", "post"],
      ["/v1/accounts/{id}/subscriptions", "post"],
      ["/v1/accounts/{id}/payments", "post"],
      ["/v1/events", "post"],
    ]) {
      expect(paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(paths["/v1/accounts"].post.requestBody.content["application/json"].schema.required).toEqual([
      "name",
    ]);
  });
});
