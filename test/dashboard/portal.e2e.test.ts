import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { firstPage, launchBrowser, signIn } from "./browser.ts";
import { type DashboardWorld, seedWorld } from "./seed.ts";

/**
 * Portal links and stored sessions in Debian's Chromium against a real server process: an
 * operator's page on another site links to a one-time sign-in link; the person lands signed in
 * (the SameSite=Strict cookie survives the cross-site start), the link works once, and the session
 * outlives a restart of the server because it is kept in the store.
 */
describe("portal sign-in links in Chromium", () => {
  let server: ServerProcess;
  let world: DashboardWorld;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext;
  let page: Page;
  let operatorSite: Server;
  let operatorUrl: string;
  /** the link the operator's page shows, set per test */
  let link = "";
  /** the server before the restart (its directory holds the database until the end) */
  let first: ServerProcess | undefined;

  beforeAll(async () => {
    server = await startServer();
    world = await seedWorld(server);
    browser = await launchBrowser();
    context = browser.context;
    page = await firstPage(context);
    // the operator's own site: another origin, and another site ("localhost" against 127.0.0.1)
    operatorSite = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>Operator</title><a id="open" href="${link}">Open usage</a>`);
    });
    await new Promise<void>((resolve) => operatorSite.listen(0, "127.0.0.1", resolve));
    operatorUrl = `http://localhost:${(operatorSite.address() as AddressInfo).port}/`;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    operatorSite?.closeAllConnections();
    await new Promise((resolve) => operatorSite?.close(resolve));
    await server?.cleanup();
    await first?.cleanup();
  });

  async function portalLink(body: object, key = server.adminKey) {
    const r = await call(server, "POST", "/v1/portal/sessions", { key, body });
    return r as {
      status: number;
      body: { url: string; path: string; expires_at: string; user_id: string | null };
    };
  }

  async function openFromOperatorSite(url: string): Promise<void> {
    link = url;
    await context.clearCookies();
    await page.goto(operatorUrl);
    await page.click("#open");
  }

  it("signs a user in from the operator's site once; the link then answers 410", async () => {
    const created = await portalLink({
      account_id: world.acme.id,
      user_id: world.acme.member.userId,
      ttl_s: 600,
    });
    expect(created.status).toBe(201);
    expect(created.body.url).toBe(`${server.url}${created.body.path}`);

    await openFromOperatorSite(created.body.url);
    await page.locator("#sign-out").waitFor();
    expect(await page.locator(".who-name").textContent()).toBe("bob · member");
    // the member's own view: its records, not the account's keys
    const own = await page.evaluate(async () => (await fetch("/usage?limit=5")).status);
    expect(own).toBe(200);

    await context.clearCookies();
    const again = await page.goto(created.body.url);
    expect(again?.status()).toBe(410);
    expect(await page.textContent("body")).toContain("used already or has expired");
  });

  it("an account-wide link reads the account and changes nothing", async () => {
    const created = await portalLink({ account_id: world.acme.id });
    expect(created.status).toBe(201);
    await openFromOperatorSite(created.body.url);
    await page.locator("#sign-out").waitFor();
    const statuses = await page.evaluate(async (accountId) => {
      const read = await fetch(`/v1/accounts/${accountId}/users`);
      const write = await fetch(`/v1/accounts/${accountId}/users`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "mallory", role: "admin" }),
      });
      // another id of the same shape: the last character changed, never to itself
      const last = accountId.slice(-1);
      const otherId = accountId.slice(0, -1) + (last === "0" ? "1" : "0");
      const other = await fetch(`/v1/accounts/${otherId}/users`);
      return [read.status, write.status, other.status];
    }, world.acme.id);
    expect(statuses[0]).toBe(200);
    expect(statuses[1]).toBe(401);
    expect([403, 404]).toContain(statuses[2]);
  });

  it("only the operator makes links; bad input names its field", async () => {
    expect((await portalLink({ account_id: world.acme.id }, world.acme.admin.key)).status).toBe(403);
    expect((await portalLink({ account_id: world.acme.id }, world.acme.member.key)).status).toBe(403);
    const foreignUser = await portalLink({ account_id: world.acme.id, user_id: world.globex.admin.userId });
    expect(foreignUser.status).toBe(400);
    expect(JSON.stringify(foreignUser.body)).toContain("user_id");
    const ttl = await portalLink({ account_id: world.acme.id, ttl_s: 30 });
    expect(ttl.status).toBe(400);
    expect(JSON.stringify(ttl.body)).toContain("ttl_s");
    expect((await portalLink({ account_id: "no-such-account" })).status).toBe(404);
  });

  it("a session is kept in the store: it survives a restart of the server", async () => {
    await signIn(context, page, server.url, world.acme.admin.key);

    first = server;
    expect(await first.stop()).toBe(0);
    server = await startServer({ dbPath: first.dbPath!, adminKey: first.adminKey, port: first.port });

    await page.reload();
    await page.locator("#sign-out").waitFor();
    expect(await page.locator(".who-name").textContent()).toBe("alice · admin");
  });
});
