import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { errorMessage, TallyError } from "../../../packages/client/src/index.ts";
import { action, EXIT_OK, EXIT_REFUSED, type RemoteContext, remoteContext, UsageError } from "./context.ts";

/**
 * `tally events send`: usage events from JSON lines or CSV, in batches of up to 10,000 to
 * `POST /v1/events`, each batch retried on network errors, 5xx and 429.
 *
 * Running it twice stores nothing twice: an event's id is its idempotency key, taken from the
 * line, or, when the line has none, derived from the line itself: `line-` and the SHA-256 of the
 * line's text (trimmed), with `-N` added for the N-th repetition of the same text in the file. So
 * the same file (or the same lines in another order, or with other lines added) yields the same
 * ids. A line without id and without timestamp is stamped by the server when first stored.
 */

const MAX_EVENTS_PER_BATCH = 10_000;
/** the server takes 16 MiB; a batch is cut before 15 */
const MAX_BATCH_BYTES = 15 * 1024 * 1024;

const CSV_COLUMNS = new Set([
  "id",
  "timestamp",
  "model_id",
  "quantity",
  "account_id",
  "user_id",
  "key_id",
  "api_name",
  "endpoint",
  "kind",
  "unit",
  "unit_price",
  "cost",
  "currency",
  "tokens_prompt",
  "tokens_completion",
  "admitted",
  "metadata",
]);

interface Rejection {
  line: number;
  id: string | null;
  error: string;
  field?: string;
}

interface SendSummary {
  lines: number;
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
  /** set when a batch was refused as a whole (or the server could not be reached): sending stopped */
  failed?: { error: string; status?: number; unsent_lines: number };
}

interface Item {
  line: number;
  id: string;
  raw: string;
}

/** Ids for lines that carry none: stable under reordering and additions, distinct for repeats. */
class DerivedIds {
  private readonly seen = new Map<string, number>();
  next(text: string): string {
    const hash = createHash("sha256").update(text).digest("hex").slice(0, 40);
    const n = this.seen.get(hash) ?? 0;
    this.seen.set(hash, n + 1);
    return n === 0 ? `line-${hash}` : `line-${hash}-${n}`;
  }
}

/** One CSV record (RFC 4180 quoting, one record per line). */
export function parseCsvLine(text: string): string[] {
  const cells: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === "") quoted = true;
    else if (ch === ",") {
      cells.push(cell);
      cell = "";
    } else cell += ch;
  }
  if (quoted) throw new Error("unterminated quoted field");
  cells.push(cell);
  return cells;
}

/** A CSV row as an event; decimals stay strings so the server reads them digit for digit. */
function csvEvent(header: string[], cells: string[]): Record<string, unknown> {
  if (cells.length !== header.length)
    throw new Error(`${cells.length} fields, the header has ${header.length}`);
  const event: Record<string, unknown> = {};
  const tokens: Record<string, number> = {};
  header.forEach((column, i) => {
    const v = cells[i];
    if (v === "") return;
    if (column === "tokens_prompt" || column === "tokens_completion") {
      if (!/^\d+$/.test(v)) throw new Error(`${column} must be a whole number`);
      tokens[column.slice("tokens_".length)] = Number(v);
    } else if (column === "admitted") {
      if (v !== "true" && v !== "false") throw new Error("admitted must be true or false");
      event.admitted = v === "true";
    } else if (column === "metadata") {
      try {
        event.metadata = JSON.parse(v);
      } catch {
        throw new Error("metadata must be JSON");
      }
    } else if (column === "timestamp" && /^\d+$/.test(v)) {
      event.timestamp = Number(v);
    } else {
      event[column] = v;
    }
  });
  if (Object.keys(tokens).length > 0) event.tokens = tokens;
  return event;
}

async function sendEvents(
  ctx: RemoteContext,
  input: NodeJS.ReadableStream,
  options: { format: "jsonl" | "csv"; accountId?: string; batchSize: number; progress: boolean },
): Promise<SendSummary> {
  const summary: SendSummary = { lines: 0, accepted: 0, duplicates: 0, rejected: [] };
  const ids = new DerivedIds();
  const prefix = options.accountId
    ? `{"account_id":${JSON.stringify(options.accountId)},"events":[`
    : `{"events":[`;
  let batch: Item[] = [];
  let bytes = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let header: string[] | null = null;
  let lineNo = 0;
  let sentLines = 0;
  const tty = process.stderr.isTTY === true;

  const progress = () => {
    if (!options.progress) return;
    const text = `sent ${sentLines.toLocaleString("en-US")} lines: ${summary.accepted.toLocaleString("en-US")} accepted, ${summary.duplicates.toLocaleString("en-US")} duplicate, ${summary.rejected.length.toLocaleString("en-US")} rejected`;
    process.stderr.write(tty ? `\r${text}` : `${text}\n`);
  };

  const post = async (items: Item[]): Promise<void> => {
    if (summary.failed) {
      summary.failed.unsent_lines += items.length;
      return;
    }
    let answer: Awaited<ReturnType<typeof ctx.http.request>>;
    try {
      answer = await ctx.http.request("POST", "/v1/events", {
        rawBody: `${prefix}${items.map((i) => i.raw).join(",")}]}`,
        retry: true,
      });
    } catch (err) {
      summary.failed = { error: (err as Error).message, unsent_lines: items.length };
      return;
    }
    const body = answer.body as {
      accepted?: number;
      duplicates?: number;
      rejected?: { index: number; error: string; field?: string }[];
    };
    if ((answer.status !== 200 && answer.status !== 422) || !Array.isArray(body?.rejected)) {
      const error = new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
      summary.failed = { error: error.message, status: answer.status, unsent_lines: items.length };
      return;
    }
    summary.accepted += body.accepted ?? 0;
    summary.duplicates += body.duplicates ?? 0;
    for (const r of body.rejected) {
      const item = items[r.index];
      // the server names the field by its place in the batch (`events.17.quantity`): the line says where
      const field = r.field?.replace(/^events\.\d+\.?/, "") || undefined;
      const error = r.error.replace(/^events\.\d+\.?/, "");
      summary.rejected.push({ line: item.line, id: item.id, error, field });
    }
    sentLines += items.length;
    progress();
  };

  const flushBatch = async () => {
    if (batch.length === 0) return;
    const items = batch;
    batch = [];
    bytes = 0;
    // one batch on the wire while the next is read
    await inFlight;
    inFlight = post(items);
  };

  const reject = (error: string) => summary.rejected.push({ line: lineNo, id: null, error });

  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const rawLine of lines) {
    lineNo++;
    const text = rawLine.trim();
    if (text === "") continue;
    if (options.format === "csv" && header === null) {
      header = parseCsvLine(text).map((c) => c.trim());
      const unknown = header.find((c) => !CSV_COLUMNS.has(c));
      if (unknown !== undefined) {
        throw new UsageError(
          `CSV column "${unknown}" is not an event field (${[...CSV_COLUMNS].join(", ")})`,
        );
      }
      if (!header.includes("model_id") || !header.includes("quantity")) {
        throw new UsageError("the CSV header needs model_id and quantity columns");
      }
      continue;
    }
    summary.lines++;
    let item: Item;
    if (options.format === "csv") {
      let event: Record<string, unknown>;
      try {
        event = csvEvent(header!, parseCsvLine(text));
      } catch (err) {
        reject((err as Error).message);
        continue;
      }
      const id = typeof event.id === "string" ? event.id : ids.next(text);
      item = { line: lineNo, id, raw: JSON.stringify({ ...event, id }) };
    } else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        reject("not valid JSON");
        continue;
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        reject("not a JSON object");
        continue;
      }
      const given = (parsed as { id?: unknown }).id;
      if (given !== undefined) {
        // the line is sent as written, so its decimals reach the server digit for digit
        item = { line: lineNo, id: String(given), raw: text };
      } else {
        const id = ids.next(text);
        const rest = text.slice(1).trimStart();
        item = {
          line: lineNo,
          id,
          raw: `{"id":${JSON.stringify(id)}${rest.startsWith("}") ? "" : ","}${rest}`,
        };
      }
    }
    if (batch.length >= options.batchSize || bytes + item.raw.length + 1 > MAX_BATCH_BYTES)
      await flushBatch();
    batch.push(item);
    bytes += item.raw.length + 1;
  }
  await flushBatch();
  await inFlight;
  if (options.progress && tty) process.stderr.write("\n");
  summary.rejected.sort((a, b) => a.line - b.line);
  return summary;
}

export function registerEventsCommands(program: Command): void {
  const events = program.command("events").description("usage events");
  events
    .command("send")
    .description("send usage events from JSON lines or CSV (a file, or stdin) in batches")
    .argument("[file]", "JSON lines (.jsonl, .ndjson) or CSV (.csv); '-' or none: stdin")
    .option("--format <format>", "jsonl or csv (default: from the file's extension, else jsonl)")
    .option("--account <id>", "root key: the account the events belong to (an event's account_id wins)")
    .option(
      "--batch-size <n>",
      `events per request, at most ${MAX_EVENTS_PER_BATCH}`,
      String(MAX_EVENTS_PER_BATCH),
    )
    .option("--no-progress", "no progress line on stderr")
    .addHelpText(
      "after",
      `
Each line is one event: {"id", "timestamp"?, "model_id", "quantity", ...} as POST /v1/events takes it.
CSV has a header row naming event fields (tokens as tokens_prompt, tokens_completion).
A line without "id" gets one derived from its text (line-<sha256>, -N for the N-th repeat), so
sending the same file twice stores every event once: the second run reports duplicates.

Exit codes: 0 every line stored (or already stored), 1 some lines rejected or not sent, 2 usage error.

Examples:
  tally events send usage.jsonl
  cat usage.csv | tally events send --format csv --json
  tally events send backfill.jsonl --account acc_123 --url http://localhost:8787 --key $TALLY_ADMIN_KEY`,
    )
    .action(
      action(
        async (
          file: string | undefined,
          opts: { format?: string; account?: string; batchSize: string; progress: boolean },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
          const format = opts.format ?? (file && /\.csv$/i.test(file) ? "csv" : "jsonl");
          if (format !== "jsonl" && format !== "csv") throw new UsageError("--format must be jsonl or csv");
          const batchSize = Number(opts.batchSize);
          if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_EVENTS_PER_BATCH) {
            throw new UsageError(`--batch-size must be a whole number from 1 to ${MAX_EVENTS_PER_BATCH}`);
          }
          const fromStdin = file === undefined || file === "-";
          if (!fromStdin && !existsSync(file)) throw new UsageError(`no such file: ${file}`);
          const input = fromStdin ? process.stdin : createReadStream(file);
          const summary = await sendEvents(ctx, input, {
            format,
            accountId: opts.account,
            batchSize,
            progress: opts.progress,
          });
          printSummary(ctx, summary);
          return summary.rejected.length > 0 || summary.failed ? EXIT_REFUSED : EXIT_OK;
        },
      ),
    );
}

function printSummary(ctx: RemoteContext, s: SendSummary): void {
  if (ctx.json) {
    ctx.out(JSON.stringify(s));
    return;
  }
  const n = (v: number) => v.toLocaleString("en-US");
  const width = n(s.lines).length;
  ctx.out(`lines      ${n(s.lines).padStart(width)}`);
  ctx.out(`accepted   ${n(s.accepted).padStart(width)}`);
  ctx.out(`duplicate  ${n(s.duplicates).padStart(width)}`);
  ctx.out(`rejected   ${n(s.rejected.length).padStart(width)}`);
  for (const r of s.rejected.slice(0, 20)) {
    ctx.out(`  line ${r.line}${r.id ? ` (id ${r.id})` : ""}: ${r.error}`);
  }
  if (s.rejected.length > 20) ctx.out(`  ... and ${n(s.rejected.length - 20)} more (--json lists all)`);
  if (s.failed) {
    ctx.err(
      `sending stopped: ${s.failed.error}; ${n(s.failed.unsent_lines)} lines not sent (run again to resume)`,
    );
  }
}
