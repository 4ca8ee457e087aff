import { Agent, type Dispatcher } from "undici";
import { type LoadResult, median, runLoad } from "../lib/load.ts";
import { topFunctions } from "../lib/profile.ts";
import { type Server, startBareProxy, startDevUpstreamProcess, startTally } from "../lib/server.ts";
import { createBenchStore } from "../lib/stores.ts";
import { type BenchContext, profileDir } from "./context.ts";
import { countEvents } from "./license.ts";

const PATH = "/v1/chat/completions";
const MESSAGES = [{ role: "user", content: "Say hello to the quiet hills" }];
/** Tally's model has the dev upstream's name, so all three targets get byte-identical bodies. */
const CHAT_BODY = JSON.stringify({ model: "dev-chat", messages: MESSAGES });
const STREAM_BODY = JSON.stringify({ model: "dev-chat", stream: true, messages: MESSAGES });

/** One way to reach the dev upstream: directly, through the bare proxy, or through Tally. */
interface Target {
  name: string;
  server: Server;
  headers: Record<string, string>;
}

/**
 * The metering gateway against the client calling the dev upstream directly and against a bare
 * proxy (Fastify + undici, no auth, no metering), all in their own processes, in the same run:
 * added p50 at 1 connection, throughput at 50 connections, a stream's time to first byte, and
 * Tally's RSS with many streams open at once.
 */
export async function gatewayFigure(ctx: BenchContext): Promise<void> {
  const store = ctx.store;
  const runs = ctx.quick ? 1 : 3;
  const seconds = ctx.checkOnly ? 1 : ctx.quick ? 3 : 10;
  const ttfbSamples = ctx.checkOnly ? 20 : ctx.quick ? 300 : 1000;
  const streams = ctx.checkOnly ? 20 : 1000;
  // long enough that every stream is open at once, however slowly 1,000 connections are set up
  const slow = ctx.checkOnly ? "dev-chat:chunk_delay=50,words=30" : "dev-chat:chunk_delay=100,words=150";

  const upstream = await startDevUpstreamProcess();
  const bs = await createBenchStore(store, "gateway");
  const prof = profileDir(ctx, `gateway-${store}`);
  const servers: Server[] = [upstream];
  try {
    await bs.store.close();
    const bare = await startBareProxy(upstream.url);
    servers.push(bare);
    const tally = await startTally(bs.env, ctx.adminKey, prof);
    servers.push(tally);
    const key = await setUp(tally.url, ctx.adminKey, upstream.url, slow);
    ctx.log(`gateway (${store}): dev upstream, bare proxy and Tally up; ${runs} x ${seconds} s per load`);

    const direct: Target = { name: "direct", server: upstream, headers: {} };
    const proxy: Target = { name: "bare proxy", server: bare, headers: {} };
    const gateway: Target = { name: "Tally", server: tally, headers: { authorization: `Bearer ${key}` } };
    let answered = 0;
    let inFlight = 0;
    const load = async (t: Target, connections: number, duration: number): Promise<LoadResult> => {
      const r = await runLoad({
        url: t.server.url,
        path: PATH,
        method: "POST",
        headers: t.headers,
        body: CHAT_BODY,
        connections,
        duration,
      });
      if (r.non2xx > 0 || r.errors > 0)
        ctx.problems.add(
          `gateway ${t.name}, ${connections} connections: ${r.non2xx} non-2xx, ${r.errors} errors`,
        );
      if (t === gateway) {
        answered += r.requests - r.non2xx;
        inFlight += connections;
      }
      return r;
    };

    // warm-up: JIT, keep-alive pools, the store's page cache
    for (const t of [direct, proxy, gateway]) await load(t, 50, ctx.checkOnly ? 1 : 2);
    const one = new Map<Target, LoadResult[]>([direct, proxy, gateway].map((t) => [t, []]));
    const fifty = new Map<Target, LoadResult[]>([direct, proxy, gateway].map((t) => [t, []]));
    for (let i = 0; i < runs; i++) {
      for (const t of [direct, proxy, gateway]) one.get(t)!.push(await load(t, 1, seconds));
      for (const t of [direct, proxy, gateway]) fifty.get(t)!.push(await load(t, 50, seconds));
    }
    const p50 = (t: Target) => median(one.get(t)!.map((r) => r.p50));
    const rps = (t: Target) => median(fifty.get(t)!.map((r) => r.reqPerSec));
    const note = `median of ${runs} x ${seconds} s; non-streaming chat, dev upstream answering at once`;
    ctx.figures.push(
      {
        figure: "gateway chat, 1 connection: p50 (added over direct)",
        store,
        unit: "ms",
        tally: p50(gateway),
        baseline: p50(direct),
        baselineName: "client -> dev upstream directly",
        ratio: p50(gateway) / p50(direct),
        target: "<= direct + 0.5 ms",
        pass: p50(gateway) - p50(direct) <= 0.5,
        note: `${note}; Tally adds ${(p50(gateway) - p50(direct)).toFixed(3)} ms, the bare proxy ${(p50(proxy) - p50(direct)).toFixed(3)} ms (p50 ${p50(proxy).toFixed(3)} ms)`,
      },
      {
        figure: "gateway chat, 50 connections: throughput",
        store,
        unit: "req/s",
        tally: rps(gateway),
        baseline: rps(proxy),
        baselineName: "bare proxy (Fastify + undici)",
        ratio: rps(gateway) / rps(proxy),
        target: ">= 0.5x",
        pass: rps(gateway) / rps(proxy) >= 0.5,
        note: `${note}; direct to the dev upstream ${Math.round(rps(direct)).toLocaleString("en-US")} req/s`,
      },
    );

    ctx.log(`gateway (${store}): ${ttfbSamples} streams one at a time to each target, time to first byte`);
    const ttfb = new Map<Target, number[]>([direct, proxy, gateway].map((t) => [t, []]));
    const agent = new Agent({ keepAliveTimeout: 30_000 });
    try {
      for (let i = 0; i < ttfbSamples; i++) {
        // interleaved, so a burst of load from the other engineers' work falls on all three alike
        for (const t of [direct, proxy, gateway]) {
          const s = await stream(agent, t, STREAM_BODY);
          if (s.status !== 200) ctx.problems.add(`gateway ${t.name} stream answered ${s.status}`);
          else if (t === gateway) answered += 1;
          if (i >= ttfbSamples / 10) ttfb.get(t)!.push(s.firstByteMs); // the first tenth warms up
        }
      }
    } finally {
      await agent.close();
    }
    const first = (t: Target) => median(ttfb.get(t)!);
    ctx.figures.push({
      figure: "gateway streaming chat: time to first byte (added over direct)",
      store,
      unit: "ms",
      tally: first(gateway),
      baseline: first(direct),
      baselineName: "client -> dev upstream directly",
      ratio: first(gateway) / first(direct),
      target: "<= direct + 1 ms",
      pass: first(gateway) - first(direct) <= 1,
      note: `median of ${ttfb.get(gateway)!.length} sequential streams each; Tally adds ${(first(gateway) - first(direct)).toFixed(3)} ms, the bare proxy ${(first(proxy) - first(direct)).toFixed(3)} ms`,
    });

    ctx.log(
      `gateway (${store}): ${streams} concurrent open streams (${slow}) through the bare proxy, then Tally`,
    );
    const idleMb = tally.memory().rssMb;
    const bareMb = await openStreams(ctx, proxy, streams, slow, bare);
    const tallyMb = await openStreams(ctx, gateway, streams, "dev-chat-slow", tally);
    answered += streams;
    ctx.figures.push({
      figure: `gateway: RSS with ${streams.toLocaleString("en-US")} concurrent open streams`,
      store,
      unit: "MB",
      tally: tallyMb,
      baseline: bareMb,
      baselineName: "bare proxy, same streams",
      ratio: tallyMb / bareMb,
      target: "<= 300 MB",
      pass: tallyMb <= 300,
      note: `peak RSS of the server process while every stream had its first chunk and none had ended; Tally ${idleMb.toFixed(0)} MB after the load runs, before the streams`,
    });

    await tally.stop();
    if (prof) ctx.profiles[`gateway-${store}`] = topFunctions(prof);
    const stored = await countEvents(bs);
    if (stored < answered || stored > answered + inFlight)
      ctx.problems.add(
        `gateway (${store}): ${answered} answered 200 (+ up to ${inFlight} in flight) but ${stored} stored`,
      );
    else
      ctx.log(
        `  verified: ${stored.toLocaleString("en-US")} usage events for ${answered} answers (+ <= ${inFlight} in flight)`,
      );
  } finally {
    for (const s of servers)
      if (/\(exited: (?!0\))/.test(s.output())) ctx.problems.add(`a server exited early: ${s.output()}`);
    for (const s of servers.reverse()) await s.stop();
    await bs.cleanup();
  }
}

/** An upstream, two routed chat models, an account with a licensed key; returns the key. */
export async function setUp(
  url: string,
  rootKey: string,
  upstreamUrl: string,
  slow: string,
): Promise<string> {
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${rootKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200 && res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await post("/v1/upstreams", { id: "dev", base_url: `${upstreamUrl}/v1`, timeout_ms: 60_000 });
  const account = await post("/v1/accounts", { name: "Gateway bench" });
  for (const [id, upstreamModel] of [
    ["dev-chat", "dev-chat"],
    ["dev-chat-slow", slow],
  ]) {
    await post("/v1/models", {
      id,
      unit: "token",
      kind: "chat",
      unit_price: "0.000002",
      effective_from: "2020-01-01T00:00:00Z",
      upstream_id: "dev",
      upstream_model: upstreamModel,
    });
    await post(`/v1/accounts/${account.id}/licenses`, { model_id: id, starts_at: "2020-01-01T00:00:00Z" });
  }
  const user = await post(`/v1/accounts/${account.id}/users`, { username: "bench", role: "member" });
  return (await post(`/v1/users/${user.id}/keys`, {})).key as string;
}

/** One stream: milliseconds from sending the request to its first body chunk, read to the end. */
async function stream(
  agent: Dispatcher,
  t: Target,
  body: string,
): Promise<{ status: number; firstByteMs: number }> {
  const t0 = performance.now();
  const res = await agent.request({
    origin: t.server.url,
    path: PATH,
    method: "POST",
    headers: { "content-type": "application/json", ...t.headers },
    body,
  });
  let firstByteMs = Number.NaN;
  for await (const _ of res.body) {
    if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - t0;
  }
  return { status: res.statusCode, firstByteMs };
}

/**
 * Opens `count` slow streams at once through `t` and returns the server's peak RSS (MB) sampled
 * while all of them were open (each had its first chunk, none had ended); reads them to the end.
 */
async function openStreams(
  ctx: BenchContext,
  t: Target,
  count: number,
  model: string,
  server: Server,
): Promise<number> {
  const agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const body = JSON.stringify({ model, stream: true, messages: MESSAGES });
  let open = 0;
  let ended = 0;
  let allOpen!: () => void;
  const allOpened = new Promise<void>((r) => {
    allOpen = r;
  });
  const one = async (): Promise<void> => {
    const res = await agent.request({
      origin: t.server.url,
      path: PATH,
      method: "POST",
      headers: { "content-type": "application/json", ...t.headers },
      body,
    });
    let first = true;
    for await (const _ of res.body) {
      if (first) {
        first = false;
        if (++open === count) allOpen();
      }
    }
    ended += 1;
    if (res.statusCode !== 200) throw new Error(`${t.name} stream answered ${res.statusCode}`);
  };
  try {
    const all: Promise<void>[] = [];
    // in waves, so the listen backlog never overflows into SYN retries
    for (let i = 0; i < count; i++) {
      all.push(one());
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    const done = Promise.allSettled(all);
    await Promise.race([allOpened, done]);
    if (open < count || ended > 0)
      ctx.problems.add(`gateway ${t.name}: only ${open - ended} of ${count} streams open at once`);
    let peak = server.memory().rssMb;
    for (let i = 0; i < 10 && ended === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (ended === 0) peak = Math.max(peak, server.memory().rssMb);
    }
    const failed = (await done).filter((s) => s.status === "rejected");
    if (failed.length > 0)
      ctx.problems.add(
        `gateway ${t.name}: ${failed.length} of ${count} streams failed: ${String((failed[0] as PromiseRejectedResult).reason)}`,
      );
    return peak;
  } finally {
    await agent.close();
  }
}
