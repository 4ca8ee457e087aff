import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { TRANSFER_TABLES } from "../store/shared/transfer.ts";
import type { Store } from "../store/store.ts";
import type { TransferRow } from "../store/transfer-store.ts";

/**
 * `tally export` and `tally import`: an installation as JSON lines, moved exactly between stores
 * of either dialect. The first line names the format; each other line is one row,
 * `{"table": ..., "row": {...}}`, with int64 columns (money in fixed-point units, instants in ms)
 * as decimal text so that no value passes through a float. Rollups are recounted on import.
 * Run both with no server writing to the stores (an export is read in pages, not in one snapshot).
 */

export const FORMAT = "tally-export";
const VERSION = 1;
const PAGE = 5000;
const BATCH = 1000;

export interface TransferCounts {
  [table: string]: number;
}

/** Writes every moved table, parents first; the rows written per table. */
export async function exportStore(store: Store, out: Writable, now: number): Promise<TransferCounts> {
  const counts: TransferCounts = {};
  await write(
    out,
    `${JSON.stringify({ format: FORMAT, version: VERSION, from: store.dialect, exported_at: new Date(now).toISOString() })}\n`,
  );
  for (const { table } of TRANSFER_TABLES) {
    counts[table] = 0;
    for (let after: string | null = null, first = true; first || after !== null; first = false) {
      const page = await store.exportPage(table, after, PAGE);
      if (page.rows.length > 0) {
        await write(out, page.rows.map((row) => `${JSON.stringify({ table, row })}\n`).join(""));
        counts[table] += page.rows.length;
      }
      after = page.rows.length < PAGE ? null : page.last;
    }
  }
  return counts;
}

export class ImportError extends Error {}

/** Reads an export into an empty store, then recounts the rollups from the events; rows per table. */
export async function importStore(store: Store, input: Readable): Promise<TransferCounts> {
  if (!(await store.isEmpty())) {
    throw new ImportError("the store is not empty: import goes into a new store only (nothing was written)");
  }
  const known = new Set(TRANSFER_TABLES.map((t) => t.table as string));
  const counts: TransferCounts = {};
  let header = false;
  let table: string | null = null;
  let batch: TransferRow[] = [];
  const flush = async () => {
    if (table !== null && batch.length > 0) await store.importRows(table, batch);
    batch = [];
  };
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    n++;
    if (line.trim() === "") continue;
    let parsed: { format?: string; version?: number; table?: string; row?: TransferRow };
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new ImportError(`line ${n}: not JSON`);
    }
    if (!header) {
      if (parsed.format !== FORMAT || parsed.version !== VERSION) {
        throw new ImportError(
          `line ${n}: not a ${FORMAT} v${VERSION} file (its first line names the format)`,
        );
      }
      header = true;
      continue;
    }
    if (
      typeof parsed.table !== "string" ||
      !known.has(parsed.table) ||
      typeof parsed.row !== "object" ||
      parsed.row === null
    ) {
      throw new ImportError(`line ${n}: expected {"table": <a moved table>, "row": {...}}`);
    }
    if (parsed.table !== table || batch.length >= BATCH) {
      await flush();
      table = parsed.table;
    }
    batch.push(parsed.row);
    counts[table] = (counts[table] ?? 0) + 1;
  }
  if (!header) throw new ImportError("the file is empty");
  await flush();
  await store.recountRollups();
  return counts;
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.write(text)) resolve();
    else out.once("drain", resolve).once("error", reject);
  });
}
