import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS_BODY_LIMIT } from "../../src/domain/constants.ts";
import { sendA4fError } from "../../src/http/a4f/errors.ts";
import { sendNativeError } from "../../src/http/errors.ts";
import { sendFalError } from "../../src/http/fal/errors.ts";
import { sendFastApiError } from "../../src/http/fastapi-errors.ts";
import { SURFACES, surfaceOf } from "../../src/http/surfaces.ts";
import { createHarness, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, createUserWithKey } from "../support/world.ts";

/**
 * The shared route contract: every route listed in /openapi.json, whatever its surface, refuses
 * missing, wrong and revoked keys, NUL characters and malformed JSON in its surface's error
 * format, and every answer (Fastify's own 404, 413 and 414 included) carries x-request-id. The
 * routes come from the document, so a route added later is covered without a line here.
 */

type Body = Record<string, unknown>;
/** Each surface's error format, keyed by the mapper the app routes its errors through. */
const FORMATS = new Map<unknown, { name: string; check: (body: Body, requestId: string) => void }>([
  [
    sendNativeError,
    {
      name: "native",
      check: (b, id) =>
        expect(b).toMatchObject({
          error: { code: expect.any(String), message: expect.any(String), request_id: id },
        }),
    },
  ],
  [
    sendFastApiError,
    {
      name: "FastAPI",
      check: (b) => {
        expect(Object.keys(b)).toEqual(["detail"]);
        expect(typeof b.detail === "string" || Array.isArray(b.detail), JSON.stringify(b)).toBe(true);
      },
    },
  ],
  [
    sendFalError,
    {
      name: "fal",
      check: (b, id) =>
        expect(b).toEqual({
          error: { type: expect.any(String), message: expect.any(String), request_id: id },
        }),
    },
  ],
  [
    sendA4fError,
    {
      name: "a4f",
      check: (b, id) => {
        expect(b).toMatchObject({
          error: { message: expect.any(String), type: expect.any(String), request_id: id },
        });
        expect(b.error).toHaveProperty("param");
      },
    },
  ],
]);

function formatOf(url: string) {
  const format = FORMATS.get(surfaceOf(url).sendError);
  if (!format) throw new Error(`${url}: a surface with an error format this suite does not know`);
  return format;
}

/** Asserts status, x-request-id and the surface's error format; shows the body on failure. */
function expectError(res: LightMyRequestResponse, url: string, status: number | number[]): Body {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `${res.statusCode} ${res.body}`).toContain(res.statusCode);
  const requestId = res.headers["x-request-id"];
  expect(requestId, `x-request-id on ${res.statusCode} ${url}`).toEqual(expect.any(String));
  const body = res.json() as Body;
  formatOf(url).check(body, String(requestId));
  return body;
}

interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  queryParams: string[];
  tags: string[];
  public: boolean;
}

/** The routes /openapi.json lists, read once from an app on SQLite. */
async function documentedRoutes(): Promise<{ operations: Operation[]; paths: string[] }> {
  const h = await createHarness(storeKinds()[0]);
  try {
    const doc = (await h.request({ method: "GET", url: "/openapi.json" })).json() as {
      paths: Record<
        string,
        Record<string, { security?: unknown[]; tags?: string[]; parameters?: { in: string; name: string }[] }>
      >;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        pathParams: (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name),
        queryParams: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
        tags: op.tags ?? [],
        // an operation documented with an empty security list takes no key
        public: Array.isArray(op.security) && op.security.length === 0,
      })),
    );
    return { operations, paths: Object.keys(doc.paths) };
  } finally {
    await h.close();
  }
}

const { operations, paths } = await documentedRoutes();
const withBody = (op: Operation) => op.method === "POST" || op.method === "PUT" || op.method === "PATCH";
const urlOf = (op: Operation, value = "probe-id") =>
  op.path.replace(/\{([^}]+)\}/g, () => encodeURIComponent(value));
const label = (op: Operation) => `${op.method} ${op.path}`;

it("/openapi.json lists the routes, /healthz among them", () => {
  expect(paths).toContain("/healthz");
  expect(operations.length).toBeGreaterThan(15);
  for (const s of SURFACES)
    expect(
      paths.some((p) => p.startsWith(s.prefix)),
      s.prefix,
    ).toBe(true);
});

describe.each(storeKinds())("route contract ($name)", (kind) => {
  let h: Harness;
  let revokedKey: string;
  let memberKey: string;

  // nothing below is accepted, so the routes share one world: a refused request writes nothing
  beforeAll(async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    memberKey = w.member.key;
    const revoked = await createUserWithKey(h, w.account.id, "gone", "member");
    const res = await h.request({ method: "DELETE", url: `/v1/keys/${revoked.keyId}`, key: ROOT_KEY });
    expect(res.statusCode).toBe(204);
    revokedKey = revoked.key;
  });
  afterAll(async () => h?.close());

  const keyed = operations.filter((op) => !op.public);

  describe.each(keyed.map((op) => ({ op, name: label(op) })))("$name", ({ op }) => {
    const url = urlOf(op);
    const send = (headers: Record<string, string>, payload?: string) =>
      h.app.inject({
        method: op.method as "GET",
        url,
        headers: payload === undefined ? headers : { "content-type": "application/json", ...headers },
        ...(payload === undefined ? {} : { payload }),
      });

    it("refuses a missing key with 401", async () => {
      expectError(await send({}, withBody(op) ? "{}" : undefined), url, 401);
    });

    it("refuses a wrong key with 401, in every header form", async () => {
      const forms: Record<string, string>[] = [
        { authorization: "Bearer not-a-key" },
        { authorization: "Key not-a-key" },
        { "x-key": "not-a-key" },
      ];
      for (const headers of forms) {
        expectError(await send(headers, withBody(op) ? "{}" : undefined), url, 401);
      }
    });

    it("refuses a revoked key with 401", async () => {
      expectError(await send({ "x-key": revokedKey }, withBody(op) ? "{}" : undefined), url, 401);
    });

    it("refuses a NUL character in the query, naming the field", async () => {
      const res = await h.app.inject({
        method: op.method as "GET",
        url: `${url}?nul_probe=a%00b`,
        headers: { authorization: `Bearer ${ROOT_KEY}` },
        ...(withBody(op) ? { payload: {} } : {}),
      });
      const body = expectError(res, url, [400, 422]);
      expect(JSON.stringify(body)).toContain("nul_probe");
    });

    if (op.pathParams.length > 0) {
      it("refuses a NUL character in a path parameter, naming it", async () => {
        const nulUrl = urlOf(op, "a\u0000b");
        const res = await h.app.inject({
          method: op.method as "GET",
          url: nulUrl,
          headers: { authorization: `Bearer ${ROOT_KEY}` },
          ...(withBody(op) ? { payload: {} } : {}),
        });
        const body = expectError(res, nulUrl, [400, 422]);
        expect(JSON.stringify(body)).toContain(op.pathParams[0]);
      });

      it("answers an over-long path parameter with 414 and x-request-id", async () => {
        const longUrl = urlOf(op, "p".repeat(300));
        expectError(await h.app.inject({ method: op.method as "GET", url: longUrl }), longUrl, 414);
      });
    }

    if (withBody(op)) {
      it("refuses a NUL character in the body, naming the field", async () => {
        const res = await send(
          { authorization: `Bearer ${ROOT_KEY}` },
          JSON.stringify({ nul_probe: "a\u0000b" }),
        );
        const body = expectError(res, url, [400, 422]);
        expect(JSON.stringify(body)).toContain("nul_probe");
      });

      it("refuses malformed JSON with a 4xx in the surface's format", async () => {
        const res = await send({ authorization: `Bearer ${ROOT_KEY}` }, '{"a": ');
        expectError(res, url, [400, 422]);
      });

      it("refuses a body over the route's limit with 413 and x-request-id", async () => {
        const payload = `{"a":"${"x".repeat(EVENTS_BODY_LIMIT)}"}`;
        expectError(await send({ authorization: `Bearer ${ROOT_KEY}` }, payload), url, 413);
      });
    }
  });

  it("a member key is refused or scoped, never answered with another account's data (smoke)", async () => {
    // the per-surface security tests say what each role sees; here only that no route 5xxs for a member
    for (const op of keyed.filter((o) => o.method === "GET")) {
      const res = await h.app.inject({ method: "GET", url: urlOf(op), headers: { "x-key": memberKey } });
      expect(res.statusCode, `${label(op)}: ${res.body}`).toBeLessThan(500);
      expect(res.headers["x-request-id"]).toEqual(expect.any(String));
    }
  });

  describe("unknown routes answer 404 in the format of the prefix they fall under", () => {
    const prefixes = ["/v1", ...SURFACES.map((s) => s.prefix)];
    for (const prefix of prefixes) {
      it(`${prefix}/…`, async () => {
        const url = `${prefix}/no-such-route/at-all`;
        for (const method of ["GET", "POST"] as const) {
          const res = await h.app.inject({ method, url, headers: { authorization: `Bearer ${ROOT_KEY}` } });
          expectError(res, url, 404);
        }
      });
    }
    it("outside every prefix", async () => {
      expectError(await h.app.inject({ method: "GET", url: "/no-such-route" }), "/no-such-route", 404);
    });
  });

  it("/healthz answers without a key, with x-request-id", async () => {
    const res = await h.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-request-id"]).toEqual(expect.any(String));
    expect(res.json()).toEqual({ status: "ok", store: expect.any(String) });
  });
});

/**
 * The operator API's routes (issue 13: tags "operator" and "audit"): roles, another account's
 * ids, and every list's paging. Routes come from /openapi.json; the tables below say what each
 * role may do and how to fill a route's ids, and a route missing from them fails here, so a new
 * route gets these tests by naming its row.
 */
const operatorRoutes = operations.filter((op) => op.tags.includes("operator") || op.tags.includes("audit"));

/** A valid body for each change (refused requests write nothing, so valid bodies are safe to send). */
const BODIES: Record<string, (ids: OperatorIds) => unknown> = {
  "POST /v1/accounts": () => ({ name: "contract" }),
  "PATCH /v1/accounts/{id}": () => ({ name: "renamed" }),
  "POST /v1/accounts/{id}/users": () => ({ username: "contract-user", role: "member" }),
  "PATCH /v1/users/{id}": () => ({ username: "renamed" }),
  "POST /v1/users/{id}/keys": () => ({}),
  "PATCH /v1/keys/{id}": () => ({ label: "renamed" }),
  "POST /v1/keys/{id}/rotate": () => ({}),
  "POST /v1/models": () => ({ id: "contract-model", unit: "image", kind: "image", unit_price: 1 }),
  "POST /v1/accounts/{id}/licenses": () => ({ model_id: "flux-1-dev" }),
  "PATCH /v1/accounts/{id}/licenses/{license_id}": () => ({ ends_at: null }),
  "POST /v1/plans": () => ({
    id: "contract-plan-2",
    requests_per_minute: null,
    requests_per_day: null,
    validity_days: 30,
  }),
  "POST /v1/accounts/{id}/subscriptions": (ids) => ({ plan_id: ids.plan }),
  "PATCH /v1/accounts/{id}/subscriptions/{subscription_id}": () => ({ ends_at: null }),
  "POST /v1/accounts/{id}/payments": () => ({ amount_usd: 1 }),
  "POST /v1/accounts/{id}/payments/{payment_id}/refund": () => ({ amount_usd: 1 }),
  "POST /v1/upstreams": () => ({ id: "contract-upstream-2", base_url: "http://127.0.0.1:9" }),
  "PUT /v1/accounts/{id}/budget": () => ({ monthly_usd: 10 }),
  "POST /v1/portal/sessions": (ids) => ({ account_id: ids.account }),
};

/** What account A's member and admin get: "403", or "ok" (a read is sent and must be 200; an allowed change is not sent, its happy test covers it). */
type RoleAnswer = "403" | "ok";
const ROLES: Record<string, { member: RoleAnswer; admin: RoleAnswer }> = {
  "POST /v1/accounts": { member: "403", admin: "403" },
  "GET /v1/accounts": { member: "ok", admin: "ok" },
  "GET /v1/accounts/{id}": { member: "ok", admin: "ok" },
  "PATCH /v1/accounts/{id}": { member: "403", admin: "403" },
  "PUT /v1/accounts/{id}/budget": { member: "403", admin: "403" },
  "POST /v1/accounts/{id}/users": { member: "403", admin: "ok" },
  "GET /v1/accounts/{id}/users": { member: "ok", admin: "ok" },
  "GET /v1/users/{id}": { member: "ok", admin: "ok" },
  "PATCH /v1/users/{id}": { member: "403", admin: "ok" },
  "POST /v1/users/{id}/keys": { member: "403", admin: "ok" },
  "GET /v1/users/{id}/keys": { member: "ok", admin: "ok" },
  "GET /v1/accounts/{id}/keys": { member: "ok", admin: "ok" },
  "GET /v1/keys/{id}": { member: "ok", admin: "ok" },
  "PATCH /v1/keys/{id}": { member: "403", admin: "ok" },
  "DELETE /v1/keys/{id}": { member: "403", admin: "ok" },
  "POST /v1/keys/{id}/rotate": { member: "403", admin: "ok" },
  "POST /v1/models": { member: "403", admin: "403" },
  "GET /v1/models": { member: "ok", admin: "ok" },
  "GET /v1/models/{id}": { member: "ok", admin: "ok" },
  "POST /v1/plans": { member: "403", admin: "403" },
  "GET /v1/plans": { member: "ok", admin: "ok" },
  "GET /v1/plans/{id}": { member: "ok", admin: "ok" },
  "POST /v1/accounts/{id}/licenses": { member: "403", admin: "403" },
  "GET /v1/accounts/{id}/licenses": { member: "ok", admin: "ok" },
  "GET /v1/accounts/{id}/licenses/{license_id}": { member: "ok", admin: "ok" },
  "PATCH /v1/accounts/{id}/licenses/{license_id}": { member: "403", admin: "403" },
  "POST /v1/accounts/{id}/subscriptions": { member: "403", admin: "403" },
  "GET /v1/accounts/{id}/subscriptions": { member: "ok", admin: "ok" },
  "GET /v1/accounts/{id}/subscriptions/{subscription_id}": { member: "ok", admin: "ok" },
  "PATCH /v1/accounts/{id}/subscriptions/{subscription_id}": { member: "403", admin: "403" },
  "POST /v1/accounts/{id}/payments": { member: "403", admin: "403" },
  "GET /v1/accounts/{id}/payments": { member: "ok", admin: "ok" },
  "GET /v1/accounts/{id}/payments/{payment_id}": { member: "ok", admin: "ok" },
  "POST /v1/accounts/{id}/payments/{payment_id}/refund": { member: "403", admin: "403" },
  "POST /v1/upstreams": { member: "403", admin: "403" },
  "GET /v1/upstreams": { member: "403", admin: "403" },
  "GET /v1/upstreams/{id}": { member: "403", admin: "403" },
  "GET /v1/audit": { member: "403", admin: "ok" },
  "POST /v1/portal/sessions": { member: "403", admin: "403" },
};

/** Account A's things, each id a route may name. */
interface OperatorIds {
  account: string;
  user: string;
  key: string;
  license: string;
  subscription: string;
  payment: string;
  plan: string;
  upstream: string;
}

/** The route with account A's ids in place (`{id}` means what the path's first segment says). */
function realUrl(op: Operation, ids: OperatorIds): string {
  const segment = op.path.split("/")[2];
  const ofId: Record<string, string> = {
    accounts: ids.account,
    users: ids.user,
    keys: ids.key,
    models: "flux-1-dev",
    plans: ids.plan,
    upstreams: ids.upstream,
  };
  const url = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value =
      name === "id"
        ? ofId[segment]
        : (
            { license_id: ids.license, subscription_id: ids.subscription, payment_id: ids.payment } as Record<
              string,
              string
            >
          )[name];
    if (value === undefined) throw new Error(`${label(op)}: no id for {${name}} in realUrl`);
    return value;
  });
  // the audit list names its account in the query
  return op.path === "/v1/audit" ? `${url}?account_id=${ids.account}` : url;
}

describe.each(storeKinds())("operator route contract ($name)", (kind) => {
  let h: Harness;
  let ids: OperatorIds;
  let memberKey: string;
  let adminKey: string;
  let otherAdminKey: string;

  const root = async (method: "POST" | "PATCH", url: string, payload: unknown) => {
    const res = await h.request({ method, url, payload: payload as object, key: ROOT_KEY });
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.json();
  };

  beforeAll(async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    memberKey = w.member.key;
    adminKey = w.admin.key;
    otherAdminKey = w.other.admin.key;
    const a = `/v1/accounts/${w.account.id}`;
    const plan = await root("POST", "/v1/plans", {
      id: "contract-plan",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: 30,
    });
    const upstream = await root("POST", "/v1/upstreams", {
      id: "contract-upstream",
      base_url: "http://127.0.0.1:9",
    });
    const license = await root("POST", `${a}/licenses`, { model_id: "flux-1-dev" });
    const subscription = await root("POST", `${a}/subscriptions`, { plan_id: plan.id });
    const payment = await root("POST", `${a}/payments`, { amount_usd: 5 });
    // one audit entry at least
    await root("PATCH", a, { name: "Acme" });
    ids = {
      account: w.account.id,
      user: w.member.id,
      key: w.member.keyId,
      license: license.id,
      subscription: subscription.id,
      payment: payment.id,
      plan: plan.id,
      upstream: upstream.id,
    };
  });
  afterAll(async () => h?.close());

  const send = (op: Operation, url: string, key: string) =>
    h.app.inject({
      method: op.method as "GET",
      url,
      headers: { authorization: `Bearer ${key}` },
      ...(withBody(op) ? { payload: (BODIES[label(op)]?.(ids) ?? {}) as object } : {}),
    });

  it("every operator route has its row of roles, and every change its body", () => {
    expect(operatorRoutes.length).toBeGreaterThan(30);
    for (const op of operatorRoutes) {
      expect(ROLES[label(op)], `${label(op)}: add its row to ROLES`).toBeDefined();
      if (withBody(op)) expect(BODIES[label(op)], `${label(op)}: add its body to BODIES`).toBeDefined();
    }
  });

  describe.each(operatorRoutes.map((op) => ({ op, name: label(op) })))("$name", ({ op }) => {
    it("refuses a role without the right with 403, and answers reads of its own account", async () => {
      const row = ROLES[label(op)];
      for (const [role, key] of [
        ["member", memberKey],
        ["admin", adminKey],
      ] as const) {
        const url = realUrl(op, ids);
        if (row[role] === "403") {
          const res = await send(op, url, key);
          expect(res.statusCode, `${role}: ${res.body}`).toBe(403);
          expectError(res, url, 403);
        } else if (op.method === "GET") {
          const res = await send(op, url, key);
          expect(res.statusCode, `${role}: ${res.body}`).toBe(200);
        }
      }
    });

    // the catalog (models) is every account's; the rest is an account's, or the operator's
    if (!op.path.startsWith("/v1/models") && (op.pathParams.length > 0 || op.path === "/v1/audit")) {
      it("answers another account's admin as it answers ids that do not exist, never with a 2xx", async () => {
        const url = realUrl(op, ids);
        const probe = urlOf(op, "no-such-id") + (op.path === "/v1/audit" ? "?account_id=no-such-id" : "");
        const mine = await send(op, url, otherAdminKey);
        const none = await send(op, probe, otherAdminKey);
        expect([403, 404], `${mine.statusCode} ${mine.body}`).toContain(mine.statusCode);
        expect(mine.statusCode, `${url} vs ${probe}: ${mine.body} / ${none.body}`).toBe(none.statusCode);
        expect(mine.json().error.code).toBe(none.json().error.code);
      });
    }

    if (op.method === "GET" && op.queryParams.includes("starting_after")) {
      const join = (url: string) => (url.includes("?") ? "&" : "?");

      it("pages to the end with no item twice, then past the last page to an empty one", async () => {
        const url = realUrl(op, ids);
        const seen: string[] = [];
        let after: string | null = null;
        for (let pages = 0; pages < 100; pages++) {
          const res = await send(
            op,
            `${url}${join(url)}limit=1${after ? `&starting_after=${after}` : ""}`,
            ROOT_KEY,
          );
          expect(res.statusCode, res.body).toBe(200);
          const page = res.json() as { data: { id: string }[]; has_more: boolean };
          expect(Object.keys(page).sort()).toEqual(["data", "has_more"]);
          seen.push(...page.data.map((x) => x.id));
          if (!page.has_more) break;
          after = page.data[0].id;
        }
        expect(seen.length, "the world holds an item of every list").toBeGreaterThan(0);
        expect(new Set(seen).size).toBe(seen.length);
        const past = await send(op, `${url}${join(url)}starting_after=${seen.at(-1)}`, ROOT_KEY);
        expect(past.json()).toEqual({ data: [], has_more: false });
      });

      it("refuses a cursor from another list with 400 naming starting_after", async () => {
        const url = realUrl(op, ids);
        // a payment is in no list but the payments'; a license is not in that one
        const foreign = op.path.endsWith("/payments") ? ids.license : ids.payment;
        const res = await send(op, `${url}${join(url)}starting_after=${foreign}`, ROOT_KEY);
        const body = expectError(res, url, 400) as { error: { issues?: { loc: string[] }[] } };
        expect(body.error.issues?.[0]?.loc).toEqual(["query", "starting_after"]);
      });
    }
  });
});
