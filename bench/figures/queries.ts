import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { joinCost } from "../../src/domain/decimal.ts";
import { bucketsBetween } from "../../src/domain/time.ts";
import { QueryService } from "../../src/query/usage-query.ts";
import { median, runLoad } from "../lib/load.ts";
import { topFunctions } from "../lib/profile.ts";
import { type Server, startTally } from "../lib/server.ts";
import { analyzeAfterLoad, type BenchStore, createBenchStore, withPg } from "../lib/stores.ts";
import {
  ACCOUNT_ID,
  createWorld,
  DATA_END,
  DATA_START,
  DST_CHANGE,
  KEYS,
  loadEvents,
  RANGE,
  ZONE,
} from "../lib/world.ts";
import { type BenchContext, profileDir } from "./context.ts";
import { type DashboardResult, measureDashboard } from "./dashboard.ts";

/** The workspace series over the world's 30 NY days (the soak reads it too). */
export const SERIES_PATH = `/v1/models/usage?start=${RANGE.startDate}&end=${RANGE.endDate}&timezone=${encodeURIComponent(ZONE)}&timeframe=day&limit=100`;
/** Key usage statistics, all sections. */
export const USAGE_PATH = "/v1/usage";
const HOUR = 3_600_000;

interface Measured {
  p50: number;
  how: string;
}

interface SizeResult {
  events: number;
  loadSeconds: number;
  series: Measured;
  usage: Measured;
  naiveMs: number;
  rssMb: number;
  dashboard: DashboardResult;
  storeBytes: number;
}

/** The naive answer: GROUP BY New York day x model over the raw usage_events table. */
async function naive(bs: BenchStore, reps: number): Promise<{ ms: number; requests: number; cost: bigint }> {
  const times: number[] = [];
  let requests = 0;
  let cost = 0n;
  const sum = (rows: Record<string, unknown>[]) => {
    requests = 0;
    cost = 0n;
    for (const r of rows) {
      requests += Number(r.requests);
      cost += joinCost(r.cost_nano as bigint, r.cost_atto as bigint);
    }
  };
  if (bs.name === "sqlite") {
    const db = new Database(bs.path, { readonly: true });
    try {
      const stmt = db
        .prepare(
          `SELECT (CASE WHEN ts < ? THEN ts - ${4 * HOUR} ELSE ts - ${5 * HOUR} END) / 86400000 AS day,
             model_id, unit, unit_price, currency, COUNT(*) AS requests, SUM(quantity) AS quantity,
             SUM(cost_nano) AS cost_nano, SUM(cost_atto) AS cost_atto
           FROM usage_events
           WHERE account_id = ? AND ts >= ? AND ts < ? AND status_active = 1 AND deleted_at IS NULL
           GROUP BY day, model_id, unit, unit_price, currency ORDER BY day, model_id`,
        )
        .safeIntegers(true);
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        const rows = stmt.all(DST_CHANGE, ACCOUNT_ID, DATA_START, DATA_END) as Record<string, unknown>[];
        times.push(performance.now() - t0);
        sum(rows);
      }
    } finally {
      db.close();
    }
  } else {
    await withPg(bs.path, async (c) => {
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        const { rows } = await c.query(
          `SELECT date_trunc('day', to_timestamp(ts / 1000.0) AT TIME ZONE 'America/New_York') AS day,
             model_id, unit, unit_price, currency, COUNT(*) AS requests, SUM(quantity) AS quantity,
             SUM(cost_nano)::text AS cost_nano, SUM(cost_atto)::text AS cost_atto
           FROM usage_events
           WHERE account_id = $1 AND ts >= $2 AND ts < $3 AND status_active = 1 AND deleted_at IS NULL
           GROUP BY 1, model_id, unit, unit_price, currency ORDER BY 1, model_id`,
          [ACCOUNT_ID, DATA_START, DATA_END],
        );
        times.push(performance.now() - t0);
        sum(rows.map((r) => ({ ...r, cost_nano: BigInt(r.cost_nano), cost_atto: BigInt(r.cost_atto) })));
      }
    });
  }
  return { ms: median(times), requests, cost };
}

/** Counts the buckets of a workspace answer and sums the cost of every line in them. */
function seriesTotals(body: unknown): { buckets: number; cost: number } {
  type Bucket = { results?: Record<string, unknown>[] };
  const b = body as { time_series?: Bucket[]; data?: Bucket[] };
  const data = b.time_series ?? b.data ?? [];
  let cost = 0;
  for (const b of data) for (const r of b.results ?? []) cost += Number(r.cost ?? r.amount ?? 0);
  return { buckets: data.length, cost };
}

async function exists(server: Server, path: string, headers: Record<string, string>): Promise<unknown> {
  const res = await fetch(server.url + path, { headers });
  const text = await res.text();
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** What the store takes on disk: the SQLite file and its WAL, or every table of the schema with its indexes. */
async function storeBytes(bs: BenchStore): Promise<number> {
  if (bs.name === "sqlite") {
    const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);
    return size(bs.path) + size(`${bs.path}-wal`);
  }
  return withPg(bs.path, async (c) => {
    const { rows } = await c.query(
      `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [bs.schema],
    );
    return Number(rows[0].bytes);
  });
}

async function timeInProcess(reps: number, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(5, reps); i++) await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function measureSize(ctx: BenchContext, events: number): Promise<SizeResult> {
  const reps = ctx.checkOnly ? 5 : ctx.quick ? 30 : 200;
  const bs = await createBenchStore(ctx.store, `q${events}`);
  const prof = profileDir(ctx, `queries-${ctx.store}-${events}`);
  try {
    await createWorld(bs.store);
    ctx.log(`queries (${ctx.store}): loading ${events.toLocaleString("en-US")} events through appendEvents`);
    const loadSeconds = await loadEvents(bs.store, events, 42, (done) =>
      ctx.log(`  ${done.toLocaleString("en-US")} loaded`),
    );
    ctx.log(
      `  loaded in ${loadSeconds.toFixed(1)} s (${Math.round(events / loadSeconds).toLocaleString("en-US")} events/s)`,
    );
    await analyzeAfterLoad(bs);
    const bytes = await storeBytes(bs);
    ctx.log(
      `  store size ${(bytes / 2 ** 20).toFixed(0)} MiB (${Math.round(bytes / events)} bytes per event)`,
    );
    const server = await startTally(bs.env, ctx.adminKey, prof);
    let series: Measured;
    let usage: Measured;
    let rssMb = 0;
    let dashboard: DashboardResult = { pages: [], firstLoadKb: 0 };
    const base = await naive(bs, ctx.checkOnly || ctx.quick || events >= 5_000_000 ? 1 : 3);
    if (base.requests !== events)
      ctx.problems.add(`naive GROUP BY counted ${base.requests} of ${events} events`);
    try {
      const query = new QueryService(bs.store);
      const buckets = bucketsBetween(DATA_START, DATA_END, "day", ZONE);
      // the workspace series over HTTP when the route exists, else the core's query in-process
      const adminHeaders = { authorization: `Key ${KEYS[0].secret}` };
      const body = await exists(server, SERIES_PATH, adminHeaders);
      if (body !== null) {
        const t = seriesTotals(body);
        const expected = Number(base.cost) / 1e18;
        if (t.buckets !== 30)
          ctx.problems.add(`GET /v1/models/usage listed ${t.buckets} buckets, expected 30`);
        if (Math.abs(t.cost - expected) > Math.max(1e-6, expected * 1e-9))
          ctx.problems.add(`GET /v1/models/usage cost total ${t.cost}, naive GROUP BY says ${expected}`);
        const r = await runLoad({
          url: server.url,
          path: SERIES_PATH,
          method: "GET",
          headers: adminHeaders,
          connections: 1,
          amount: reps,
        });
        if (r.non2xx || r.errors)
          ctx.problems.add(`GET /v1/models/usage: ${r.non2xx} non-2xx, ${r.errors} errors`);
        series = { p50: r.p50, how: "HTTP GET /v1/models/usage" };
      } else {
        const lines = await query.series({ accountId: ACCOUNT_ID, buckets });
        const requests = lines.flat().reduce((a, l) => a + l.requests, 0);
        const cost = lines.flat().reduce((a, l) => a + l.cost, 0n);
        if (requests !== events || cost !== base.cost)
          ctx.problems.add(
            `series: ${requests} requests / cost ${cost}, naive says ${events} / ${base.cost}`,
          );
        series = {
          p50: await timeInProcess(reps, () => query.series({ accountId: ACCOUNT_ID, buckets })),
          how: "in-process services.query.series (route not built yet)",
        };
      }
      const keyHeaders = { authorization: `Bearer ${KEYS[0].secret}` };
      const usageBody = await exists(server, USAGE_PATH, keyHeaders);
      if (usageBody !== null) {
        const r = await runLoad({
          url: server.url,
          path: USAGE_PATH,
          method: "GET",
          headers: keyHeaders,
          connections: 1,
          amount: reps,
        });
        if (r.non2xx || r.errors) ctx.problems.add(`GET /v1/usage: ${r.non2xx} non-2xx, ${r.errors} errors`);
        usage = { p50: r.p50, how: "HTTP GET /v1/usage" };
      } else {
        const all = () =>
          Promise.all([
            query.totals({ accountId: ACCOUNT_ID }),
            query.totals({ accountId: ACCOUNT_ID, family: "key", keyId: KEYS[0].id }),
          ]);
        const [acct] = await all();
        const requests = acct.reduce((a, l) => a + l.requests, 0);
        if (requests !== events) ctx.problems.add(`usage totals: ${requests} requests, expected ${events}`);
        usage = {
          p50: await timeInProcess(reps, all),
          how: "in-process account + key all-time totals (route not built yet)",
        };
      }
      dashboard = await measureDashboard(ctx, server, reps);
      rssMb = server.memory().hwmMb;
    } finally {
      await server.stop();
    }
    if (prof) ctx.profiles[`queries-${ctx.store}-${events}`] = topFunctions(prof);
    return { events, loadSeconds, series, usage, naiveMs: base.ms, rssMb, dashboard, storeBytes: bytes };
  } finally {
    await bs.cleanup();
  }
}

/** Workspace time series and key statistics at N events (and N/10 for the scaling ratio). */
export async function queryFigures(ctx: BenchContext): Promise<void> {
  const large = ctx.events;
  const small = Math.max(1_000, Math.round(large / 10));
  const s = await measureSize(ctx, small);
  const l = await measureSize(ctx, large);
  const n = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : `${v / 1e3}k`);
  const store = ctx.store;
  ctx.figures.push(
    {
      figure: `workspace time series, 30 NY days by day, ${n(large)} events: p50`,
      store,
      unit: "ms",
      tally: l.series.p50,
      baseline: l.naiveMs,
      baselineName: "naive GROUP BY over usage_events",
      ratio: l.naiveMs / l.series.p50,
      target: "<= 10 ms and >= 100x faster",
      pass: l.series.p50 <= 10 && l.naiveMs / l.series.p50 >= 100,
      note: `${l.series.how}; ratio = baseline / Tally`,
    },
    {
      figure: `key usage statistics (all sections), ${n(large)} events: p50`,
      store,
      unit: "ms",
      tally: l.usage.p50,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "<= 10 ms",
      pass: l.usage.p50 <= 10,
      note: l.usage.how,
    },
    {
      figure: `time series: query time at ${n(large)} / at ${n(small)} events`,
      store,
      unit: "x",
      tally: l.series.p50 / s.series.p50,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "< 1.5",
      pass: l.series.p50 / s.series.p50 < 1.5,
      note: `${s.series.p50.toFixed(3)} ms -> ${l.series.p50.toFixed(3)} ms`,
    },
    {
      figure: `key statistics: query time at ${n(large)} / at ${n(small)} events`,
      store,
      unit: "x",
      tally: l.usage.p50 / s.usage.p50,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "< 1.5",
      pass: l.usage.p50 / s.usage.p50 < 1.5,
      note: `${s.usage.p50.toFixed(3)} ms -> ${l.usage.p50.toFixed(3)} ms`,
    },
    {
      figure: `dashboard pages, ${n(large)} events: slowest page's server time (sum of its requests' p50)`,
      store,
      unit: "ms",
      tally: Math.max(...l.dashboard.pages.map((p) => p.ms)),
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "<= 20 ms",
      pass: Math.max(...l.dashboard.pages.map((p) => p.ms)) <= 20,
      note: l.dashboard.pages.map((p) => `${p.name} ${p.ms.toFixed(2)} ms`).join(", "),
    },
    {
      figure: "dashboard first load (index.html, its styles and scripts, every module)",
      store,
      unit: "KB",
      tally: l.dashboard.firstLoadKb,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "<= 250 KB",
      pass: l.dashboard.firstLoadKb <= 250,
    },
    {
      figure: `server peak RSS (VmHWM) during the ${n(large)}-event query runs`,
      store,
      unit: "MB",
      tally: l.rssMb,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "<= 250 MB",
      pass: l.rssMb <= 250,
    },
    {
      figure: `store size at ${n(large)} events (events, rollups, indexes): bytes per event`,
      store,
      unit: "B",
      tally: l.storeBytes / large,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "(reported)",
      pass: true,
      note: `${(l.storeBytes / 2 ** 20).toFixed(0)} MiB at ${n(large)}, ${(s.storeBytes / 2 ** 20).toFixed(0)} MiB at ${n(small)}`,
    },
    {
      figure: `data load, ${n(large)} events through appendEvents (10,000/tx)`,
      store,
      unit: "s",
      tally: l.loadSeconds,
      baseline: null,
      baselineName: null,
      ratio: null,
      target: "(reported)",
      pass: true,
      note: `${Math.round(large / l.loadSeconds).toLocaleString("en-US")} events/s`,
    },
  );
}
