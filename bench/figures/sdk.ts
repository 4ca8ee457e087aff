import { TallyClient, type UsageEventInput } from "../../packages/client/src/index.ts";
import { runLoad } from "../lib/load.ts";
import { startTally } from "../lib/server.ts";
import { createBenchStore } from "../lib/stores.ts";
import { createWorld, eventJson, generateEvents, KEYS } from "../lib/world.ts";
import type { BenchContext } from "./context.ts";

const PER_REQUEST = 1_000;
const CONNECTIONS = Number(process.env.BENCH_INGEST_CONNECTIONS ?? 4);
const SDK_START = Date.UTC(2026, 10, 21);

/**
 * SDK throughput: `record()` of every event into a local server, then `flush()`, against the
 * server's own batch ingest of the same events (pre-serialized bodies of 1,000 events, the same
 * number of connections), each on a fresh store in the same run.
 */
export async function sdkFigure(ctx: BenchContext): Promise<void> {
  const total = ctx.checkOnly ? 10_000 : ctx.quick ? 100_000 : 1_000_000;
  const events = [
    ...generateEvents(total, { seed: 21, ids: ctx.ids, start: SDK_START, end: SDK_START + total }),
  ].map(eventJson);
  ctx.log(`sdk (${ctx.store}): ${total.toLocaleString("en-US")} events, ${CONNECTIONS} connections`);

  const baseline = await withServer(ctx, "sdk-baseline", async (url) => {
    const bodies: string[] = [];
    for (let i = 0; i < total; i += PER_REQUEST) {
      bodies.push(JSON.stringify({ events: events.slice(i, i + PER_REQUEST) }));
    }
    let acknowledged = 0;
    let n = 0;
    const run = await runLoad({
      url,
      path: "/v1/events",
      method: "POST",
      headers: { authorization: `Bearer ${KEYS[0].secret}` },
      body: () => bodies[n++],
      connections: CONNECTIONS,
      amount: bodies.length,
      onResponse: (status, body) => {
        if (status === 200) acknowledged += Number(/"accepted":(\d+)/.exec(body)?.[1] ?? 0);
      },
    });
    if (acknowledged !== total) ctx.problems.add(`sdk baseline: sent ${total}, acknowledged ${acknowledged}`);
    return (run.requests * PER_REQUEST) / run.seconds;
  });

  const rate = await withServer(ctx, "sdk", async (url) => {
    const client = new TallyClient({
      url,
      key: KEYS[0].secret,
      batchSize: PER_REQUEST,
      concurrency: CONNECTIONS,
      maxQueueSize: total,
    });
    const t0 = performance.now();
    for (const e of events) client.record(e as unknown as UsageEventInput);
    const outcomes = await client.flush();
    const seconds = (performance.now() - t0) / 1000;
    const accepted = outcomes.filter((o) => o.status === "accepted").length;
    if (accepted !== total) ctx.problems.add(`sdk: recorded ${total}, accepted ${accepted}`);
    await client.shutdown({ timeoutMs: 1000 });
    return total / seconds;
  });

  const ratio = rate / baseline;
  ctx.figures.push({
    figure: `SDK record() + flush(), batches of ${PER_REQUEST}, ${CONNECTIONS} in flight`,
    store: ctx.store,
    unit: "events/s",
    tally: rate,
    baseline,
    baselineName: `server batch ingest, POST /v1/events, ${PER_REQUEST}/request, ${CONNECTIONS} connections`,
    ratio,
    target: ">= 0.8x",
    pass: ratio >= 0.8,
    note: `${total.toLocaleString("en-US")} events; the SDK runs in the bench process, the server in its own`,
  });
}

async function withServer<T>(ctx: BenchContext, label: string, f: (url: string) => Promise<T>): Promise<T> {
  const bs = await createBenchStore(ctx.store, label);
  try {
    await createWorld(bs.store);
    await bs.store.close();
    const server = await startTally(bs.env, ctx.adminKey, null);
    try {
      return await f(server.url);
    } finally {
      await server.stop();
    }
  } finally {
    await bs.cleanup();
  }
}
