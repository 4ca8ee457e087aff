import Database from "better-sqlite3";
import { from as copyFrom } from "pg-copy-streams";
import { EVENT_COLUMNS, eventValues } from "../../src/store/rows.ts";
import { postgresCpuMicros, processCpuMicros } from "../lib/cpu.ts";
import { runLoad } from "../lib/load.ts";
import { checkMetrics } from "../lib/metrics.ts";
import { topFunctions } from "../lib/profile.ts";
import { startTally } from "../lib/server.ts";
import { type BenchStore, createBenchStore, withPg } from "../lib/stores.ts";
import {
  createWorld,
  eventJson,
  type GeneratedEvent,
  generateEvents,
  KEYS,
  toUsageEvent,
} from "../lib/world.ts";
import { type BenchContext, profileDir } from "./context.ts";

const PER_REQUEST = 1_000;
const CONNECTIONS = Number(process.env.BENCH_INGEST_CONNECTIONS ?? 4);
/** Live-ish traffic: event timestamps advance 1,000 events per second from here. */
const INGEST_START = Date.UTC(2026, 10, 20);

function ingestEvents(count: number, ctx: BenchContext, seed: number): GeneratedEvent[] {
  return [...generateEvents(count, { seed, ids: ctx.ids, start: INGEST_START, end: INGEST_START + count })];
}

async function countStored(bs: BenchStore): Promise<{ events: number; rollupRequests: number }> {
  const sql = {
    events: "SELECT COUNT(*) AS n FROM usage_events",
    rollup: "SELECT COALESCE(SUM(requests), 0) AS n FROM usage_rollups WHERE family = 0 AND level = 3",
  };
  if (bs.name === "sqlite") {
    const db = new Database(bs.path, { readonly: true });
    try {
      const events = Number((db.prepare(sql.events).get() as { n: number }).n);
      const rollupRequests = Number((db.prepare(sql.rollup).get() as { n: number }).n);
      return { events, rollupRequests };
    } finally {
      db.close();
    }
  }
  return withPg(bs.path, async (c) => ({
    events: Number((await c.query(sql.events)).rows[0].n),
    rollupRequests: Number((await c.query(sql.rollup)).rows[0].n),
  }));
}

/** Raw ceiling, SQLite: the same rows into the same usage_events schema, 1,000 rows a transaction. */
async function sqliteRaw(events: GeneratedEvent[]): Promise<number> {
  const bs = await createBenchStore("sqlite", "raw");
  try {
    await bs.store.close();
    const db = new Database(bs.path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    const insert = db.prepare(
      `INSERT INTO usage_events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`,
    );
    const tx = db.transaction((rows: unknown[][]) => {
      for (const r of rows) insert.run(...r);
    });
    let seconds = 0;
    const now = Date.now();
    for (let i = 0; i < events.length; i += PER_REQUEST) {
      const rows = events.slice(i, i + PER_REQUEST).map((e) => eventValues(toUsageEvent(e, now)));
      const t0 = performance.now();
      tx(rows);
      seconds += (performance.now() - t0) / 1000;
    }
    db.close();
    return events.length / seconds;
  } finally {
    await bs.cleanup();
  }
}

const copyText = (v: unknown): string => {
  if (v === null || v === undefined) return "\\N";
  return String(v).replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n");
};

/** Raw ceiling, PostgreSQL: one COPY of the same rows into the same usage_events schema. */
async function postgresCopy(events: GeneratedEvent[]): Promise<number> {
  const bs = await createBenchStore("postgres", "copy");
  try {
    await bs.store.close();
    const now = Date.now();
    const chunks: string[] = [];
    for (let i = 0; i < events.length; i += 10_000) {
      chunks.push(
        events
          .slice(i, i + 10_000)
          .map((e) => `${eventValues(toUsageEvent(e, now)).map(copyText).join("\t")}\n`)
          .join(""),
      );
    }
    return await withPg(bs.path, async (c) => {
      await c.query("CHECKPOINT").catch(() => {});
      const t0 = performance.now();
      const stream = c.query(copyFrom(`COPY usage_events (${EVENT_COLUMNS.join(", ")}) FROM STDIN`));
      await new Promise<void>((resolve, reject) => {
        stream.on("finish", resolve);
        stream.on("error", reject);
        let i = 0;
        const write = () => {
          while (i < chunks.length) {
            if (!stream.write(chunks[i++])) return void stream.once("drain", write);
          }
          stream.end();
        };
        write();
      });
      return events.length / ((performance.now() - t0) / 1000);
    });
  } finally {
    await bs.cleanup();
  }
}

/** Batch ingest: POST /v1/events with 1,000 events a request, several connections, vs raw inserts. */
export async function ingestFigure(ctx: BenchContext): Promise<void> {
  const requests = ctx.checkOnly ? 10 : ctx.quick ? 100 : 1_000;
  const total = requests * PER_REQUEST;
  const store = ctx.store;
  ctx.log(`ingest (${store}): ${requests} requests x ${PER_REQUEST} events, ${CONNECTIONS} connections`);
  const events = ingestEvents(total, ctx, 7);
  const warm = ingestEvents(10 * PER_REQUEST, ctx, 8).map((e) => ({ ...e, id: `warm-${e.id}` }));
  const toBody = (list: GeneratedEvent[]) => JSON.stringify({ events: list.map(eventJson) });
  const bodies: string[] = [];
  for (let i = 0; i < total; i += PER_REQUEST) bodies.push(toBody(events.slice(i, i + PER_REQUEST)));
  const warmBodies: string[] = [];
  for (let i = 0; i < warm.length; i += PER_REQUEST) warmBodies.push(toBody(warm.slice(i, i + PER_REQUEST)));

  const bs = await createBenchStore(store, "ingest");
  const prof = profileDir(ctx, `ingest-${store}`);
  let acknowledged = 0;
  let rate = 0;
  /** CPU microseconds per event ingested: Tally's server process, and PostgreSQL's processes */
  let tallyCpu = 0;
  let postgresCpu: number | null = null;
  try {
    await createWorld(bs.store);
    await bs.store.close();
    const server = await startTally(bs.env, ctx.adminKey, prof);
    try {
      const headers = { authorization: `Bearer ${KEYS[0].secret}` };
      const onResponse = (status: number, body: string) => {
        if (status !== 200) return;
        const m = /"accepted":(\d+)/.exec(body);
        acknowledged += m ? Number(m[1]) : 0;
        if (!m || !/"rejected":\[\]/.test(body))
          ctx.problems.add(`ingest: unexpected answer ${body.slice(0, 200)}`);
      };
      let w = 0;
      const warmRun = await runLoad({
        url: server.url,
        path: "/v1/events",
        method: "POST",
        headers,
        body: () => warmBodies[w++ % warmBodies.length],
        connections: 2,
        amount: warmBodies.length,
        onResponse,
      });
      let n = 0;
      const cpuBefore = { tally: processCpuMicros(server.pid), postgres: postgresCpuMicros() };
      const run = await runLoad({
        url: server.url,
        path: "/v1/events",
        method: "POST",
        headers,
        body: () => bodies[n++],
        connections: CONNECTIONS,
        amount: bodies.length,
        onResponse,
      });
      for (const r of [warmRun, run]) {
        if (r.non2xx > 0 || r.errors > 0)
          ctx.problems.add(`ingest (${store}): ${r.non2xx} non-2xx answers, ${r.errors} errors`);
      }
      rate = (run.requests * PER_REQUEST) / run.seconds;
      const ingested = run.requests * PER_REQUEST;
      tallyCpu = (processCpuMicros(server.pid) - cpuBefore.tally) / ingested;
      const pgAfter = postgresCpuMicros();
      if (store === "postgres" && cpuBefore.postgres !== null && pgAfter !== null)
        postgresCpu = (pgAfter - cpuBefore.postgres) / ingested;
      await checkMetrics(ctx, `the ingest figure (${store})`, server, {
        accepted: acknowledged,
        duplicate: 0,
        requests: warmRun.requests + run.requests,
      });
    } finally {
      await server.stop();
    }
    if (prof) ctx.profiles[`ingest-${store}`] = topFunctions(prof);
    const stored = await countStored(bs);
    const sent = total + warm.length;
    if (stored.events !== acknowledged || stored.rollupRequests !== acknowledged || acknowledged !== sent) {
      ctx.problems.add(
        `ingest (${store}): sent ${sent}, acknowledged ${acknowledged}, stored ${stored.events}, rollups count ${stored.rollupRequests}`,
      );
    } else {
      ctx.log(
        `  verified: ${stored.events.toLocaleString("en-US")} events stored = acknowledged (rollups agree)`,
      );
    }
  } finally {
    await bs.cleanup();
  }

  const baseline = store === "sqlite" ? await sqliteRaw(events) : await postgresCopy(events);
  const floor = store === "sqlite" ? 150_000 : 50_000;
  const ratio = rate / baseline;
  ctx.figures.push({
    figure: `batch ingest, POST /v1/events, ${PER_REQUEST} events/request, ${CONNECTIONS} connections`,
    store,
    unit: "events/s",
    tally: rate,
    baseline,
    baselineName: store === "sqlite" ? "raw better-sqlite3, 1,000 rows/tx" : "COPY",
    ratio,
    target: `>= ${floor.toLocaleString("en-US")}/s and >= 0.3x`,
    pass: rate >= floor && ratio >= 0.3,
    note: `${total.toLocaleString("en-US")} events, ${ctx.ids === "v7" ? "time-ordered (UUIDv7)" : "random (UUIDv4)"} idempotency keys; Tally's CPU ${tallyCpu.toFixed(1)} µs per event`,
  });
  if (postgresCpu !== null) {
    // what one PostgreSQL core can take from N instances: Tally's CPU per event over PostgreSQL's
    ctx.figures.push({
      figure: "batch ingest: PostgreSQL's CPU per event (all its processes)",
      store,
      unit: "µs",
      tally: postgresCpu,
      baseline: tallyCpu,
      baselineName: "Tally's server CPU per event",
      ratio: tallyCpu / postgresCpu,
      target: "(reported)",
      pass: true,
      note: `one PostgreSQL core keeps up with about ${(tallyCpu / postgresCpu).toFixed(1)} Tally cores of batch ingest (${Math.round(1e6 / postgresCpu).toLocaleString("en-US")} events/s per PostgreSQL core)`,
    });
  }
}
