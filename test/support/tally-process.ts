import { spawn } from "node:child_process";
import { REPO_ROOT } from "./server-process.ts";

/** What one run of the `tally` command did. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/tally.mjs` as a person or a script would, with only the TALLY_ variables given. */
export function tally(args: string[], env: Record<string, string>, stdin?: string): Promise<Run> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("TALLY_") && k !== "DATABASE_URL") clean[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/tally.mjs", ...args], {
      cwd: REPO_ROOT,
      env: { ...clean, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });
}
