import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * The real server as a child process, for what only a process shows (the seed's own clients,
 * crash safety, the CLI). It runs what `npm start` runs (the bundle `prestart` builds from
 * `src/main.ts`), as Node itself, in one process, so `kill("SIGKILL")` hits the server and not a
 * wrapper.
 */

export const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** A TCP port that was free a moment ago: bind port 0, read the port, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface ServerProcess {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** the root key the server was started with (TALLY_ADMIN_KEY) */
  adminKey: string;
  /** the SQLite file, when the server runs on SQLite */
  dbPath: string | null;
  child: ChildProcess;
  /** everything the server wrote to stdout and stderr so far */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed) */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once, as a crash would */
  kill(): Promise<void>;
  /** stops the server (if running) and removes the temporary directory */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** extra environment, e.g. `DATABASE_URL` from a TestStore's `env`; wins over the defaults */
  env?: Record<string, string>;
  adminKey?: string;
  /** reuse an existing SQLite file (restart after a crash); default: a fresh temp file */
  dbPath?: string;
  /** listen on this port (a restart at the same address); default: a free one */
  port?: number;
  timeoutMs?: number;
}

/** Environment that would point the child at something other than what the test chose. */
const INHERITED_OUT = ["DATABASE_URL", "REDIS_URL", "TALLY_DB", "TALLY_ADMIN_KEY", "PORT", "HOST"];

/** package.json's scripts in checkout `dir`. */
function scripts(dir: string): Record<string, string> {
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { scripts: Record<string, string> })
    .scripts;
}

/** Checkouts whose `prestart` ran in this process. */
const prepared = new Set<string>();

/**
 * Runs what `npm start` runs first in checkout `dir` (its "prestart": the server's build), if it has
 * one, once per process: vitest's global setup, the bench before its first server of a checkout.
 */
export function prepareStart(dir = REPO_ROOT): void {
  if (prepared.has(dir)) return;
  prepared.add(dir);
  if (!scripts(dir).prestart) return;
  execFileSync("npm", ["run", "--silent", "prestart"], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
}

/**
 * What `npm start` gives Node in checkout `dir` (package.json's "start": Node's flags and the
 * script), so tests and the bench start the server exactly as an operator does.
 */
export function startArgs(dir = REPO_ROOT): string[] {
  const start = scripts(dir).start;
  const [node, ...args] = start.trim().split(/\s+/);
  if (node !== "node") throw new Error(`package.json's start does not run node: ${start}`);
  return args;
}

/** Starts the server as `npm start` does, on a free port; resolves once `GET /healthz` answers 200. */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), "tally-server-"));
  const port = options.port ?? (await freePort());
  const adminKey = options.adminKey ?? `test-admin-${randomBytes(12).toString("hex")}`;
  const usesPostgres = Boolean(options.env?.DATABASE_URL);
  const dbPath = usesPostgres ? null : (options.dbPath ?? join(dir, "tally.db"));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !INHERITED_OUT.includes(k)) env[k] = v;
  }
  Object.assign(
    env,
    { PORT: String(port), HOST: "127.0.0.1", TALLY_ADMIN_KEY: adminKey, LOG_LEVEL: "warn" },
    dbPath ? { TALLY_DB: dbPath } : {},
    options.env ?? {},
  );
  const child = spawn(process.execPath, startArgs(), {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });

  const url = `http://127.0.0.1:${port}`;
  const server: ServerProcess = {
    url,
    port,
    adminKey,
    dbPath,
    child,
    output: () => output,
    async stop(graceMs = 10_000) {
      if (!running) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (!running) return;
      child.kill("SIGKILL");
      await exited;
    },
    async cleanup() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (true) {
    if (!running) {
      await server.cleanup();
      throw new Error(`server exited with ${child.exitCode} before it was ready:\n${output}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.cleanup();
      throw new Error(`server not ready after ${options.timeoutMs ?? 30_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One JSON request to a running server; `key` goes in `Authorization: Bearer`. */
export async function call(
  server: Pick<ServerProcess, "url">,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
      ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
      ...(opts.headers ?? {}),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, text };
}
