import { readFileSync } from "node:fs";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatDec, parseDec, sumDec } from "../../src/domain/decimal.ts";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { firstPage, launchBrowser, parseExactJson, screenshot, signIn as signInAs } from "./browser.ts";
import { type DashboardWorld, NY_MODEL, seedWorld } from "./seed.ts";

/**
 * The dashboard in Debian's Chromium against a real server on a seeded SQLite store. One world
 * and one browser profile for the file (starting them is the expensive part); each test signs in
 * as the person it needs, after clearing the cookies of the previous one.
 */

const exact = (v: string) => formatDec(parseDec(v));

interface Line {
  endpoint_id: string;
  unit: string;
  unit_price: string;
  quantity: string;
  cost: string;
  currency: string;
}

describe("dashboard in Chromium", () => {
  let server: ServerProcess;
  let world: DashboardWorld;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    server = await startServer();
    world = await seedWorld(server);
    browser = await launchBrowser();
    context = browser.context;
    page = await firstPage(context);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  const url = (path: string) => `${server.url}${path}`;

  const signIn = (key: string) => signInAs(context, page, server.url, key);

  async function sessionCookie(): Promise<string> {
    const cookie = (await context.cookies(server.url)).find((c) => c.name === "tally_session");
    expect(cookie, "session cookie").toBeTruthy();
    return cookie!.value;
  }

  /** GET /v1/models/usage with a key, numbers kept exact. */
  async function workspaceUsage(key: string, query: Record<string, string>) {
    const r = await call(server, "GET", `/v1/models/usage?${new URLSearchParams(query)}`, { key });
    expect(r.status, r.text).toBe(200);
    return parseExactJson(r.text) as { time_series: { bucket: string; results: Line[] }[]; summary: Line[] };
  }

  async function usageTableRows(): Promise<string[][]> {
    await page.locator("#usage-table").waitFor();
    return page.$$eval("#usage-table tbody tr", (trs) =>
      trs.map((tr) =>
        [...tr.querySelectorAll("td")].map(
          (td) =>
            td.querySelector("time")?.getAttribute("datetime") ?? td.dataset.exact ?? td.textContent ?? "",
        ),
      ),
    );
  }

  it("asks for a key, refuses a wrong one, and signs in with a right one", async () => {
    await context.clearCookies();
    // the first load stays small: every byte comes from Tally, and all of it is under 250 KB
    let bytes = 0;
    const hosts = new Set<string>();
    const count = async (response: import("playwright-core").Response) => {
      hosts.add(new URL(response.url()).host);
      bytes += (await response.body().catch(() => Buffer.alloc(0))).length;
    };
    page.on("response", count);
    await page.goto(url("/dashboard/usage"), { waitUntil: "networkidle" });
    await page.getByLabel("API key").waitFor();
    page.off("response", count);
    expect([...hosts]).toEqual([new URL(server.url).host]);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(250 * 1024);
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    await screenshot(page, "sign-in");
    await page.getByLabel("API key").fill("tly_not_a_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#sign-in-status").textContent()).toContain("not accepted");

    await page.getByLabel("API key").fill(world.acme.admin.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#sign-out").waitFor();
    const cookie = (await context.cookies(server.url)).find((c) => c.name === "tally_session")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await page.locator("#plan-id").waitFor();
    expect(await page.locator("#plan-id").textContent()).toBe("pro");
    expect(await page.getByRole("navigation", { name: "Dashboard pages" }).textContent()).toContain("Keys");
    await screenshot(page, "overview");
  });

  it("shows the same per-day numbers and totals as /v1/models/usage for the same range and zone", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/usage?from=2026-11-14&to=2026-11-17&timeframe=day&tz=UTC"));
    const rows = await usageTableRows();
    const api = await workspaceUsage(world.acme.admin.key, {
      start: "2026-11-14",
      end: "2026-11-18",
      timezone: "UTC",
      timeframe: "day",
      expand: "time_series,summary",
      limit: "1000",
    });
    const expected = api.time_series.flatMap((b) =>
      b.results.map((l) => [
        b.bucket,
        l.endpoint_id,
        l.unit,
        exact(l.unit_price),
        exact(l.quantity),
        exact(l.cost),
        l.currency,
      ]),
    );
    expect(rows.map((r) => [r[0], r[1], r[2], exact(r[3]), exact(r[4]), exact(r[5]), r[6]])).toEqual(
      expected,
    );
    expect(rows.length).toBeGreaterThanOrEqual(6);

    // the totals table adds the rows up in the browser; the API's summary must agree, model by model
    const totals = await page.$$eval("#usage-totals tbody tr", (trs) =>
      trs.map((tr) => [
        tr.querySelector("th")!.textContent!,
        ...[...tr.querySelectorAll("td")].map((td) => td.dataset.exact ?? td.textContent!),
      ]),
    );
    const byModel = new Map<string, { quantity: bigint; cost: bigint }>();
    for (const l of api.summary) {
      const t = byModel.get(l.endpoint_id) ?? { quantity: 0n, cost: 0n };
      byModel.set(l.endpoint_id, {
        quantity: t.quantity + parseDec(l.quantity),
        cost: t.cost + parseDec(l.cost),
      });
    }
    expect(totals.map((t) => [t[0], exact(t[2]), exact(t[3])]).sort()).toEqual(
      [...byModel].map(([m, t]) => [m, formatDec(t.quantity), formatDec(t.cost)]).sort(),
    );
    const grand = await page.locator("#usage-totals tfoot td[data-currency=USD]").getAttribute("data-exact");
    expect(exact(grand!)).toBe(formatDec(sumDec(api.summary.map((l) => parseDec(l.cost)))));
    // the chart is fed the same exact numbers: per model, its bars add up to the API's summary
    await page.locator("#usage-chart canvas").waitFor();
    const chartCosts = JSON.parse((await page.locator("#usage-chart").getAttribute("data-costs"))!) as Record<
      string,
      string[]
    >;
    expect(
      Object.entries(chartCosts)
        .map(([m, costs]) => [m, formatDec(sumDec(costs.map((c) => parseDec(c))))])
        .sort(),
    ).toEqual([...byModel].map(([m, t]) => [m, formatDec(t.cost)]).sort());
    await screenshot(page, "usage");
  });

  it("moves a New York evening event to the New York day when the timezone changes", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/usage?from=2026-11-14&to=2026-11-17&timeframe=day&tz=UTC"));
    const dayOf = async () => (await usageTableRows()).filter((r) => r[1] === NY_MODEL).map((r) => r[0]);
    expect(await dayOf()).toEqual(["2026-11-16T00:00:00+00:00"]);

    await page.getByLabel("Timezone").selectOption("America/New_York");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/tz=America%2FNew_York/);
    await expect.poll(dayOf).toEqual(["2026-11-15T00:00:00-05:00"]);
    // the filters live in the URL: reloading shows the same page
    await page.reload();
    expect(await dayOf()).toEqual(["2026-11-15T00:00:00-05:00"]);
    expect(await page.getByLabel("Timezone").inputValue()).toBe("America/New_York");
  });

  it("downloads a CSV equal to the table", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/usage?from=2026-11-14&to=2026-11-17&timeframe=day&tz=America/New_York"));
    const rows = await usageTableRows();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    const csv = readFileSync((await download.path())!, "utf8");
    const lines = csv
      .trimEnd()
      .split("\r\n")
      .map((l) => l.split(","));
    expect(lines[0]).toEqual(["bucket", "model", "unit", "unit_price", "quantity", "cost", "currency"]);
    expect(lines.slice(1)).toEqual(rows);
    expect(download.suggestedFilename()).toMatch(/\.csv$/);
  });

  it("lists the usage log, and an admin corrects and deletes a record after confirming", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/log?tz=UTC"));
    await page.locator("#log-table").waitFor();
    const ids = await page.$$eval("#log-table tbody tr", (trs) =>
      trs.map((tr) => tr.getAttribute("data-usage-id")),
    );
    expect(ids.length).toBe(8); // the admin's six events and the member's two records
    await screenshot(page, "usage-log");

    const target = world.adminRecordId;
    await page.getByRole("button", { name: `Correct record ${target}` }).click();
    await page.getByLabel("Units used").fill("5");
    await page.getByLabel("Cost (USD)").fill("0.125");
    await page.getByRole("dialog").getByRole("button", { name: "Save correction" }).click();
    await expect
      .poll(
        async () =>
          (
            parseExactJson(
              (await call(server, "GET", `/usage/${target}`, { key: world.acme.admin.key })).text,
            ) as { units_used: string }
          ).units_used,
      )
      .toBe("5");

    // cancelling the confirmation deletes nothing
    await page.getByRole("button", { name: `Delete record ${target}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect((await call(server, "GET", `/usage/${target}`, { key: world.acme.admin.key })).status).toBe(200);
    await page.getByRole("button", { name: `Delete record ${target}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete record" }).click();
    await expect
      .poll(async () => (await call(server, "GET", `/usage/${target}`, { key: world.acme.admin.key })).status)
      .toBe(404);
  });

  it("creates a key, shows its secret once, and revokes it", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/keys"));
    await page.getByLabel("Label (optional)").fill("CI key");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.locator("#new-key-secret").inputValue();
    expect(secret).toMatch(/^tly_/);
    expect((await call(server, "GET", "/v1/usage", { key: secret })).status).toBe(200);
    await screenshot(page, "keys");
    // shown once: another visit to the page does not have it
    await page.reload();
    await page.getByLabel("Label (optional)").waitFor();
    expect(await page.content()).not.toContain(secret);

    await page.goto(url("/dashboard/keys"));
    await page.getByLabel("Label (optional)").fill("Short-lived");
    await page.getByRole("button", { name: "Create key" }).click();
    const second = await page.locator("#new-key-secret").inputValue();
    expect((await call(server, "GET", "/v1/usage", { key: second })).status).toBe(200);
    await page.getByRole("button", { name: /^Revoke key Short-lived/ }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
    await expect.poll(() => page.locator("#keys-status").textContent()).toContain("revoked");
    expect((await call(server, "GET", "/v1/usage", { key: second })).status).toBe(401);
  });

  it("keeps a member to its own records and away from the keys page", async () => {
    await signIn(world.acme.member.key);
    // the overview shows the member its plan and limits, nothing account-wide
    await page.locator("#plan-id").waitFor();
    expect(await page.locator("main").textContent()).not.toContain("This month");
    await screenshot(page, "member-overview");
    const nav = page.getByRole("navigation", { name: "Dashboard pages" });
    expect(await nav.textContent()).not.toContain("Keys");
    await page.goto(url("/dashboard/keys"));
    await expect.poll(() => page.locator("main .notice").textContent()).toContain("for account admins");

    await page.goto(url("/dashboard/log"));
    await page.locator("#log-table").waitFor();
    const users = await page.$$eval("#log-table tbody tr", (trs) => trs.length);
    expect(users).toBe(2);
    await screenshot(page, "member-log");

    await page.goto(url(`/dashboard/log?user=${world.acme.admin.userId}`));
    await expect.poll(() => page.locator("main [role=alert]").textContent()).toMatch(/./);
    // the same refusals straight from the API with the member's session
    const api = page.request;
    expect((await api.get(url(`/usage/user/${world.acme.admin.userId}`))).status()).toBe(403);
    expect((await api.get(url(`/usage/${world.adminRecordId}`))).status()).toBe(404);
    expect((await api.get(url("/v1/models/usage"))).status()).toBe(403);
    expect(
      (
        await api.post(url(`/v1/users/${world.acme.member.userId}/keys`), {
          headers: { origin: server.url },
          data: {},
        })
      ).status(),
    ).toBe(403);
  });

  it("never lets one account's session read another account's data", async () => {
    await signIn(world.globex.admin.key);
    const api = page.request;
    expect((await api.get(url(`/v1/accounts/${world.acme.id}`))).status()).toBe(404);
    expect((await api.get(url(`/usage/user/${world.acme.admin.userId}`))).status()).not.toBe(200);
    const own = parseExactJson(
      await (await api.get(url("/v1/models/usage?start=2026-11-01&end=2026-12-01&expand=summary"))).text(),
    ) as {
      summary: Line[];
    };
    expect(own.summary.map((l) => [l.endpoint_id, exact(l.quantity)])).toEqual([["flux-1-dev", "1000"]]);
    const log = (await (await api.get(url("/usage?limit=1000"))).json()) as { user_id: string }[];
    expect(log.map((r) => r.user_id)).toEqual([world.globex.admin.userId]);
    // the Acme page in the browser shows the refusal, not Acme's data
    await page.goto(url(`/dashboard/log?user=${world.acme.member.userId}`));
    await expect.poll(() => page.locator("main [role=alert]").textContent()).toMatch(/./);
    expect(await page.content()).not.toContain("bob");
  });

  it("accepts the cookie only from its own origin", async () => {
    await signIn(world.acme.admin.key);
    const api = page.request;
    const body = { data: { label: "csrf" } };
    const path = url(`/v1/users/${world.acme.admin.userId}/keys`);
    expect((await api.post(path, { ...body, headers: { origin: "http://evil.example" } })).status()).toBe(
      401,
    );
    expect((await api.post(path, { ...body, headers: { "sec-fetch-site": "cross-site" } })).status()).toBe(
      401,
    );
    expect((await api.post(path, body)).status()).toBe(401); // neither Origin nor Sec-Fetch-Site
    expect((await api.post(path, { ...body, headers: { origin: server.url } })).status()).toBe(201);
  });

  it("ends the session on sign-out", async () => {
    await signIn(world.acme.admin.key);
    const token = await sessionCookie();
    const withCookie = { headers: { cookie: `tally_session=${token}` } };
    expect((await call(server, "GET", "/usage", withCookie)).status).toBe(200);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect((await call(server, "GET", "/usage", withCookie)).status).toBe(401);
    expect((await call(server, "GET", "/dashboard/api/session", withCookie)).status).toBe(401);
  });

  it("lets the operator open any account by id", async () => {
    await signIn(server.adminKey);
    await page.goto(url("/dashboard/usage"));
    await page.locator(".empty").waitFor();
    // a picker when the server lists accounts, else an id field
    const picker = page.getByLabel("Account");
    if ((await picker.evaluate((e) => e.tagName)) === "SELECT") await picker.selectOption(world.globex.id);
    else await picker.fill(world.globex.id);
    await page.getByRole("button", { name: "Open" }).click();
    await page.waitForURL(/account=/);
    await page.goto(url(`/dashboard/usage?account=${world.globex.id}&from=2026-11-14&to=2026-11-17&tz=UTC`));
    const rows = await usageTableRows();
    expect(rows.map((r) => [r[0], r[1], exact(r[4])])).toEqual([
      ["2026-11-15T00:00:00+00:00", "flux-1-dev", "1000"],
    ]);
    await screenshot(page, "operator-usage");
  });
});
