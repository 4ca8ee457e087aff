import type { Command } from "commander";
import { DateTime, IANAZone } from "luxon";
import { errorMessage, TallyError } from "../../../packages/client/src/index.ts";
import { formatDec, parseDec } from "../../domain/decimal.ts";
import { action, type RemoteContext, remoteContext, table, UsageError } from "./context.ts";

/** `tally usage`: workspace usage (seed 004) as a table by model and day in a chosen timezone. */

const TIMEFRAMES = ["minute", "hour", "day", "week", "month"] as const;

interface Line {
  endpoint_id: string;
  unit: string;
  quantity: string;
  unit_price: string;
  cost: string;
  currency: string;
}
interface Page {
  next_cursor: string | null;
  has_more: boolean;
  time_series: { bucket: string; results: Line[] }[];
}

/**
 * The answer with its decimals kept as text: JSON.parse would turn a cost with more than 15
 * significant digits into the nearest float.
 */
function parseExact(text: string): Page {
  return JSON.parse(
    text.replace(/"(quantity|unit_price|cost)":(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g, '"$1":"$2"'),
  ) as Page;
}

interface UsageRow {
  bucket: string;
  model: string;
  unit: string;
  quantity: string;
  unit_price: string;
  cost: string;
  currency: string;
}

async function usageRows(
  ctx: RemoteContext,
  query: { start: string; end?: string; timezone: string; timeframe: string; models?: string[] },
): Promise<UsageRow[]> {
  const rows: UsageRow[] = [];
  let cursor: string | undefined;
  do {
    const answer = await ctx.http.request("GET", "/v1/models/usage", {
      query: {
        start: query.start,
        end: query.end,
        timezone: query.timezone,
        timeframe: query.timeframe,
        endpoint_id: query.models,
        expand: "time_series",
        limit: 1000,
        cursor,
      },
      retry: true,
    });
    if (answer.status !== 200) {
      throw new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
    }
    const page = parseExact(answer.text);
    for (const bucket of page.time_series) {
      for (const r of bucket.results) {
        rows.push({
          bucket: bucketLabel(bucket.bucket, query.timeframe),
          model: r.endpoint_id,
          unit: r.unit,
          quantity: r.quantity,
          unit_price: r.unit_price,
          cost: r.cost,
          currency: r.currency,
        });
      }
    }
    cursor = page.has_more && page.next_cursor ? page.next_cursor : undefined;
  } while (cursor);
  return rows;
}

/** A bucket's local start as people read it: `2026-11-30` for days, `2026-11-30 14:00` for hours. */
function bucketLabel(bucket: string, timeframe: string): string {
  if (timeframe === "month") return bucket.slice(0, 7);
  if (timeframe === "day" || timeframe === "week") return bucket.slice(0, 10);
  return `${bucket.slice(0, 10)} ${bucket.slice(11, 16)}`;
}

/** Exact totals of cost per currency. */
function totals(rows: UsageRow[]): { currency: string; cost: string }[] {
  const by = new Map<string, bigint>();
  for (const r of rows) by.set(r.currency, (by.get(r.currency) ?? 0n) + parseDec(r.cost));
  return [...by].map(([currency, cost]) => ({ currency, cost: formatDec(cost) }));
}

export function registerUsageCommand(program: Command): void {
  program
    .command("usage")
    .description("usage by model and day (or another timeframe) in a timezone, from workspace usage")
    .option("--from <date>", "first day (or ISO 8601 instant), read in --timezone (default: 6 days ago)")
    .option("--to <date>", "end, exclusive (default: now)")
    .option("--timezone <zone>", "IANA timezone, e.g. Europe/Berlin", "UTC")
    .option("--timeframe <unit>", TIMEFRAMES.join(", "), "day")
    .option("--model <id...>", "only these models")
    .addHelpText(
      "after",
      `
Quantities and costs are exact. --json prints {timezone, timeframe, rows, totals} with decimals as strings.

Examples:
  tally usage --timezone America/New_York
  tally usage --from 2026-11-01 --to 2026-12-01 --model flux-1-dev --json`,
    )
    .action(
      action(
        async (
          opts: { from?: string; to?: string; timezone: string; timeframe: string; model?: string[] },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
          if (!IANAZone.isValidZone(opts.timezone)) {
            throw new UsageError(`--timezone ${opts.timezone} is not an IANA timezone`);
          }
          if (!(TIMEFRAMES as readonly string[]).includes(opts.timeframe)) {
            throw new UsageError(`--timeframe must be one of ${TIMEFRAMES.join(", ")}`);
          }
          const start =
            opts.from ?? DateTime.now().setZone(opts.timezone).minus({ days: 6 }).toISODate() ?? undefined;
          const rows = await usageRows(ctx, {
            start: start!,
            end: opts.to,
            timezone: opts.timezone,
            timeframe: opts.timeframe,
            models: opts.model,
          });
          const sums = totals(rows);
          if (ctx.json) {
            ctx.out(
              JSON.stringify({ timezone: opts.timezone, timeframe: opts.timeframe, rows, totals: sums }),
            );
            return 0;
          }
          if (rows.length === 0) {
            ctx.out(`no usage from ${start}${opts.to ? ` to ${opts.to}` : ""} (${opts.timezone})`);
            return 0;
          }
          ctx.out(table(rows as unknown as Record<string, unknown>[], Object.keys(rows[0])));
          for (const t of sums) ctx.out(`\ntotal ${t.cost} ${t.currency}`);
          return 0;
        },
      ),
    );
}
