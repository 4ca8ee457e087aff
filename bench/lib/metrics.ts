import { parsePromText, type Sample, sampleValue } from "../../test/support/prom-text.ts";
import type { BenchContext } from "../figures/context.ts";
import type { Server } from "./server.ts";

/** What a bench run reads from a live server's `GET /metrics` (names as in src/ops/metrics.ts). */
interface MetricsSummary {
  accepted: number;
  duplicate: number;
  rejected: number;
  /** `tally_http_request_duration_seconds_count` summed over every method, route and status */
  httpRequests: number;
  /** `tally_group_commit_events_count`: one observation per group-commit transaction */
  commitBatches: number;
  /** `tally_group_commit_events_sum`: events those transactions held */
  commitEvents: number;
  byRoute: { route: string; count: number }[];
  /** `tally_nodejs_heap_size_used_bytes` in MB: V8's live heap, to tell from native memory */
  heapUsedMb: number;
  /** `tally_nodejs_eventloop_lag_p99_seconds` in ms: the server's own stalls since the last scrape */
  loopLagP99Ms: number;
  /** `tally_nodejs_eventloop_lag_max_seconds` in ms: the longest stall since the last scrape */
  loopLagMaxMs: number;
}

const sum = (samples: Sample[], name: string) =>
  samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);

export async function scrapeMetrics(server: Server, rootKey: string): Promise<MetricsSummary> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${rootKey}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${text.slice(0, 300)}`);
  const samples = parsePromText(text);
  const routes = new Map<string, number>();
  for (const s of samples.filter((s) => s.name === "tally_http_request_duration_seconds_count")) {
    const route = `${s.labels.method} ${s.labels.route}`;
    routes.set(route, (routes.get(route) ?? 0) + s.value);
  }
  return {
    accepted: sampleValue(samples, "tally_events_total", { outcome: "accepted" }),
    duplicate: sampleValue(samples, "tally_events_total", { outcome: "duplicate" }),
    rejected: sampleValue(samples, "tally_events_total", { outcome: "rejected" }),
    httpRequests: sum(samples, "tally_http_request_duration_seconds_count"),
    commitBatches: sampleValue(samples, "tally_group_commit_events_count"),
    commitEvents: sampleValue(samples, "tally_group_commit_events_sum"),
    byRoute: [...routes].map(([route, count]) => ({ route, count })).sort((a, b) => b.count - a.count),
    heapUsedMb: sampleValue(samples, "tally_nodejs_heap_size_used_bytes") / 2 ** 20,
    loopLagP99Ms: sampleValue(samples, "tally_nodejs_eventloop_lag_p99_seconds") * 1000,
    loopLagMaxMs: sampleValue(samples, "tally_nodejs_eventloop_lag_max_seconds") * 1000,
  };
}

/** What the bench itself saw the server acknowledge, for the counters to be held against. */
interface Acknowledged {
  /** events answered as stored (accepted) */
  accepted: number;
  /** events answered as already stored (duplicate retries) */
  duplicate: number;
  /** requests answered (any status) */
  requests: number;
}

/**
 * Scrapes `GET /metrics` with the root key, prints a short block, and adds a problem when a
 * counter did not move with the traffic the bench saw acknowledged (a counter that lags what the
 * server answered is a broken counter; one ahead may have counted the bench's own set-up).
 */
export async function checkMetrics(
  ctx: BenchContext,
  label: string,
  server: Server,
  acked: Acknowledged,
): Promise<void> {
  const m = await scrapeMetrics(server, ctx.adminKey);
  const n = (v: number) => Math.round(v).toLocaleString("en-US");
  console.log(`  /metrics after ${label}:`);
  console.log(
    `    tally_events_total: accepted ${n(m.accepted)}, duplicate ${n(m.duplicate)}, rejected ${n(m.rejected)}` +
      ` (the bench saw ${n(acked.accepted)} accepted, ${n(acked.duplicate)} duplicate)`,
  );
  console.log(
    `    http requests (tally_http_request_duration_seconds_count): ${n(m.httpRequests)}` +
      ` (the bench saw ${n(acked.requests)} answered); ` +
      m.byRoute
        .slice(0, 6)
        .map((r) => `${r.route} ${n(r.count)}`)
        .join(", "),
  );
  console.log(
    `    group-commit batches (tally_group_commit_events_count): ${n(m.commitBatches)}` +
      `, ${n(m.commitEvents)} events, ${m.commitBatches > 0 ? (m.commitEvents / m.commitBatches).toFixed(1) : "-"} a batch`,
  );
  const stale: string[] = [];
  if (m.accepted < acked.accepted)
    stale.push(`events accepted ${m.accepted} < ${acked.accepted} acknowledged`);
  if (m.duplicate < acked.duplicate)
    stale.push(`events duplicate ${m.duplicate} < ${acked.duplicate} answered as duplicates`);
  if (m.httpRequests < acked.requests)
    stale.push(`http requests ${m.httpRequests} < ${acked.requests} answered`);
  if (acked.accepted + acked.duplicate > 0 && m.commitBatches === 0)
    stale.push("no group-commit batch counted");
  if (m.commitEvents < acked.accepted + acked.duplicate)
    stale.push(`group-commit events ${m.commitEvents} < ${acked.accepted + acked.duplicate} acknowledged`);
  if (stale.length > 0) ctx.problems.add(`${label}: /metrics counters did not move: ${stale.join("; ")}`);
}
