import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { billingFigure } from "./figures/billing.ts";
import type { BenchContext } from "./figures/context.ts";
import { gatewayFigure } from "./figures/gateway.ts";
import { ingestFigure } from "./figures/ingest.ts";
import { licenseFigure } from "./figures/license.ts";
import { queryFigures } from "./figures/queries.ts";
import { sdkFigure } from "./figures/sdk.ts";
import { soakFigure } from "./figures/soak.ts";
import { Problems, tableMarkdown, writeResults } from "./lib/report.ts";
import { cleanupAll, type StoreName } from "./lib/stores.ts";

const FIGURES = {
  ingest: ingestFigure,
  report: licenseFigure,
  queries: queryFigures,
  sdk: sdkFigure,
  gateway: gatewayFigure,
  billing: billingFigure,
} as const;
type FigureName = keyof typeof FIGURES;

const USAGE = `npm run bench -- [options]
  --quick              small sizes and short runs (under 2 minutes)
  --check-only         CI smoke: everything tiny; fails only on errors, never on speed
  --events 1e6|1e7     data-set size for the query and billing figures (default 1e7; --quick 1e5,
                       billing 1e6 with 1,000 accounts; full billing: 10,000 accounts)
  --only <figure>      ingest | report | queries | sdk | gateway | billing (repeatable)
  --store <s>          sqlite (default) | postgres (TALLY_TEST_DATABASE_URL or DATABASE_URL, fresh schema)
  --ids v7|v4          idempotency keys sent to ingest: time-ordered (default) or random
  --profile            run Tally servers under node --cpu-prof and list the top functions
  --soak               only the soak: one server, mixed traffic at a steady rate, RSS and p99 per
                       minute, /metrics and tally verify at the end (with --only, after those figures)
  --soak-minutes <n>   the soak's length (default 10, at least 2: minute 2 is its baseline)
environment: BENCH_INGEST_CONNECTIONS=n sets the ingest figure's connections (default 4)`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      "check-only": { type: "boolean", default: false },
      events: { type: "string" },
      only: { type: "string", multiple: true },
      store: { type: "string", default: "sqlite" },
      ids: { type: "string", default: "v7" },
      profile: { type: "boolean", default: false },
      soak: { type: "boolean", default: false },
      "soak-minutes": { type: "string", default: "10" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const checkOnly = values["check-only"]!;
  const quick = values.quick! || checkOnly;
  const events = Number(values.events ?? (checkOnly ? 1e4 : quick ? 1e5 : 1e7));
  if (!Number.isInteger(events) || events < 1000) throw new Error(`--events must be an integer >= 1000`);
  const store = values.store as StoreName;
  if (store !== "sqlite" && store !== "postgres") throw new Error("--store is sqlite or postgres");
  if (values.ids !== "v7" && values.ids !== "v4") throw new Error("--ids is v7 or v4");
  const soakMinutes = Number(values["soak-minutes"]);
  if (!Number.isInteger(soakMinutes) || soakMinutes < 2)
    throw new Error("--soak-minutes must be an integer >= 2");
  const only = (values.only ?? (values.soak ? [] : Object.keys(FIGURES))) as FigureName[];
  for (const o of only) if (!(o in FIGURES)) throw new Error(`--only: unknown figure ${o}\n${USAGE}`);

  const started = Date.now();
  const ctx: BenchContext = {
    quick,
    checkOnly,
    events,
    store,
    ids: values.ids,
    profile: values.profile!,
    adminKey: "tly_bench_root_key_0000000000000000000000000",
    figures: [],
    problems: new Problems(),
    profiles: {},
    log: (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`),
  };
  console.log(
    `Tally bench: ${values.soak && !values.only ? `soak ${soakMinutes} min` : `${checkOnly ? "check-only" : quick ? "quick" : "full"}, ${events.toLocaleString("en-US")} events`}, store ${store}; ` +
      `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  for (const name of only) {
    try {
      await FIGURES[name](ctx);
    } catch (err) {
      ctx.problems.add(`${name} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  if (values.soak) {
    try {
      await soakFigure(ctx, soakMinutes);
    } catch (err) {
      ctx.problems.add(`soak crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  await cleanupAll();

  const seconds = (Date.now() - started) / 1000;
  console.log("");
  console.log(tableMarkdown(ctx.figures));
  console.log("");
  console.log(
    "The load generator (autocannon) runs on the same 2 cores as the server: figures are same-box, " +
      "each beside a baseline measured in the same run.",
  );
  for (const f of ctx.figures) if (f.note) console.log(`- ${f.figure}: ${f.note}`);
  for (const [name, top] of Object.entries(ctx.profiles)) {
    console.log(`\nprofile ${name} (self time):`);
    for (const t of top)
      console.log(`  ${String(t.ms).padStart(7)} ms ${(t.share * 100).toFixed(1).padStart(5)} %  ${t.fn}`);
  }
  const payload = {
    at: new Date().toISOString(),
    mode: checkOnly ? "check-only" : quick ? "quick" : "full",
    store,
    events,
    ids: ctx.ids,
    seconds,
    machine: {
      cores: cpus().length,
      cpu: cpus()[0]?.model,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    figures: ctx.figures,
    errors: ctx.problems.list,
    profiles: ctx.profiles,
  };
  // a soak run keeps its own file, so it never replaces the last full run's figures
  const path = writeResults(checkOnly ? "check.json" : values.soak ? "soak.json" : "latest.json", payload);
  console.log(
    `\n${ctx.figures.filter((f) => f.pass).length}/${ctx.figures.length} targets met; ${ctx.problems.list.length} errors; ${seconds.toFixed(0)} s; wrote ${path}`,
  );
  if (ctx.problems.list.length > 0) {
    console.error(`errors:\n${ctx.problems.list.map((p) => `  - ${p}`).join("\n")}`);
    return 1;
  }
  return 0;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => void cleanupAll().finally(() => process.exit(130)));
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err instanceof Error ? err.message : err);
    await cleanupAll();
    process.exit(2);
  },
);
