import { createHash } from "node:crypto";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/principal.ts";
import { DEFAULT_SESSION_TTL_MS, registerDashboard } from "../../src/dashboard/register-dashboard.ts";
import { principalFromSession } from "../../src/dashboard/session-auth.ts";
import { type DashboardSession, MemorySessionStore } from "../../src/dashboard/session-store.ts";
import { createHarness, expectStatus, type Harness } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld } from "../support/world.ts";

const ORIGIN = "http://localhost:80";
const SAME = { host: "localhost:80", origin: ORIGIN };

function cookieOf(setCookie: string | string[] | undefined): string {
  const header = Array.isArray(setCookie) ? setCookie[0] : (setCookie ?? "");
  return header.split(";")[0];
}

describe("dashboard sessions, alone", () => {
  it("stores only the token's SHA-256 digest, and the cookie is HttpOnly, SameSite=Strict, Path=/", async () => {
    const created: DashboardSession[] = [];
    const sessions = new MemorySessionStore();
    const create = sessions.create.bind(sessions);
    sessions.create = async (s) => {
      created.push(s);
      return create(s);
    };
    const principal: Principal = { kind: "root", keyId: null };
    const app = Fastify();
    await registerDashboard(app, {
      authenticate: async (secret) => (secret === "good" ? principal : null),
      principalOfKey: async () => null,
      principalOfPortal: async () => null,
      consumePortalLink: async () => null,
      now: () => 1_000,
      sessions,
    });
    app.get("/who", async (request) => ({ principal: await principalFromSession(request) }));
    await app.ready();

    const res = await app.inject({
      method: "POST",
      url: "/dashboard/api/session",
      headers: SAME,
      payload: { key: "good" },
    });
    expectStatus(res, 201);
    const setCookie = String(res.headers["set-cookie"]);
    expect(setCookie).toMatch(
      /^tally_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/,
    );
    const token = cookieOf(setCookie).split("=")[1];
    expect(created).toHaveLength(1);
    expect(created[0].tokenHash).toBe(createHash("sha256").update(token).digest("hex"));
    expect(JSON.stringify(created[0])).not.toContain(token);
    expect(created[0].expiresAt).toBe(1_000 + DEFAULT_SESSION_TTL_MS);

    const who = await app.inject({
      method: "GET",
      url: "/who",
      headers: { ...SAME, cookie: cookieOf(setCookie) },
    });
    expect(who.json()).toEqual({ principal });
    // a token that was never issued resolves to nobody
    const forged = await app.inject({
      method: "GET",
      url: "/who",
      headers: { cookie: `tally_session=${"A".repeat(43)}` },
    });
    expect(forged.json()).toEqual({ principal: null });
    await app.close();
  });

  it("answers every dashboard response with a strict Content-Security-Policy and serves uPlot itself", async () => {
    const app = Fastify();
    await registerDashboard(app, {
      authenticate: async () => null,
      principalOfKey: async () => null,
      principalOfPortal: async () => null,
      consumePortalLink: async () => null,
      now: Date.now,
    });
    await app.ready();
    for (const url of [
      "/dashboard",
      "/dashboard/",
      "/dashboard/usage",
      "/dashboard/assets/uplot.js",
      "/dashboard/assets/app.js",
    ]) {
      const res = await app.inject({ method: "GET", url });
      expectStatus(res, 200);
      const csp = String(res.headers["content-security-policy"]);
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain("unsafe-inline");
    }
    const html = (await app.inject({ method: "GET", url: "/dashboard/" })).body;
    // nothing inline, nothing from elsewhere
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\bstyle=/);
    expect(html).not.toMatch(/https?:\/\//);
    expect((await app.inject({ method: "GET", url: "/dashboard/assets/nope.js" })).statusCode).toBe(404);
    await app.close();
  });
});

describe.each(storeKinds())("dashboard sessions through the API ($name)", (kind) => {
  let h: Harness;
  afterEach(async () => h?.close());

  async function signIn(key: string, headers: Record<string, string> = SAME) {
    return h.request({ method: "POST", url: "/dashboard/api/session", headers, payload: { key } });
  }

  it("lets a session read the API like its key, until it expires", async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    const res = await signIn(w.admin.key);
    expectStatus(res, 201);
    expect(res.json()).toMatchObject({
      kind: "user",
      account_id: w.account.id,
      user_id: w.admin.id,
      role: "admin",
    });
    const cookie = cookieOf(res.headers["set-cookie"]);
    expectStatus(await h.request({ method: "GET", url: "/usage", headers: { cookie } }), 200);
    expectStatus(
      await h.request({ method: "GET", url: `/v1/accounts/${w.account.id}`, headers: { cookie } }),
      200,
    );
    expectStatus(
      await h.request({ method: "GET", url: `/v1/accounts/${w.other.accountId}`, headers: { cookie } }),
      404,
    );

    h.clock.advance(DEFAULT_SESSION_TTL_MS);
    expectStatus(await h.request({ method: "GET", url: "/usage", headers: { cookie } }), 401);
    expectStatus(await h.request({ method: "GET", url: "/dashboard/api/session", headers: { cookie } }), 401);
  });

  it("ends a session when its key is revoked", async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    const cookie = cookieOf((await signIn(w.member.key)).headers["set-cookie"]);
    expectStatus(await h.request({ method: "GET", url: "/usage", headers: { cookie } }), 200);
    expectStatus(
      await h.request({ method: "DELETE", url: `/v1/keys/${w.member.keyId}`, key: w.admin.key }),
      204,
    );
    expectStatus(await h.request({ method: "GET", url: "/usage", headers: { cookie } }), 401);
  });

  it("refuses the cookie on unsafe requests from another origin, and sign-in from another origin", async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    const cookie = cookieOf((await signIn(w.admin.key)).headers["set-cookie"]);
    const create = (headers: Record<string, string>) =>
      h.request({
        method: "POST",
        url: `/v1/users/${w.admin.id}/keys`,
        headers: { cookie, ...headers },
        payload: {},
      });
    expectStatus(await create({ host: "localhost:80", origin: "http://evil.example" }), 401);
    expectStatus(await create({ host: "localhost:80" }), 401);
    expectStatus(await create({ host: "localhost:80", "sec-fetch-site": "same-site" }), 401);
    expectStatus(await create({ host: "localhost:80", "sec-fetch-site": "none" }), 401);
    expectStatus(await create(SAME), 201);
    expectStatus(await create({ host: "localhost:80", "sec-fetch-site": "same-origin" }), 201);
    // a cross-site GET is refused too, whatever SameSite did
    expectStatus(
      await h.request({ method: "GET", url: "/usage", headers: { cookie, "sec-fetch-site": "cross-site" } }),
      401,
    );
    expectStatus(await signIn(w.admin.key, { host: "localhost:80", origin: "http://evil.example" }), 403);
  });

  it("refuses a bad key and a missing one, naming the field", async () => {
    h = await createHarness(kind);
    await buildWorld(h);
    const bad = await signIn("tly_unknown");
    expectStatus(bad, 401);
    expect(bad.headers["set-cookie"]).toBeUndefined();
    const missing = await h.request({
      method: "POST",
      url: "/dashboard/api/session",
      headers: SAME,
      payload: {},
    });
    expectStatus(missing, 400);
    expect(missing.body).toContain("key");
  });

  it("signs out: the session is gone and the cookie cleared", async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    const cookie = cookieOf((await signIn(w.admin.key)).headers["set-cookie"]);
    const out = await h.request({
      method: "DELETE",
      url: "/dashboard/api/session",
      headers: { ...SAME, cookie },
    });
    expectStatus(out, 204);
    expect(String(out.headers["set-cookie"])).toContain("Max-Age=0");
    expectStatus(await h.request({ method: "GET", url: "/usage", headers: { cookie } }), 401);
  });
});
