import { runLoad } from "../lib/load.ts";
import type { Server } from "../lib/server.ts";
import { ACCOUNT_ID, KEYS, RANGE, ZONE } from "../lib/world.ts";
import type { BenchContext } from "./context.ts";

/**
 * The dashboard's pages at the query figures' data size (issue 18: "pages answer in <= 20 ms
 * server time at 10M events; the first load transfers <= 250 KB"). A page's server time is the
 * sum of the p50 latencies of the requests its script makes (a browser sends some of them in
 * parallel, so this is the upper bound), each sent as the browser does: with the session cookie
 * of an admin signed in through /dashboard/api/session. The first load is every file the sign-in
 * page pulls in: index.html, what it links, and every module app.js imports, followed to the end.
 */

const tz = encodeURIComponent(ZONE);
/** The usage log's first page, as the dashboard asks for it. */
export const USAGE_LOG_PATH = "/usage?skip=0&limit=50";
const PAGES: { name: string; paths: string[] }[] = [
  {
    name: "overview",
    paths: [
      "/dashboard/api/session",
      `/v1/models/usage?start=2026-11-01&end=2026-12-01&timezone=${tz}&timeframe=month&expand=summary`,
      "/v1/usage?section=account_information,subscription_details,rate_limits_and_restrictions",
      `/v1/accounts/${ACCOUNT_ID}`,
    ],
  },
  {
    name: "usage",
    paths: [
      "/dashboard/api/session",
      `/v1/models/usage?start=${RANGE.startDate}&end=${RANGE.endDate}&timezone=${tz}&timeframe=day&expand=time_series&limit=1000`,
    ],
  },
  { name: "usage log", paths: ["/dashboard/api/session", USAGE_LOG_PATH] },
  { name: "keys", paths: ["/dashboard/api/session", `/v1/accounts/${ACCOUNT_ID}/keys?limit=1000`] },
  {
    name: "invoices",
    paths: [
      "/dashboard/api/session",
      `/v1/accounts/${ACCOUNT_ID}/invoices/upcoming`,
      `/v1/accounts/${ACCOUNT_ID}/invoices`,
    ],
  },
  { name: "alerts", paths: ["/dashboard/api/session", `/v1/accounts/${ACCOUNT_ID}/alerts`] },
  { name: "webhooks", paths: ["/dashboard/api/session", "/v1/webhooks?limit=1000"] },
];

export interface DashboardResult {
  pages: { name: string; ms: number }[];
  firstLoadKb: number;
}

async function signIn(server: Server): Promise<string> {
  const res = await fetch(`${server.url}/dashboard/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json", "sec-fetch-site": "same-origin" },
    body: JSON.stringify({ key: KEYS[0].secret }),
  });
  if (res.status !== 201) throw new Error(`dashboard sign-in answered ${res.status}: ${await res.text()}`);
  const cookie = res.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0];
}

/** Bytes of the first load: index.html, its links, and every module reachable from them. */
async function firstLoadBytes(server: Server): Promise<number> {
  const seen = new Set<string>();
  let bytes = 0;
  const queue = ["/dashboard/"];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const res = await fetch(server.url + path);
    if (res.status !== 200) throw new Error(`first load: ${path} answered ${res.status}`);
    const text = await res.text();
    bytes += Buffer.byteLength(text);
    for (const m of text.matchAll(/(?:href|src)="(\/dashboard\/assets\/[^"]+)"/g)) queue.push(m[1]);
    if (path.endsWith(".js")) {
      for (const m of text.matchAll(/from\s+"\.\/([^"]+\.js)"/g)) queue.push(`/dashboard/assets/${m[1]}`);
    }
  }
  return bytes;
}

export async function measureDashboard(
  ctx: BenchContext,
  server: Server,
  reps: number,
): Promise<DashboardResult> {
  const cookie = await signIn(server);
  const headers = { cookie, "sec-fetch-site": "same-origin" };
  const p50 = new Map<string, number>();
  for (const path of new Set(PAGES.flatMap((p) => p.paths))) {
    const r = await runLoad({ url: server.url, path, method: "GET", headers, connections: 1, amount: reps });
    if (r.non2xx || r.errors)
      ctx.problems.add(`dashboard GET ${path}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    p50.set(path, r.p50);
  }
  return {
    pages: PAGES.map((p) => ({ name: p.name, ms: p.paths.reduce((sum, path) => sum + p50.get(path)!, 0) })),
    firstLoadKb: (await firstLoadBytes(server)) / 1024,
  };
}
