import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Figure, Problems } from "../lib/report.ts";
import { ROOT } from "../lib/server.ts";
import type { StoreName } from "../lib/stores.ts";

/** What every figure module gets from bench/run.ts. */
export interface BenchContext {
  quick: boolean;
  checkOnly: boolean;
  events: number;
  store: StoreName;
  ids: "v7" | "v4";
  profile: boolean;
  adminKey: string;
  figures: Figure[];
  problems: Problems;
  profiles: Record<string, { fn: string; ms: number; share: number }[]>;
  log(message: string): void;
}

/** A fresh directory for one server's --cpu-prof output, or null when not profiling. */
export function profileDir(ctx: BenchContext, name: string): string | null {
  if (!ctx.profile) return null;
  const dir = join(ROOT, "bench", "results", "profiles", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
