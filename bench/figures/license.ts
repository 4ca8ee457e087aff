import Database from "better-sqlite3";
import { type LoadResult, median, runLoad } from "../lib/load.ts";
import { topFunctions } from "../lib/profile.ts";
import { type Server, startBareFastify, startTally } from "../lib/server.ts";
import { type BenchStore, createBenchStore, withPg } from "../lib/stores.ts";
import { createWorld, IMAGE_MODEL, KEYS } from "../lib/world.ts";
import { type BenchContext, profileDir } from "./context.ts";

export const REPORT_PATH = `/v1/licenses/models/${IMAGE_MODEL.id}/usage`;
/** One generation reported; each stores one usage event. */
export const REPORT_BODY = '{"number_of_generations":1}';

interface Target {
  path: string;
  headers: Record<string, string>;
  body: () => string;
  label: string;
}

/** The license report if the route exists yet; else a single-event POST /v1/events, the same way. */
async function pickTarget(server: Server): Promise<Target> {
  const headers = { "x-key": KEYS[0].secret, "content-type": "application/json" };
  const res = await fetch(server.url + REPORT_PATH, {
    method: "POST",
    headers,
    body: REPORT_BODY,
  });
  const text = await res.text();
  if (res.status === 200) {
    return {
      path: REPORT_PATH,
      headers: { "x-key": KEYS[0].secret },
      body: () => REPORT_BODY,
      label: "license report POST /v1/licenses/models/{slug}/usage",
    };
  }
  if (res.status !== 404) throw new Error(`license report probe answered ${res.status}: ${text}`);
  let n = 0;
  const ts = Date.UTC(2026, 10, 21);
  return {
    path: "/v1/events",
    headers: { authorization: `Bearer ${KEYS[0].secret}` },
    body: () => `{"id":"single-${n++}","timestamp":${ts + n},"model_id":"${IMAGE_MODEL.id}","quantity":1}`,
    label: "single event POST /v1/events (license report route not built yet)",
  };
}

export async function countEvents(bs: BenchStore): Promise<number> {
  if (bs.name === "sqlite") {
    const db = new Database(bs.path, { readonly: true });
    try {
      return Number((db.prepare("SELECT COUNT(*) AS n FROM usage_events").get() as { n: number }).n);
    } finally {
      db.close();
    }
  }
  return withPg(bs.path, async (c) =>
    Number((await c.query("SELECT COUNT(*) AS n FROM usage_events")).rows[0].n),
  );
}

/** Single license report at 50 connections (vs bare Fastify) and at 1 connection. */
export async function licenseFigure(ctx: BenchContext): Promise<void> {
  const store = ctx.store;
  const runs = ctx.quick || ctx.checkOnly ? 1 : 3;
  const seconds = ctx.checkOnly ? 1 : ctx.quick ? 3 : 10;
  const bs = await createBenchStore(store, "report");
  const prof = profileDir(ctx, `report-${store}`);
  let ok = 0;
  // a timed run ends with requests in flight: the server may record them after the count stops
  let inFlight = 0;
  const check = (what: string, r: LoadResult, connections: number) => {
    ok += r.requests - r.non2xx;
    inFlight += connections;
    if (r.non2xx > 0 || r.errors > 0) ctx.problems.add(`${what}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  };
  try {
    await createWorld(bs.store);
    await bs.store.close();
    const bare = await startBareFastify();
    const tally = await startTally(bs.env, ctx.adminKey, prof);
    let label = "";
    try {
      const target = await pickTarget(tally);
      if (target.path === REPORT_PATH) ok += 1; // the probe itself was recorded
      label = target.label;
      ctx.log(`report (${store}): ${label}`);
      const at = (server: Server, connections: number, t: Target | null, duration: number) =>
        runLoad({
          url: server.url,
          path: t ? t.path : REPORT_PATH,
          method: "POST",
          headers: t ? t.headers : { "x-key": "bench" },
          body: t ? t.body : REPORT_BODY,
          connections,
          duration,
        });
      // warm-up: JIT, connection setup, the store's page cache
      await at(bare, 50, null, ctx.checkOnly ? 1 : 2);
      check("report warm-up", await at(tally, 50, target, ctx.checkOnly ? 1 : 2), 50);
      const bare50: LoadResult[] = [];
      const tally50: LoadResult[] = [];
      for (let i = 0; i < runs; i++) {
        bare50.push(await at(bare, 50, null, seconds));
        const r = await at(tally, 50, target, seconds);
        check("report, 50 connections", r, 50);
        tally50.push(r);
      }
      const tally1: LoadResult[] = [];
      const bare1: LoadResult[] = [];
      for (let i = 0; i < runs; i++) {
        bare1.push(await at(bare, 1, null, Math.max(1, seconds / 2)));
        const r = await at(tally, 1, target, Math.max(1, seconds / 2));
        check("report, 1 connection", r, 1);
        tally1.push(r);
      }
      const rps = median(tally50.map((r) => r.reqPerSec));
      const bareRps = median(bare50.map((r) => r.reqPerSec));
      const p99 = median(tally50.map((r) => r.p99));
      const bareP99 = median(bare50.map((r) => r.p99));
      const p50 = median(tally1.map((r) => r.p50));
      const bareP50 = median(bare1.map((r) => r.p50));
      const note = `${label}; median of ${runs} x ${seconds} s`;
      ctx.figures.push(
        {
          figure: "single license report, 50 connections: throughput",
          store,
          unit: "req/s",
          tally: rps,
          baseline: bareRps,
          baselineName: "bare Fastify",
          ratio: rps / bareRps,
          target: ">= 0.6x",
          pass: rps / bareRps >= 0.6,
          note,
        },
        {
          figure: "single license report, 50 connections: p99",
          store,
          unit: "ms",
          tally: p99,
          baseline: bareP99,
          baselineName: "bare Fastify",
          ratio: p99 / bareP99,
          target: "<= 1.5x",
          pass: p99 / bareP99 <= 1.5,
          note,
        },
        {
          figure: "single license report, 1 connection: p50",
          store,
          unit: "ms",
          tally: p50,
          baseline: bareP50,
          baselineName: "bare Fastify",
          ratio: p50 / bareP50,
          target: "<= 0.5 ms",
          pass: p50 <= 0.5,
          note,
        },
      );
    } finally {
      await tally.stop();
      await bare.stop();
    }
    if (prof) ctx.profiles[`report-${store}`] = topFunctions(prof);
    const stored = await countEvents(bs);
    if (stored < ok || stored > ok + inFlight)
      ctx.problems.add(
        `report (${store}): ${ok} answered 2xx (+ up to ${inFlight} in flight) but ${stored} stored`,
      );
    else
      ctx.log(
        `  verified: ${stored.toLocaleString("en-US")} events stored for ${ok} 2xx answers (+ <= ${inFlight} in flight at stops)`,
      );
  } finally {
    await bs.cleanup();
  }
}
