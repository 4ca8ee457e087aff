import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { grantLicense, report } from "../bfl/license-world.ts";

const NOW = "2025-06-15T12:00:00.000Z";

describe.each(storeKinds())("operator API, happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const call = (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, key: string = ROOT_KEY) =>
    h.request({ method, url, payload: payload as object, key });

  /** The five surfaces, each read with `key`. */
  const surfaces = (key: string): Record<string, () => Promise<LightMyRequestResponse>> => ({
    native: () => call("GET", `/v1/accounts/${w.account.id}`, undefined, key),
    usageLog: () => call("GET", "/usage", undefined, key),
    licenseReport: () => report(h, key, { body: { number_of_generations: 1 } }),
    keyStatistics: () => call("GET", "/v1/usage", undefined, key),
    workspaceUsage: () => call("GET", "/v1/models/usage?start=2025-06-01&end=2025-06-16", undefined, key),
  });

  it("a disabled account's keys are refused on every surface, and work again once it is enabled", async () => {
    await grantLicense(h, w.account.id);
    for (const [name, send] of Object.entries(surfaces(w.admin.key))) {
      expect([200, 201], name).toContain((await send()).statusCode);
    }
    const off = await call("PATCH", `/v1/accounts/${w.account.id}`, { is_enabled: false });
    expectStatus(off, 200);
    expect(off.json()).toMatchObject({ id: w.account.id, is_enabled: false });

    for (const key of [w.admin.key, w.member.key]) {
      for (const [name, send] of Object.entries(surfaces(key))) {
        const res = await send();
        expect(res.statusCode, `${name} ${res.body}`).toBe(403);
        expect(res.body, name).toMatch(/account is disabled/);
      }
    }
    // each surface answers in its own format
    expect((await surfaces(w.admin.key).native()).json().error.code).toBe("FORBIDDEN");
    expect((await surfaces(w.admin.key).usageLog()).json()).toHaveProperty("detail");
    expect((await surfaces(w.admin.key).licenseReport()).json()).toHaveProperty("detail");
    // another account's keys are untouched, and the root still reads the disabled account's usage
    expectStatus(await call("GET", "/v1/usage", undefined, w.other.admin.key), 200);
    expectStatus(await call("GET", `/usage?account_id=${w.account.id}`), 200);
    const accounts = (await call("GET", "/v1/accounts")).json().data;
    expect(accounts.find((a: { id: string }) => a.id === w.account.id).is_enabled).toBe(false);

    expectStatus(await call("PATCH", `/v1/accounts/${w.account.id}`, { is_enabled: true }), 200);
    for (const [name, send] of Object.entries(surfaces(w.admin.key))) {
      expect([200, 201], name).toContain((await send()).statusCode);
    }
    const stats = (await call("GET", "/v1/usage", undefined, w.member.key)).json();
    expect(stats.account_information.is_enabled).toBe(true);
  });

  it("PATCH changes accounts, users and keys, and each change is in the audit trail", async () => {
    const acc = await call("PATCH", `/v1/accounts/${w.account.id}`, {
      name: "Acme Corp",
      billing_timezone: "Europe/Paris",
      billing_mode: "prepaid",
    });
    expectStatus(acc, 200);
    expect(acc.json()).toEqual({
      id: w.account.id,
      name: "Acme Corp",
      is_enabled: true,
      plan_id: null,
      billing_timezone: "Europe/Paris",
      billing_mode: "prepaid",
      created_at: NOW,
    });
    expect((await call("GET", `/v1/accounts/${w.account.id}`)).json()).toEqual(acc.json());

    const user = await call(
      "PATCH",
      `/v1/users/${w.member.id}`,
      { username: "robert", role: "admin" },
      w.admin.key,
    );
    expectStatus(user, 200);
    expect(user.json()).toMatchObject({ id: w.member.id, username: "robert", role: "admin" });

    const key = await call("PATCH", `/v1/keys/${w.member.keyId}`, { label: "laptop" }, w.admin.key);
    expectStatus(key, 200);
    expect(key.json()).toMatchObject({ id: w.member.keyId, label: "laptop", user_id: w.member.id });
    expect(key.body).not.toContain(w.member.key);

    const audit = await call("GET", `/v1/audit?account_id=${w.account.id}`);
    expectStatus(audit, 200);
    const entries = audit.json().data;
    expect(entries.map((e: { resource_type: string }) => e.resource_type).sort()).toEqual([
      "account",
      "key",
      "user",
    ]);
    const userEntry = entries.find((e: { resource_type: string }) => e.resource_type === "user");
    expect(userEntry).toMatchObject({
      account_id: w.account.id,
      resource_id: w.member.id,
      usage_id: null,
      action: "update",
      actor_user_id: w.admin.id,
      actor_key_id: w.admin.keyId,
      at: NOW,
      before: { username: "bob", role: "member" },
      after: { username: "robert", role: "admin" },
    });
    const accountOnly = (
      await call("GET", `/v1/audit?account_id=${w.account.id}&resource_type=account`)
    ).json().data;
    expect(accountOnly).toHaveLength(1);
    expect(accountOnly[0].before).toMatchObject({ name: "Acme", billing_mode: "postpaid" });
    const byId = (
      await call("GET", `/v1/audit?account_id=${w.account.id}&resource_id=${w.member.keyId}`)
    ).json().data;
    expect(byId.map((e: { after: unknown }) => e.after)).toEqual([
      { label: "laptop", prefix: expect.any(String) },
    ]);
  });

  it("rotation without grace: same key, new secret at once, the old one refused", async () => {
    const before = (await call("GET", `/v1/keys/${w.admin.keyId}`)).json();
    const res = await call("POST", `/v1/keys/${w.admin.keyId}/rotate`);
    expectStatus(res, 200);
    const rotated = res.json();
    expect(rotated).toMatchObject({ id: w.admin.keyId, label: before.label, created_at: before.created_at });
    expect(rotated.key).toMatch(/^tly_/);
    expect(rotated.prefix).toBe(rotated.key.slice(0, 10));
    expectStatus(await call("GET", "/v1/usage", undefined, w.admin.key), 401);
    expectStatus(await call("GET", "/v1/usage", undefined, rotated.key), 200);
    const audit = (
      await call("GET", `/v1/audit?account_id=${w.account.id}&resource_id=${w.admin.keyId}`)
    ).json().data;
    expect(audit[0]).toMatchObject({ action: "rotate", resource_type: "key" });
    expect(JSON.stringify(audit)).not.toContain(rotated.key);
  });

  it("rotation with grace: the old secret works until the grace ends", async () => {
    const res = await call("POST", `/v1/keys/${w.member.keyId}/rotate`, { grace_seconds: 60 }, w.admin.key);
    expectStatus(res, 200);
    const rotated = res.json();
    expect(rotated.previous_key_expires_at).toBe("2025-06-15T12:01:00.000Z");
    expectStatus(await call("GET", "/v1/usage", undefined, w.member.key), 200);
    expectStatus(await call("GET", "/v1/usage", undefined, rotated.key), 200);
    h.clock.advance(59_999);
    expectStatus(await call("GET", "/v1/usage", undefined, w.member.key), 200);
    h.clock.advance(1);
    expectStatus(await call("GET", "/v1/usage", undefined, w.member.key), 401);
    expectStatus(await call("GET", "/v1/usage", undefined, rotated.key), 200);
    // a second rotation ends the first one's grace at once
    const again = (await call("POST", `/v1/keys/${w.member.keyId}/rotate`, { grace_seconds: 60 })).json();
    const third = (await call("POST", `/v1/keys/${w.member.keyId}/rotate`)).json();
    expectStatus(await call("GET", "/v1/usage", undefined, again.key), 401);
    expectStatus(await call("GET", "/v1/usage", undefined, third.key), 200);
  });

  it("lists every resource as {data, has_more}, and reads each by id", async () => {
    await call("POST", "/v1/plans", {
      id: "pro",
      requests_per_minute: 60,
      requests_per_day: null,
      validity_days: 30,
    });
    const sub = (await call("POST", `/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "pro" })).json();
    const lic = (
      await call("POST", `/v1/accounts/${w.account.id}/licenses`, { model_id: "flux-1-dev" })
    ).json();
    await call("POST", `/v1/accounts/${w.account.id}/licenses`, { model_id: "gpt-mini" });
    const pay = (await call("POST", `/v1/accounts/${w.account.id}/payments`, { amount_usd: "100" })).json();

    const accounts = (await call("GET", "/v1/accounts")).json();
    expect(accounts.has_more).toBe(false);
    expect(accounts.data.map((a: { name: string }) => a.name).sort()).toEqual(["Acme", "Globex"]);
    expect(
      (await call("GET", "/v1/accounts?name_prefix=Glo")).json().data.map((a: { name: string }) => a.name),
    ).toEqual(["Globex"]);
    const users = (await call("GET", `/v1/accounts/${w.account.id}/users`)).json();
    // the world is built at one clock instant: equal instants are ordered by id
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
    expect(users.data.map((u: { username: string }) => u.username).sort()).toEqual(["alice", "bob"]);
    expect([...users.data].sort(byId)).toEqual(users.data);
    const keys = (await call("GET", `/v1/accounts/${w.account.id}/keys`)).json();
    expect(keys.data.map((k: { id: string }) => k.id)).toEqual([w.admin.keyId, w.member.keyId].sort());
    expect(Object.keys(keys.data[0]).sort()).toEqual(
      ["account_id", "created_at", "id", "label", "last_used_at", "prefix", "revoked_at", "user_id"].sort(),
    );
    expect(JSON.stringify(keys)).not.toContain(w.admin.key);
    const ofMember = (await call("GET", `/v1/accounts/${w.account.id}/keys?user_id=${w.member.id}`)).json();
    expect(ofMember.data.map((k: { id: string }) => k.id)).toEqual([w.member.keyId]);
    expect((await call("GET", `/v1/users/${w.member.id}/keys`)).json().data).toEqual(ofMember.data);
    expect((await call("GET", `/v1/keys/${w.member.keyId}`)).json()).toEqual(ofMember.data[0]);
    expect((await call("GET", `/v1/users/${w.member.id}`)).json()).toEqual(
      users.data.find((u: { id: string }) => u.id === w.member.id),
    );

    const model = (await call("GET", "/v1/models/flux-1-dev")).json();
    expect(model).toMatchObject({ id: "flux-1-dev", prices: [{ unit_price: 0.025, currency: "USD" }] });
    expect((await call("GET", "/v1/plans")).json()).toMatchObject({ data: [{ id: "pro" }], has_more: false });
    expect((await call("GET", "/v1/plans/pro")).json()).toMatchObject({ id: "pro", requests_per_minute: 60 });

    const base = `/v1/accounts/${w.account.id}`;
    expect((await call("GET", `${base}/licenses`)).json().data).toHaveLength(2);
    expect((await call("GET", `${base}/licenses?model_id=flux-1-dev`)).json()).toEqual({
      data: [lic],
      has_more: false,
    });
    expect((await call("GET", `${base}/licenses/${lic.id}`)).json()).toEqual(lic);
    expect((await call("GET", `${base}/subscriptions`)).json()).toEqual({ data: [sub], has_more: false });
    expect((await call("GET", `${base}/subscriptions/${sub.id}`)).json()).toEqual(sub);
    expect((await call("GET", `${base}/payments`)).json()).toEqual({ data: [pay], has_more: false });
    expect((await call("GET", `${base}/payments/${pay.id}`)).json()).toEqual(pay);
  });

  it("licenses and subscriptions end by PATCH; a refund is a negative entry beside the payment", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    await call("POST", "/v1/plans", {
      id: "pro",
      requests_per_minute: 60,
      requests_per_day: null,
      validity_days: 30,
    });
    const lic = (
      await call("POST", `${base}/licenses`, { model_id: "flux-1-dev", starts_at: "2025-06-01T00:00:00Z" })
    ).json();
    const ended = await call("PATCH", `${base}/licenses/${lic.id}`, { ends_at: "2025-06-20T00:00:00Z" });
    expectStatus(ended, 200);
    expect(ended.json()).toEqual({ ...lic, ends_at: "2025-06-20T00:00:00.000Z" });
    expect((await call("GET", `${base}/licenses/${lic.id}`)).json().ends_at).toBe("2025-06-20T00:00:00.000Z");

    const sub = (
      await call("POST", `${base}/subscriptions`, { plan_id: "pro", activated_at: "2025-06-01T00:00:00Z" })
    ).json();
    const subEnded = await call("PATCH", `${base}/subscriptions/${sub.id}`, {
      ends_at: "2025-07-01T00:00:00Z",
    });
    expectStatus(subEnded, 200);
    expect(subEnded.json().ends_at).toBe("2025-07-01T00:00:00.000Z");

    const pay = (await call("POST", `${base}/payments`, { amount_usd: "100.10" })).json();
    // one clock instant per entry: equal instants would be ordered by their random ids
    h.clock.advance(1000);
    const part = await call("POST", `${base}/payments/${pay.id}/refund`, {
      amount_usd: "0.10",
      reference: "RMA-1",
    });
    expectStatus(part, 201);
    expect(part.json()).toMatchObject({ amount_usd: -0.1, refund_of: pay.id, reference: "RMA-1" });
    h.clock.advance(1000);
    const rest = await call("POST", `${base}/payments/${pay.id}/refund`, {});
    expectStatus(rest, 201);
    expect(rest.json().amount_usd).toBe(-100);
    const payments = (await call("GET", `${base}/payments`)).json().data;
    expect(payments.map((p: { amount_usd: number }) => p.amount_usd)).toEqual([100.1, -0.1, -100]);
    expect((await call("GET", `${base}/payments/${pay.id}`)).json()).toEqual(pay);
    expectStatus(await call("POST", `${base}/payments/${pay.id}/refund`, {}), 409);

    const audit = (await call("GET", `/v1/audit?account_id=${w.account.id}`)).json().data;
    expect(
      audit.map((e: { resource_type: string; action: string }) => `${e.resource_type}:${e.action}`).sort(),
    ).toEqual(["license:update", "payment:refund", "payment:refund", "subscription:update"]);
  });

  it("pages over 1,001 accounts miss and repeat none while accounts are added", async () => {
    // creation instants with ties: ids then order them
    const original = new Set<string>();
    for (let i = 0; i < 1001; i++) {
      const id = randomUUID();
      original.add(id);
      await h.services.store.createAccount({
        id,
        name: `bulk-${i}`,
        isEnabled: true,
        planId: null,
        createdAt: Date.parse("2025-01-01T00:00:00Z") + Math.floor(i / 7),
      });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const url = `/v1/accounts?name_prefix=bulk-&limit=100${cursor ? `&starting_after=${cursor}` : ""}`;
      const res = await call("GET", url);
      expectStatus(res, 200);
      const page = res.json();
      pages++;
      seen.push(...page.data.map((a: { id: string }) => a.id));
      // an account added meanwhile, now (after every bulk account in creation order)
      expectStatus(await call("POST", "/v1/accounts", { name: `bulk-new-${pages}` }), 201);
      if (!page.has_more) break;
      cursor = page.data.at(-1).id;
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of original) expect(seen).toContain(id);
    // creation order: by instant (every 7 share one), then by id
    const expected = [...original]
      .map((id, i) => ({ id, at: Math.floor(i / 7) }))
      .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1))
      .map((a) => a.id);
    expect(seen.slice(0, 1001)).toEqual(expected);
    expect(pages).toBeGreaterThanOrEqual(11);
    // the default page is 50; 1000 is the most
    expect((await call("GET", "/v1/accounts")).json().data).toHaveLength(50);
    expect((await call("GET", "/v1/accounts?limit=1000")).json()).toMatchObject({ has_more: true });
  });
});
