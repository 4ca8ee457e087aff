import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./server.ts";

/** One published figure: Tally's value beside a baseline measured in the same run. */
export interface Figure {
  figure: string;
  store: "sqlite" | "postgres" | "-";
  unit: string;
  tally: number;
  baseline: number | null;
  baselineName: string | null;
  /** tally / baseline (or baseline / tally for "x faster" figures) */
  ratio: number | null;
  target: string;
  pass: boolean;
  note?: string;
}

/** Errors (non-2xx, wrong totals, crashes): these, never speed, fail a --check-only run. */
export class Problems {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
    console.error(`  ERROR: ${message}`);
  }
}

const fmt = (v: number | null): string => {
  if (v === null || Number.isNaN(v)) return "-";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(3);
};

export function tableMarkdown(figures: Figure[]): string {
  const lines = [
    "| figure | store | Tally | baseline | ratio | target | pass |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const f of figures) {
    const base = f.baseline === null ? "-" : `${fmt(f.baseline)} (${f.baselineName})`;
    lines.push(
      `| ${f.figure} | ${f.store} | ${fmt(f.tally)} ${f.unit} | ${base} | ${f.ratio === null ? "-" : `${fmt(f.ratio)}x`} | ${f.target} | ${f.pass ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

export function writeResults(name: string, payload: unknown): string {
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(payload, null, 2)}\n`);
  return path;
}
