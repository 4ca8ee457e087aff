import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { prepareStart, startArgs } from "../../test/support/server-process.ts";

export const ROOT = join(import.meta.dirname, "..", "..");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Server {
  url: string;
  pid: number;
  /** Peak and current resident set size in MB, from /proc/<pid>/status. */
  memory(): { hwmMb: number; rssMb: number };
  /** the last 4,000 characters the process wrote, then "(exited: <code or signal>)" once it has */
  output(): string;
  stop(): Promise<void>;
}

function readStatus(pid: number): { hwmMb: number; rssMb: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
  return { hwmMb: kb("VmHWM") / 1024, rssMb: kb("VmRSS") / 1024 };
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${stderr()}`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${url} did not become ready: ${stderr()}`);
}

/**
 * Spawns `node [--cpu-prof] <nodeArgs>` in `cwd` (this checkout unless another is named, as
 * `bench:compare` does) and waits until `readyPath` answers.
 */
async function spawnNode(
  nodeArgs: string[],
  env: Record<string, string>,
  readyPath: string,
  profileDir: string | null,
  cwd = ROOT,
): Promise<Server> {
  const port = await freePort();
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // the server reads its store from TALLY_DB or DATABASE_URL: only what we pass counts
    if (v !== undefined && k !== "DATABASE_URL" && k !== "TALLY_DB") base[k] = v;
  }
  const args = [...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []), ...nodeArgs];
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...base, ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (d) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.stdout?.on("data", (d) => {
    err = (err + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url + readyPath, child, () => err);
  const pid = child.pid!;
  return {
    url,
    pid,
    memory: () => readStatus(pid),
    output: () =>
      child.exitCode === null && child.signalCode === null
        ? err
        : `${err}\n(exited: ${child.exitCode ?? child.signalCode})`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A real Tally server process, started as `npm start` does in this checkout or in `cwd`, on the given store. */
export function startTally(
  store: { TALLY_DB?: string; DATABASE_URL?: string },
  adminKey: string,
  profileDir: string | null,
  cwd = ROOT,
): Promise<Server> {
  const env: Record<string, string> = { TALLY_ADMIN_KEY: adminKey };
  if (store.DATABASE_URL) env.DATABASE_URL = store.DATABASE_URL;
  if (store.TALLY_DB) env.TALLY_DB = store.TALLY_DB;
  prepareStart(cwd);
  return spawnNode(startArgs(cwd), env, "/healthz", profileDir, cwd);
}

/** Node's arguments for one of the bench's own TypeScript scripts. */
function tsxScript(path: string): string[] {
  return ["--import", "tsx", path];
}

/** The HTTP ceiling: a bare Fastify server answering the same POST, in its own process. */
export function startBareFastify(): Promise<Server> {
  return spawnNode(tsxScript("bench/bare-fastify.ts"), {}, "/healthz", null);
}

/** The development upstream (src/gateway/dev-upstream.ts) in its own process. */
export function startDevUpstreamProcess(): Promise<Server> {
  return spawnNode(tsxScript("bench/dev-upstream.ts"), {}, "/v1/models", null);
}

/** The gateway's baseline: a bare Fastify + undici proxy to `upstreamUrl`, in its own process. */
export function startBareProxy(upstreamUrl: string): Promise<Server> {
  return spawnNode(tsxScript("bench/bare-proxy.ts"), { UPSTREAM_URL: upstreamUrl }, "/healthz", null);
}
