import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setUp } from "./figures/gateway.ts";
import { processCpuMicros } from "./lib/cpu.ts";
import { median, runLoad } from "./lib/load.ts";
import { ROOT, type Server, startDevUpstreamProcess, startTally } from "./lib/server.ts";

const USAGE = `npm run bench:compare -- --base <checkout> [options]
  Two Tally servers up at once, each from its own checkout (with its own node_modules) on its own
  SQLite file, loaded in alternating short slices; prints the median of the pairs' ratios
  (head / base). On a shared box whose speed moves between minutes, separate runs of
  \`npm run bench\` cannot tell a 10 % change from noise; adjacent slices share the noise.
  --base <dir>         the checkout to compare against (e.g. a git worktree of an older commit)
  --head <dir>         the other checkout (default: this one)
  --figure <f>         report (single license report, default) | gateway (non-streaming chat)
  --pairs <n>          slices per server (default 12)
  --slice <s>          seconds per slice (default 1.5)
  --connections <n>    default 50`;

const ADMIN_KEY = "tly_bench_root_key_0000000000000000000000000";

interface Side {
  name: string;
  dir: string;
  server: Server;
  path: string;
  headers: Record<string, string>;
  body: string;
  cleanup: () => void;
}

interface Slice {
  cpuUs: number;
  reqPerSec: number;
  p99: number;
}

/** Creates the bench world (license report) with the checkout's own code; returns its key and model. */
function reportWorld(dir: string, db: string): { key: string; model: string } {
  const script = `
    import { SqliteStore } from ${JSON.stringify(join(dir, "src/store/sqlite/sqlite-store.ts"))};
    import { createWorld, IMAGE_MODEL, KEYS } from ${JSON.stringify(join(dir, "bench/lib/world.ts"))};
    const store = new SqliteStore(${JSON.stringify(db)});
    await store.migrate();
    await createWorld(store);
    await store.close();
    console.log(JSON.stringify({ key: KEYS[0].secret, model: IMAGE_MODEL.id }));`;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: dir,
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as { key: string; model: string };
}

async function side(name: string, dir: string, figure: string, upstream: Server | null): Promise<Side> {
  const work = mkdtempSync(join(tmpdir(), `tally-compare-${name}-`));
  const db = join(work, "tally.db");
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  if (figure === "report") {
    const { key, model } = reportWorld(dir, db);
    const server = await startTally({ TALLY_DB: db }, ADMIN_KEY, null, dir);
    const path = `/v1/licenses/models/${model}/usage`;
    return {
      name,
      dir,
      server,
      path,
      headers: { "x-key": key },
      body: '{"number_of_generations":1}',
      cleanup,
    };
  }
  const server = await startTally({ TALLY_DB: db }, ADMIN_KEY, null, dir);
  const key = await setUp(server.url, ADMIN_KEY, upstream!.url, "dev-chat:chunk_delay=100,words=150");
  const body = JSON.stringify({ model: "dev-chat", messages: [{ role: "user", content: "Say hello" }] });
  return {
    name,
    dir,
    server,
    path: "/v1/chat/completions",
    headers: { authorization: `Bearer ${key}` },
    body,
    cleanup,
  };
}

async function load(s: Side, connections: number, seconds: number): Promise<Slice> {
  const before = processCpuMicros(s.server.pid);
  const r = await runLoad({
    url: s.server.url,
    path: s.path,
    method: "POST",
    headers: s.headers,
    body: s.body,
    connections,
    duration: seconds,
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${s.name}: ${r.non2xx} non-2xx answers and ${r.errors} errors`);
  return {
    cpuUs: (processCpuMicros(s.server.pid) - before) / r.requests,
    reqPerSec: r.reqPerSec,
    p99: r.p99,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      base: { type: "string" },
      head: { type: "string", default: ROOT },
      figure: { type: "string", default: "report" },
      pairs: { type: "string", default: "12" },
      slice: { type: "string", default: "1.5" },
      connections: { type: "string", default: "50" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || !values.base) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const figure = values.figure!;
  if (figure !== "report" && figure !== "gateway") throw new Error(`--figure: report or gateway\n${USAGE}`);
  const pairs = Number(values.pairs);
  const seconds = Number(values.slice);
  const connections = Number(values.connections);
  const upstream = figure === "gateway" ? await startDevUpstreamProcess() : null;
  const sides: Side[] = [];
  try {
    sides.push(await side("base", resolve(values.base), figure, upstream));
    sides.push(await side("head", resolve(values.head!), figure, upstream));
    const [base, head] = sides;
    for (const s of sides) await load(s, connections, 2); // warm-up: JIT, caches
    const ratios = { cpu: [] as number[], rps: [] as number[], p99: [] as number[] };
    const seen = { base: [] as Slice[], head: [] as Slice[] };
    for (let i = 0; i < pairs; i++) {
      // each server goes first in half of the pairs
      const order = i % 2 === 0 ? [base, head] : [head, base];
      const got = new Map<Side, Slice>();
      for (const s of order) got.set(s, await load(s, connections, seconds));
      const b = got.get(base)!;
      const h = got.get(head)!;
      seen.base.push(b);
      seen.head.push(h);
      ratios.cpu.push(h.cpuUs / b.cpuUs);
      ratios.rps.push(h.reqPerSec / b.reqPerSec);
      ratios.p99.push(h.p99 / b.p99);
    }
    const med = (xs: number[]) => median(xs);
    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
    console.log(`${figure}, ${connections} connections, ${pairs} pairs of ${seconds} s slices`);
    console.log(
      `base ${base.dir}: ${med(seen.base.map((s) => s.cpuUs)).toFixed(0)} µs CPU/request, ` +
        `${Math.round(med(seen.base.map((s) => s.reqPerSec)))} req/s, p99 ${med(seen.base.map((s) => s.p99)).toFixed(2)} ms`,
    );
    console.log(
      `head ${head.dir}: ${med(seen.head.map((s) => s.cpuUs)).toFixed(0)} µs CPU/request, ` +
        `${Math.round(med(seen.head.map((s) => s.reqPerSec)))} req/s, p99 ${med(seen.head.map((s) => s.p99)).toFixed(2)} ms`,
    );
    console.log(
      `head / base, median of the pairs: CPU per request ${med(ratios.cpu).toFixed(3)} [${list(ratios.cpu)}]`,
    );
    console.log(`  req/s ${med(ratios.rps).toFixed(3)} [${list(ratios.rps)}]`);
    console.log(`  p99 ${med(ratios.p99).toFixed(3)} [${list(ratios.p99)}]`);
    return 0;
  } finally {
    for (const s of sides) {
      await s.server.stop();
      s.cleanup();
    }
    await upstream?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
