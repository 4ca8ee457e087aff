import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { REPO_ROOT } from "../support/server-process.ts";

/** Debian's Chromium, headless, with a fresh profile and no traffic of its own. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "tally-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
    timezoneId: "UTC",
    locale: "en-US",
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const SCREENSHOT_DIR = join(REPO_ROOT, "docs", "screenshots");

const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 860 },
  { name: "360px", width: 360, height: 760 },
];

/** The page as it is now, at desktop width and at 360 px, into docs/screenshots/. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const before = page.viewportSize();
  for (const v of VIEWPORTS) {
    await page.setViewportSize({ width: v.width, height: v.height });
    // the chart follows its container's width on the next frame
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${v.name}.png`), fullPage: true });
  }
  if (before) await page.setViewportSize(before);
}

/** JSON with every number kept as its exact source text (never a float). */
export function parseExactJson(text: string): unknown {
  return JSON.parse(
    text.replace(
      /("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
      (_m, str, num) => str ?? `"${num}"`,
    ),
  );
}

/** The browser's page, with any uncaught page error failing the test. */
export async function firstPage(context: BrowserContext): Promise<Page> {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => {
    throw err;
  });
  return page;
}

/** Signs in at `serverUrl`'s dashboard with `key`, after clearing the previous person's cookies. */
export async function signIn(
  context: BrowserContext,
  page: Page,
  serverUrl: string,
  key: string,
): Promise<void> {
  await context.clearCookies();
  await page.goto(`${serverUrl}/dashboard/`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#sign-out").waitFor();
}
