import { Writable } from "node:stream";
import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, REDACT } from "../../../src/http/app.ts";
import { createServices } from "../../../src/services.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, createUserWithKey, type World } from "../../support/world.ts";

type Method = "GET" | "POST" | "DELETE";
interface Route {
  name: string;
  method: Method;
  url: (w: World, n: number) => string;
  body?: (w: World, n: number) => unknown;
}

/** Every native route, with a valid request for account A; `n` keeps repeated calls distinct. */
const ROUTES: Route[] = [
  { name: "create account", method: "POST", url: () => "/v1/accounts", body: () => ({ name: "New" }) },
  { name: "read account", method: "GET", url: (w) => `/v1/accounts/${w.account.id}` },
  {
    name: "create user",
    method: "POST",
    url: (w) => `/v1/accounts/${w.account.id}/users`,
    body: (_w, n) => ({ username: `user-${n}`, role: "member" }),
  },
  { name: "create key", method: "POST", url: (w) => `/v1/users/${w.member.id}/keys`, body: () => ({}) },
  { name: "revoke key", method: "DELETE", url: (w) => `/v1/keys/${w.member.keyId}` },
  {
    name: "upsert model",
    method: "POST",
    url: () => "/v1/models",
    body: (_w, n) => ({ id: `m-${n}`, unit: "image", kind: "image", unit_price: 1 }),
  },
  { name: "list models", method: "GET", url: () => "/v1/models" },
  {
    name: "create license",
    method: "POST",
    url: (w) => `/v1/accounts/${w.account.id}/licenses`,
    body: () => ({ model_id: "flux-1-dev" }),
  },
  {
    name: "upsert plan",
    method: "POST",
    url: () => "/v1/plans",
    body: (_w, n) => ({
      id: `plan-${n}`,
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: 30,
    }),
  },
  {
    name: "create subscription",
    method: "POST",
    url: (w) => `/v1/accounts/${w.account.id}/subscriptions`,
    body: () => ({ plan_id: "basic" }),
  },
  {
    name: "create payment",
    method: "POST",
    url: (w) => `/v1/accounts/${w.account.id}/payments`,
    body: () => ({ amount_usd: 10 }),
  },
  {
    name: "record events",
    method: "POST",
    url: () => "/v1/events",
    body: (w, n) => ({ id: `ev-${n}`, model_id: "flux-1-dev", quantity: 1, account_id: w.account.id }),
  },
];

type Style = "bearer" | "key" | "x-key";
const headersFor = (secret: string, style: Style): Record<string, string> =>
  style === "bearer"
    ? { authorization: `Bearer ${secret}` }
    : style === "key"
      ? { authorization: `Key ${secret}` }
      : { "x-key": secret };

function expectRequestId(res: LightMyRequestResponse): void {
  const id = res.headers["x-request-id"];
  expect(typeof id === "string" && id.length > 0, `x-request-id on ${res.statusCode}`).toBe(true);
  if (res.statusCode >= 400 && res.headers["content-type"]?.toString().includes("json")) {
    expect(res.json().error.request_id).toBe(id);
  }
}

describe.each(storeKinds())("native API security ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    expectStatus(
      await h.request({
        method: "POST",
        url: "/v1/plans",
        key: ROOT_KEY,
        payload: { id: "basic", requests_per_minute: null, requests_per_day: null, validity_days: 30 },
      }),
      201,
    );
  });
  afterEach(async () => h.close());

  let counter = 0;
  const call = (r: Route, headers: Record<string, string>, world: World = w) => {
    counter += 1;
    const body = r.body?.(world, counter);
    // the root key writes events by naming account_id; user keys imply it
    const payload =
      r.name === "record events" && !Object.values(headers).some((v) => v.endsWith(ROOT_KEY))
        ? { ...(body as object), account_id: undefined }
        : body;
    return h.app.inject({
      method: r.method,
      url: r.url(world, counter),
      headers,
      payload: payload as object,
    });
  };

  it("the root key works on every route in each of the three header styles", async () => {
    for (const style of ["bearer", "key", "x-key"] as Style[]) {
      for (const r of ROUTES) {
        const res = await call(r, headersFor(ROOT_KEY, style));
        expect(res.statusCode, `${style} ${r.name}: ${res.body}`).toBeLessThan(300);
        expectRequestId(res);
        if (r.name === "record events") expect(res.json().accepted, res.body).toBe(1);
      }
    }
    // the scheme word is case-insensitive
    expectStatus(await call(ROUTES[1], { authorization: `bearer ${ROOT_KEY}` }), 200);
  });

  it("an account admin's key works in each header style", async () => {
    for (const style of ["bearer", "key", "x-key"] as Style[]) {
      const res = await call(ROUTES[2], headersFor(w.admin.key, style));
      expectStatus(res, 201);
      const ev = await call(ROUTES[11], headersFor(w.admin.key, style));
      expectStatus(ev, 200);
      expect(ev.json().accepted).toBe(1);
    }
  });

  it("missing, wrong and revoked keys get 401 on every route, and nothing is written", async () => {
    const revoked = await createUserWithKey(h, w.account.id, "leaver", "admin");
    expectStatus(await h.request({ method: "DELETE", url: `/v1/keys/${revoked.keyId}`, key: ROOT_KEY }), 204);
    const attempts: [string, Record<string, string>][] = [
      ["missing", {}],
      ["empty bearer", { authorization: "Bearer " }],
      ["basic scheme", { authorization: `Basic ${Buffer.from(`u:${ROOT_KEY}`).toString("base64")}` }],
      ["wrong bearer", { authorization: "Bearer tly_00000000000000000000000000000000000000ZZ" }],
      ["wrong key", { authorization: `Key ${ROOT_KEY}x` }],
      ["wrong x-key", { "x-key": w.admin.key.slice(0, -1) }],
      ["overlong", { "x-key": "k".repeat(5000) }],
      ["revoked bearer", headersFor(revoked.key, "bearer")],
      ["revoked key", headersFor(revoked.key, "key")],
      ["revoked x-key", headersFor(revoked.key, "x-key")],
    ];
    for (const [label, headers] of attempts) {
      for (const r of ROUTES) {
        const res = await call(r, headers);
        expect(res.statusCode, `${label} ${r.name}: ${res.body}`).toBe(401);
        expect(res.json().error.code).toBe("UNAUTHORIZED");
        expectRequestId(res);
      }
    }
    expect(await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 })).toEqual([]);
    expect(await h.services.store.getModel(`m-${counter}`)).toBeNull();
    expect(await h.services.store.listPayments(w.account.id)).toEqual([]);
  });

  it("a member cannot create users or keys, revoke keys, or do the root's work (403)", async () => {
    for (const r of ROUTES) {
      const res = await call(r, headersFor(w.member.key, "bearer"));
      const allowed = ["read account", "list models", "record events"].includes(r.name);
      if (allowed) expect(res.statusCode, `${r.name}: ${res.body}`).toBeLessThan(300);
      else {
        expect(res.statusCode, `${r.name}: ${res.body}`).toBe(403);
        expect(res.json().error.code).toBe("FORBIDDEN");
      }
    }
    expect((await h.services.store.listKeys(w.member.id)).map((k) => k.revokedAt)).toEqual([null]);
  });

  it("an admin cannot create accounts, models, plans, licenses, subscriptions or payments (403)", async () => {
    const rootOnly = [
      "create account",
      "upsert model",
      "create license",
      "upsert plan",
      "create subscription",
      "create payment",
    ];
    for (const r of ROUTES) {
      const res = await call(r, headersFor(w.admin.key, "bearer"));
      if (rootOnly.includes(r.name)) {
        expect(res.statusCode, `${r.name}: ${res.body}`).toBe(403);
        expect(res.json().error.code).toBe("FORBIDDEN");
      } else expect(res.statusCode, `${r.name}: ${res.body}`).toBeLessThan(300);
    }
    expect(await h.services.store.listLicenses(w.account.id)).toEqual([]);
    expect(await h.services.store.listSubscriptions(w.account.id)).toEqual([]);
    expect(await h.services.store.listPayments(w.account.id)).toEqual([]);
  });

  it("account A's keys get 404 for account B's ids, indistinguishable from ids that do not exist", async () => {
    const bUser = await createUserWithKey(h, w.other.accountId, "dan", "member");
    const probes: [Method, string, string, unknown][] = [
      ["GET", `/v1/accounts/${w.other.accountId}`, "/v1/accounts/no-such-id", undefined],
      [
        "POST",
        `/v1/accounts/${w.other.accountId}/users`,
        "/v1/accounts/no-such-id/users",
        { username: "x", role: "admin" },
      ],
      ["POST", `/v1/users/${bUser.id}/keys`, "/v1/users/no-such-id/keys", {}],
      ["DELETE", `/v1/keys/${bUser.keyId}`, "/v1/keys/no-such-id", undefined],
    ];
    for (const key of [w.admin.key, w.member.key]) {
      for (const [method, url, missingUrl, payload] of probes) {
        const res = await h.request({ method, url, key, payload: payload as object });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404);
        const missing = await h.request({ method, url: missingUrl, key, payload: payload as object });
        expect(missing.statusCode).toBe(404);
        expect(res.json().error.message).toBe(missing.json().error.message);
      }
    }
    // B is untouched
    expect((await h.services.store.getKey(bUser.keyId))?.revokedAt).toBeNull();
    expect((await h.services.store.listKeys(bUser.id)).length).toBe(1);
    expectStatus(
      await h.request({ method: "GET", url: `/v1/accounts/${w.other.accountId}`, key: bUser.key }),
      200,
    );
  });

  it("events written with account A's key land only in account A", async () => {
    const res = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      payload: {
        events: [
          { id: "mine", model_id: "flux-1-dev", quantity: 2 },
          { id: "into-b", model_id: "flux-1-dev", quantity: 3, account_id: w.other.accountId },
          { id: "b-key", model_id: "flux-1-dev", quantity: 4, key_id: w.other.admin.keyId },
          { id: "b-user", model_id: "flux-1-dev", quantity: 5, user_id: w.other.admin.id },
        ],
      },
    });
    expectStatus(res, 200);
    expect(res.json().rejected).toEqual([
      { index: 1, error: "events.1.account_id: unknown account", field: "events.1.account_id" },
      { index: 2, error: "events.2.key_id: unknown key", field: "events.2.key_id" },
      { index: 3, error: "events.3.user_id: unknown user", field: "events.3.user_id" },
    ]);
    const wrapped = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.member.key,
      payload: {
        account_id: w.other.accountId,
        events: [{ id: "wrapped", model_id: "flux-1-dev", quantity: 1 }],
      },
    });
    expect(wrapped.json().accepted).toBe(0);
    expect(await h.services.store.listEvents({ accountId: w.other.accountId, skip: 0, limit: 10 })).toEqual(
      [],
    );
    expect(await h.services.query.totals({ accountId: w.other.accountId })).toEqual([]);
    const mine = await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 });
    expect(mine.map((e) => [e.eventId, e.keyId, e.userId])).toEqual([["mine", w.admin.keyId, w.admin.id]]);
    // the same event id in B is B's own event, not a duplicate of A's
    const inB = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.other.admin.key,
      payload: { id: "mine", model_id: "flux-1-dev", quantity: 7 },
    });
    expect(inB.json()).toMatchObject({ accepted: 1, duplicates: 0 });
  });

  it("sets x-request-id on every response, echoing the client's", async () => {
    const given = await h.request({
      method: "GET",
      url: `/v1/accounts/${w.account.id}`,
      key: ROOT_KEY,
      headers: { "x-request-id": "req-abc-123" },
    });
    expect(given.headers["x-request-id"]).toBe("req-abc-123");
    const unauth = await h.request({
      method: "GET",
      url: "/v1/models",
      headers: { "x-request-id": "req-401" },
    });
    expectStatus(unauth, 401);
    expect(unauth.headers["x-request-id"]).toBe("req-401");
    expect(unauth.json().error.request_id).toBe("req-401");
    const ids = new Set<string>();
    for (const res of [
      await h.request({ method: "GET", url: "/healthz" }),
      await h.request({ method: "GET", url: "/openapi.json" }),
      await h.request({ method: "GET", url: "/nope" }),
      await h.request({
        method: "POST",
        url: "/v1/accounts",
        key: ROOT_KEY,
        payload: { name: "x", pad: "y".repeat(1_100_000) },
      }),
      await h.request({ method: "POST", url: "/v1/accounts", key: ROOT_KEY, payload: {} }),
      await h.request({ method: "DELETE", url: `/v1/keys/${w.member.keyId}`, key: w.admin.key }),
    ]) {
      expectRequestId(res);
      ids.add(String(res.headers["x-request-id"]));
    }
    expect(ids.size).toBe(6);
  });

  it("never writes a secret to the logs", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const services = createServices(h.services.store, { rootKey: ROOT_KEY, now: h.clock.now });
    const app = await buildApp(services, { logger: { level: "trace", redact: REDACT, stream } });
    try {
      const secrets = [ROOT_KEY, w.admin.key, w.member.key];
      const created = await app.inject({
        method: "POST",
        url: `/v1/users/${w.member.id}/keys`,
        headers: headersFor(ROOT_KEY, "x-key"),
        payload: {},
      });
      expectStatus(created, 201);
      secrets.push(created.json().key);
      for (const style of ["bearer", "key", "x-key"] as Style[]) {
        for (const secret of secrets) {
          await app.inject({
            method: "GET",
            url: `/v1/accounts/${w.account.id}`,
            headers: headersFor(secret, style),
          });
          await app.inject({
            method: "POST",
            url: "/v1/events",
            headers: headersFor(secret, style),
            payload: { id: `log-${style}`, model_id: "flux-1-dev", quantity: 1, account_id: w.account.id },
          });
          await app.inject({
            method: "POST",
            url: "/v1/accounts",
            headers: headersFor(secret, style),
            payload: { bad: true },
          });
          await app.inject({ method: "GET", url: "/nope", headers: headersFor(secret, style) });
          await app.inject({
            method: "GET",
            url: "/v1/models",
            headers: headersFor(`${secret}-wrong`, style),
          });
        }
      }
      await services.committer.idle();
      const log = lines.join("");
      // the log is written (so this test can fail), and carries request ids
      expect(lines.length).toBeGreaterThan(10);
      expect(log).toContain("request_id");
      for (const secret of secrets) {
        expect(log.includes(secret), `secret ${secret.slice(0, 8)}... in the log`).toBe(false);
        // nor its secret part alone
        expect(log.includes(secret.slice(4))).toBe(false);
      }
    } finally {
      await app.close();
      await services.committer.idle();
    }
  });
});
