import { loadavg } from "node:os";
import { Pool } from "undici";
import { tally } from "../../test/support/tally-process.ts";
import { median, percentile } from "../lib/load.ts";
import { checkMetrics, scrapeMetrics } from "../lib/metrics.ts";
import { Prng } from "../lib/prng.ts";
import type { Figure } from "../lib/report.ts";
import { startTally } from "../lib/server.ts";
import { analyzeAfterLoad, createBenchStore, type StoreName } from "../lib/stores.ts";
import { createWorld, eventJson, generateEvents, IMAGE_MODEL, KEYS, loadEvents } from "../lib/world.ts";
import type { BenchContext } from "./context.ts";
import { USAGE_LOG_PATH } from "./dashboard.ts";
import { countEvents, REPORT_BODY, REPORT_PATH } from "./license.ts";
import { SERIES_PATH, USAGE_PATH } from "./queries.ts";

/**
 * The soak (issue 14): one server on the bench world, driven for N minutes at a steady rate by a
 * mixed client population, to show what a short figure cannot: memory that creeps and latency
 * that drifts as the tables grow. Requests are sent on a fixed schedule (open loop), not as fast
 * as the server answers, so a slower server shows up as latency, not as less traffic.
 */

/** Requests a second, all kinds together: a busy installation, well under the box's ceiling. */
const RATE = 100;
/** Requests the schedule may have outstanding; a due request beyond this is counted as skipped. */
const MAX_IN_FLIGHT = 32;
const PRELOAD_EVENTS = 100_000;
const RSS_EVERY_MS = 5_000;
const MINUTE = 60_000;

type Kind = "ingest" | "retry" | "report" | "log" | "workspace" | "keystats" | "limits";

/** The mix, in shares of all requests: mostly batch ingest, with a few retried batches. */
const MIX: [Kind, number][] = [
  ["ingest", 0.52],
  ["retry", 0.03],
  ["report", 0.15],
  ["log", 0.07],
  ["workspace", 0.07],
  ["keystats", 0.08],
  ["limits", 0.08],
];

interface Sent {
  kind: Kind;
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** events in an ingest batch */
  events?: number;
}

interface MinuteStats {
  latencies: number[];
  requests: number;
  errors: number;
  rss: number[];
  /** V8 heap in use at the minute's end, from /metrics: RSS growth outside it is native */
  heapMb: number;
  /** the server's event-loop delay p99 over the minute (prom-client resets it at each scrape) */
  loopP99Ms: number;
  loopMaxMs: number;
  /** due requests not sent because MAX_IN_FLIGHT were outstanding (a stall of the server) */
  skipped: number;
  /** the box's 1-minute load average at the minute's end: the other engineers' work shows here */
  load: number;
}

/** Answers that are refusals by design, not faults: a conflicting retry, a rate limit. */
const EXPECTED_REFUSALS = new Set([409, 429]);

export async function soakFigure(ctx: BenchContext, minutes: number): Promise<void> {
  const store = ctx.store;
  const bs = await createBenchStore(store, "soak");
  try {
    await createWorld(bs.store);
    ctx.log(`soak (${store}): preloading ${PRELOAD_EVENTS.toLocaleString("en-US")} events`);
    await loadEvents(bs.store, PRELOAD_EVENTS, 42);
    await analyzeAfterLoad(bs);
    await bs.store.close();
    const server = await startTally(bs.env, ctx.adminKey, null);
    const pool = new Pool(server.url, { connections: MAX_IN_FLIGHT, pipelining: 1 });
    const rng = new Prng(14);
    const admin = { authorization: `Bearer ${KEYS[0].secret}` };
    const anyKey = () => KEYS[rng.int(KEYS.length)].secret;
    /** answered batches, for retries: a client resends a batch whose answer it lost */
    const answered: string[] = [];
    let batch = 0;
    const next = (): Sent => {
      let roll = rng.next();
      let kind: Kind = "ingest";
      for (const [k, share] of MIX) {
        if (roll < share) {
          kind = k;
          break;
        }
        roll -= share;
      }
      if (kind === "retry" && answered.length === 0) kind = "ingest";
      switch (kind) {
        case "ingest": {
          const n = 1 + rng.int(20);
          const now = Date.now();
          const events = [
            ...generateEvents(n, { seed: 1_000_000 + batch++, start: now - 2_000, end: now, ids: ctx.ids }),
          ];
          const body = JSON.stringify({ events: events.map(eventJson) });
          return { kind, method: "POST", path: "/v1/events", headers: admin, body, events: n };
        }
        case "retry": {
          const body = answered[rng.int(answered.length)];
          const events = (JSON.parse(body) as { events: unknown[] }).events.length;
          return { kind, method: "POST", path: "/v1/events", headers: admin, body, events };
        }
        case "report":
          return {
            kind,
            method: "POST",
            path: REPORT_PATH,
            headers: { "x-key": anyKey() },
            body: REPORT_BODY,
          };
        case "log":
          return { kind, method: "GET", path: USAGE_LOG_PATH, headers: admin };
        case "workspace":
          return {
            kind,
            method: "GET",
            path: SERIES_PATH,
            headers: { authorization: `Key ${KEYS[0].secret}` },
          };
        case "keystats":
          return { kind, method: "GET", path: USAGE_PATH, headers: { authorization: `Bearer ${anyKey()}` } };
        case "limits":
          return {
            kind,
            method: "POST",
            path: "/v1/limits/check",
            headers: { authorization: `Bearer ${anyKey()}` },
            body: JSON.stringify({ model_id: IMAGE_MODEL.id }),
          };
      }
    };

    const perMinute: MinuteStats[] = Array.from({ length: minutes }, () => ({
      latencies: [],
      requests: 0,
      errors: 0,
      rss: [],
      heapMb: Number.NaN,
      loopP99Ms: Number.NaN,
      loopMaxMs: Number.NaN,
      skipped: 0,
      load: Number.NaN,
    }));
    const byKind = new Map<Kind, number[]>(MIX.map(([k]) => [k, []]));
    const faults: string[] = [];
    const acked = { accepted: 0, duplicate: 0, requests: 0 };
    let refused = 0;
    let skipped = 0;
    let inFlight = 0;
    const pending = new Set<Promise<void>>();

    const fault = (minute: MinuteStats, what: string) => {
      minute.errors += 1;
      if (faults.length < 5) faults.push(what);
    };
    const send = async (s: Sent, minute: MinuteStats): Promise<void> => {
      const t0 = performance.now();
      try {
        const res = await pool.request({
          method: s.method,
          path: s.path,
          headers: s.body ? { "content-type": "application/json", ...s.headers } : s.headers,
          body: s.body,
        });
        const text = await res.body.text();
        const ms = performance.now() - t0;
        minute.latencies.push(ms);
        minute.requests += 1;
        acked.requests += 1;
        byKind.get(s.kind)!.push(ms);
        const status = res.statusCode;
        if (EXPECTED_REFUSALS.has(status)) refused += 1;
        else if (status < 200 || status > 299)
          fault(minute, `${s.kind} ${s.method} ${s.path}: ${status} ${text.slice(0, 200)}`);
        else if (s.kind === "report") acked.accepted += 1;
        else if (s.kind === "ingest" || s.kind === "retry") {
          const r = JSON.parse(text) as { accepted: number; duplicates: number; rejected: unknown[] };
          acked.accepted += r.accepted;
          acked.duplicate += r.duplicates;
          const expected = s.kind === "ingest" ? r.accepted : r.duplicates;
          if (expected !== s.events || r.rejected.length > 0)
            fault(minute, `${s.kind} of ${s.events} events answered ${text.slice(0, 200)}`);
          if (s.kind === "ingest" && s.body) {
            answered.push(s.body);
            if (answered.length > 200) answered.shift();
          }
        }
      } catch (err) {
        fault(minute, `${s.kind} ${s.method} ${s.path}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };

    ctx.log(
      `soak (${store}): ${minutes} min at ${RATE} req/s (${MIX.map(([k, s]) => `${k} ${Math.round(s * 100)}%`).join(", ")})`,
    );
    // the first scrape starts the server's process metrics: event-loop delay counts from here
    await scrapeMetrics(server, ctx.adminKey);
    acked.requests += 1;
    const t0 = performance.now();
    const end = t0 + minutes * MINUTE;
    const sampleRss = () => {
      const m = Math.floor((performance.now() - t0) / MINUTE);
      if (m < minutes) perMinute[m].rss.push(server.memory().rssMb);
    };
    sampleRss();
    const rssTimer = setInterval(sampleRss, RSS_EVERY_MS);
    let due = t0;
    let logged = 0;
    try {
      while (due < end) {
        const now = performance.now();
        while (due <= now && due < end) {
          const minute = perMinute[Math.floor((due - t0) / MINUTE)];
          due += 1000 / RATE;
          if (inFlight >= MAX_IN_FLIGHT) {
            skipped += 1;
            minute.skipped += 1;
            continue;
          }
          inFlight += 1;
          const p = send(next(), minute).finally(() => {
            inFlight -= 1;
            pending.delete(p);
          });
          pending.add(p);
        }
        const m = Math.floor((now - t0) / MINUTE);
        if (m > logged && m < minutes) {
          const s = perMinute[m - 1];
          s.load = loadavg()[0];
          // one scrape a minute, beside the traffic (its answer is counted like the others)
          const scrape = scrapeMetrics(server, ctx.adminKey).then(
            (r) => {
              s.heapMb = r.heapUsedMb;
              s.loopP99Ms = r.loopLagP99Ms;
              s.loopMaxMs = r.loopLagMaxMs;
              acked.requests += 1;
            },
            (err: unknown) => fault(s, `GET /metrics: ${err instanceof Error ? err.message : String(err)}`),
          );
          pending.add(scrape);
          void scrape.finally(() => pending.delete(scrape));
          ctx.log(
            `  minute ${m}: ${s.requests} requests, p99 ${percentile(Float64Array.from(s.latencies).sort(), 99).toFixed(2)} ms, ` +
              `RSS ${median(s.rss).toFixed(0)} MB, ${s.errors} errors`,
          );
          logged = m;
        }
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(due, end) - performance.now())));
      }
      await Promise.all(pending);
    } finally {
      clearInterval(rssTimer);
    }

    try {
      const last = perMinute[minutes - 1];
      const r = await scrapeMetrics(server, ctx.adminKey);
      acked.requests += 1;
      Object.assign(last, {
        heapMb: r.heapUsedMb,
        loopP99Ms: r.loopLagP99Ms,
        loopMaxMs: r.loopLagMaxMs,
        load: loadavg()[0],
      });
      await checkMetrics(ctx, `the soak (${store})`, server, acked);
    } finally {
      await pool.close();
      await server.stop();
    }
    if (/\(exited: (?!0\))/.test(server.output()))
      ctx.problems.add(`soak: the server did not stop cleanly: ${server.output()}`);

    const rows = perMinute.map((s, i) => {
      const sorted = Float64Array.from(s.latencies).sort();
      return {
        minute: i + 1,
        ...s,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        rssMb: median(s.rss),
      };
    });
    console.log(
      "  minute | requests | skipped | p50 ms | p99 ms | RSS MB | heap MB | server loop p99/max ms | load | errors",
    );
    for (const r of rows)
      console.log(
        `  ${String(r.minute).padStart(6)} | ${String(r.requests).padStart(8)} | ${String(r.skipped).padStart(7)} | ${r.p50.toFixed(2).padStart(6)} | ` +
          `${r.p99.toFixed(2).padStart(6)} | ${r.rssMb.toFixed(0).padStart(6)} | ${r.heapMb.toFixed(0).padStart(7)} | ` +
          `${`${r.loopP99Ms.toFixed(1)} / ${r.loopMaxMs.toFixed(0)}`.padStart(22)} | ${r.load.toFixed(1).padStart(4)} | ${r.errors}`,
      );
    console.log("  kind      | requests | p50 ms | p99 ms (whole run)");
    for (const [kind, ms] of byKind) {
      const sorted = Float64Array.from(ms).sort();
      console.log(
        `  ${kind.padEnd(9)} | ${String(ms.length).padStart(8)} | ${percentile(sorted, 50).toFixed(2).padStart(6)} | ${percentile(sorted, 99).toFixed(2).padStart(6)}`,
      );
    }
    const errors = rows.reduce((a, r) => a + r.errors, 0);
    if (errors > 0) ctx.problems.add(`soak (${store}): ${errors} faulty answers, e.g. ${faults.join(" | ")}`);

    const stored = await countEvents(bs);
    const expectedStored = PRELOAD_EVENTS + acked.accepted;
    if (stored !== expectedStored)
      ctx.problems.add(
        `soak (${store}): ${PRELOAD_EVENTS} preloaded + ${acked.accepted} acknowledged, but ${stored} stored`,
      );
    else ctx.log(`  verified: ${stored.toLocaleString("en-US")} events stored = preloaded + acknowledged`);
    const verifyStarted = performance.now();
    const verify = await tally(["verify"], bs.env);
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    if (verify.code !== 0)
      ctx.problems.add(
        `soak (${store}): tally verify exited ${verify.code}: ${(verify.stderr || verify.stdout).slice(0, 1000)}`,
      );
    else ctx.log(`  tally verify (${verifySeconds.toFixed(0)} s): ${verify.stdout.trim()}`);

    const second = rows[1];
    const last = rows[rows.length - 1];
    const perMin = rows.map((r) => r.requests);
    const mix = MIX.map(([k]) => `${k} ${byKind.get(k)!.length}`).join(", ");
    const note = `${minutes} min at ${RATE} req/s scheduled, ${MAX_IN_FLIGHT} in flight at most`;
    ctx.figures.push(
      flatness(
        `soak, ${minutes} min mixed traffic: server RSS, last minute / second minute`,
        store,
        "MB",
        last.rssMb,
        second.rssMb,
        `median of the VmRSS samples (every ${RSS_EVERY_MS / 1000} s) in each minute; by minute: ${rows.map((r) => r.rssMb.toFixed(0)).join(", ")} MB; ` +
          `V8 heap used at each minute's end: ${rows.map((r) => r.heapMb.toFixed(0)).join(", ")} MB${store === "sqlite" ? " (SQLite's page cache, cache_size 64 MiB, grows outside it)" : ""}`,
      ),
      flatness(
        `soak, ${minutes} min mixed traffic: p99, last minute / second minute`,
        store,
        "ms",
        last.p99,
        second.p99,
        `every request of the minute, all kinds; by minute: ${rows.map((r) => r.p99.toFixed(1)).join(", ")} ms; ` +
          `the server's event-loop delay p99 / max: ${rows.map((r) => `${r.loopP99Ms.toFixed(0)}/${r.loopMaxMs.toFixed(0)}`).join(", ")} ms; ` +
          `load average: ${rows.map((r) => r.load.toFixed(1)).join(", ")}`,
      ),
      {
        figure: `soak, ${minutes} min mixed traffic: requests per minute`,
        store,
        unit: "req/min",
        tally: perMin.reduce((a, b) => a + b, 0) / minutes,
        baseline: null,
        baselineName: null,
        ratio: null,
        target: "(reported)",
        pass: true,
        note: `${note}; ${skipped} skipped (too many in flight); by minute: ${perMin.join(", ")}; ${mix}; ${acked.accepted.toLocaleString("en-US")} events accepted, ${acked.duplicate} duplicates`,
      },
      {
        figure: `soak, ${minutes} min mixed traffic: faulty answers (non-2xx other than 409/429, transport errors)`,
        store,
        unit: "",
        tally: errors,
        baseline: null,
        baselineName: null,
        ratio: null,
        target: "0",
        pass: errors === 0,
        note: `${refused} expected refusals (409/429); tally verify ${verify.code === 0 ? "agrees" : "found differences"} (${verifySeconds.toFixed(0)} s)`,
      },
    );
  } finally {
    await bs.cleanup();
  }
}

/** A soak target: the last minute's figure over the second minute's, at most 1.2x. */
function flatness(
  figure: string,
  store: StoreName,
  unit: string,
  last: number,
  second: number,
  note: string,
): Figure {
  return {
    figure,
    store,
    unit,
    tally: last,
    baseline: second,
    baselineName: "minute 2, same run",
    ratio: last / second,
    target: "<= 1.2x",
    pass: last / second <= 1.2,
    note,
  };
}
