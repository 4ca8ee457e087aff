import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatDec, parseDec } from "../../src/domain/decimal.ts";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { firstPage, launchBrowser, parseExactJson, screenshot, signIn as signInAs } from "./browser.ts";
import { type DashboardWorld, seedWorld } from "./seed.ts";

/**
 * The invoices, alerts and webhooks pages in Debian's Chromium against a real server (src/main.ts
 * as a child process, so its delivery worker sends webhooks) on a seeded SQLite store.
 */

const exact = (v: string) => formatDec(parseDec(v));

/** October is over: its usage can be closed into an invoice. */
const CLOSED_PERIOD = "2026-10";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback that answers 200 and keeps what it got. */
function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" }).end("received");
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}/hooks`,
        received,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

describe("invoices, alerts and webhooks pages in Chromium", () => {
  let server: ServerProcess;
  let world: DashboardWorld;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext;
  let page: Page;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let invoice: { id: string; number: string; total: string; currency: string };

  beforeAll(async () => {
    server = await startServer();
    world = await seedWorld(server);
    receiver = await startReceiver();
    // October usage for Acme, then October closed by root: one finalized invoice
    const events = await call(server, "POST", "/v1/events", {
      key: server.adminKey,
      body: {
        account_id: world.acme.id,
        events: [
          {
            id: "oct1",
            timestamp: "2026-10-10T10:00:00Z",
            model_id: "flux-1-dev",
            quantity: 10,
            user_id: world.acme.admin.userId,
          },
          {
            id: "oct2",
            timestamp: "2026-10-20T10:00:00Z",
            model_id: "gpt-4o-mini",
            quantity: 123457,
            user_id: world.acme.admin.userId,
          },
        ],
      },
    });
    expect(events.status, events.text).toBeLessThan(300);
    const closed = await call(server, "POST", "/v1/invoices/close", {
      key: server.adminKey,
      body: { period: CLOSED_PERIOD, account_id: world.acme.id },
    });
    expect(closed.status, closed.text).toBe(200);
    invoice = (parseExactJson(closed.text) as { invoices: (typeof invoice)[] }).invoices[0];
    expect(invoice.number).toBeTruthy();

    browser = await launchBrowser();
    context = browser.context;
    page = await firstPage(context);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.cleanup();
  });

  const url = (path: string) => `${server.url}${path}`;

  const signIn = (key: string) => signInAs(context, page, server.url, key);

  it("shows an admin the closed month's invoice with the API's total, its lines, and working PDF and CSV links", async () => {
    await signIn(world.acme.admin.key);
    const nav = page.getByRole("navigation", { name: "Dashboard pages" });
    for (const title of ["Invoices", "Alerts", "Webhooks"]) expect(await nav.textContent()).toContain(title);
    await nav.getByRole("link", { name: "Invoices" }).click();
    await page.locator("#invoices-table").waitFor();
    const row = page.locator(`#invoices-table tr[data-invoice-id="${invoice.id}"]`);
    expect(await row.locator("td").first().textContent()).toBe(invoice.number);
    expect(await row.textContent()).toContain(CLOSED_PERIOD);
    expect(await row.textContent()).toContain("Finalized");
    // 10 images at 0.025 and 123457 tokens at 0.00000015 (0.26851855), billed in cents
    expect(exact(invoice.total)).toBe("0.27");
    expect(exact((await row.locator("td.num").getAttribute("data-exact")) ?? "")).toBe("0.27");
    // the upcoming draft is there too, for the open month (whichever month the clock is in)
    const upcoming = await call(server, "GET", `/v1/accounts/${world.acme.id}/invoices/upcoming`, {
      key: world.acme.admin.key,
    });
    expect(upcoming.status, upcoming.text).toBe(200);
    const openPeriod = (parseExactJson(upcoming.text) as { period: { label: string } }).period.label;
    expect(openPeriod).toMatch(/^\d{4}-\d{2}$/);
    expect(openPeriod > CLOSED_PERIOD).toBe(true);
    expect(await page.locator("#upcoming-period").textContent()).toBe(openPeriod);
    await screenshot(page, "invoices");

    await page.getByRole("link", { name: `View invoice ${invoice.number}` }).click();
    await page.locator("#invoice-lines").waitFor();
    expect(exact((await page.locator("#invoice-total").getAttribute("data-exact")) ?? "")).toBe("0.27");
    const lineModels = await page.$$eval("#invoice-lines tbody tr td:first-child", (tds) =>
      tds.map((td) => td.textContent),
    );
    expect(lineModels.sort()).toEqual(["flux-1-dev", "gpt-4o-mini"]);
    await screenshot(page, "invoice");

    const api = await call(server, "GET", `/v1/invoices/${invoice.id}.csv`, { key: world.acme.admin.key });
    expect(api.status).toBe(200);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.locator("#invoice-csv").click()]);
    expect(csv.suggestedFilename()).toBe(`${invoice.number}.csv`);
    expect(readFileSync((await csv.path())!, "utf8")).toBe(api.text);
    const [pdf] = await Promise.all([page.waitForEvent("download"), page.locator("#invoice-pdf").click()]);
    expect(
      readFileSync((await pdf.path())!)
        .subarray(0, 5)
        .toString(),
    ).toBe("%PDF-");
  });

  it("creates an alert rule with the labelled form and lists it with this period's total", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/alerts"));
    await page.locator("#alerts-empty").waitFor();
    await page.getByLabel("Measure").selectOption("cost");
    await page.getByLabel("Period").selectOption("month");
    await page.getByLabel("Compared with").selectOption("absolute");
    await page.getByLabel("Limit").fill("1");
    await page.getByLabel("Thresholds (%)").fill("50, 80, 100");
    await page.getByRole("button", { name: "Create alert" }).click();
    await page.locator("#alerts-table").waitFor();

    const listed = await call(server, "GET", `/v1/accounts/${world.acme.id}/alerts`, {
      key: world.acme.admin.key,
    });
    const rules = (parseExactJson(listed.text) as { data: { id: string; total: string; limit: string }[] })
      .data;
    expect(rules).toHaveLength(1);
    const cells = page.locator(`#alerts-table tr[data-alert-id="${rules[0].id}"] td.num`);
    expect(exact((await cells.nth(0).getAttribute("data-exact")) ?? "")).toBe(exact(rules[0].total));
    expect(exact((await cells.nth(1).getAttribute("data-exact")) ?? "")).toBe("1");
    expect(Number(rules[0].total)).toBeGreaterThan(0);
    const thresholds = await page.locator(`tr[data-alert-id="${rules[0].id}"] li`).allTextContents();
    expect(thresholds.map((t) => t.split(":")[0])).toEqual(["50%", "80%", "100%"]);
    await screenshot(page, "alerts");

    // deleting asks first; cancelling keeps the rule
    await page.getByRole("button", { name: /^Delete alert/ }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(await page.locator("#alerts-table tbody tr").count()).toBe(1);
    await page.getByRole("button", { name: /^Delete alert/ }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete alert" }).click();
    await page.locator("#alerts-empty").waitFor();
    const after = await call(server, "GET", `/v1/accounts/${world.acme.id}/alerts`, {
      key: world.acme.admin.key,
    });
    expect((after.body as { data: unknown[] }).data).toHaveLength(0);
  });

  it("creates a webhook endpoint (secret shown once), sends a test and shows the delivery, rotates and retries", async () => {
    await signIn(world.acme.admin.key);
    await page.goto(url("/dashboard/webhooks"));
    await page.locator("#webhooks-empty").waitFor();
    await page.getByLabel("URL").fill(receiver.url);
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const secret = await page.locator("#webhook-secret").inputValue();
    expect(secret).toMatch(/^whsec_/);
    await page.locator("#webhooks-table").waitFor();

    await page.getByRole("button", { name: `Send test: ${receiver.url}` }).click();
    const delivered = page.locator("#delivery-log .delivery[data-status='succeeded']");
    await delivered.first().waitFor({ timeout: 20_000 });
    expect(await delivered.first().locator("h3").textContent()).toContain("webhook.test");
    expect(await delivered.first().locator("tbody td").nth(3).textContent()).toBe("200");
    expect(receiver.received.some((r) => r.body.includes("webhook.test"))).toBe(true);
    expect(receiver.received[0].headers["webhook-signature"]).toMatch(/^v1,/);
    await screenshot(page, "webhooks");

    // a manual retry adds an attempt
    const before = receiver.received.length;
    await page
      .getByRole("button", { name: /^Retry delivery/ })
      .first()
      .click();
    await expect.poll(() => receiver.received.length, { timeout: 20_000 }).toBeGreaterThan(before);

    // the secret is not shown again; a rotation shows a new one, once
    await page.reload();
    await page.locator("#webhooks-table").waitFor();
    expect(await page.content()).not.toContain(secret);
    await page.getByRole("button", { name: `Rotate secret: ${receiver.url}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate secret" }).click();
    const rotated = await page.locator("#webhook-secret").inputValue();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);

    // deleting asks first, then the endpoint is gone from the page and the API
    await page.getByRole("button", { name: `Delete: ${receiver.url}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete endpoint" }).click();
    await page.locator("#webhooks-empty").waitFor();
    const left = await call(server, "GET", "/v1/webhooks", { key: world.acme.admin.key });
    expect((left.body as { data: unknown[] }).data).toHaveLength(0);
  });

  it("keeps these pages from a member: not in the navigation, and a clear message at the URL", async () => {
    await signIn(world.acme.member.key);
    const nav = page.getByRole("navigation", { name: "Dashboard pages" });
    for (const title of ["Invoices", "Alerts", "Webhooks"])
      expect(await nav.textContent()).not.toContain(title);
    for (const path of ["invoices", "alerts", "webhooks"]) {
      await page.goto(url(`/dashboard/${path}`));
      await expect.poll(() => page.locator("main .notice").textContent()).toContain("for account admins");
    }
    await screenshot(page, "member-webhooks");
    // the API refuses the member the same way
    expect((await page.request.get(url(`/v1/accounts/${world.acme.id}/invoices`))).status()).toBe(403);
  });
});
