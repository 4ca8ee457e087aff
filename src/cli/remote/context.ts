import type { Command } from "commander";
import {
  errorMessage,
  type HttpAnswer,
  TallyError,
  TallyHttp,
  TallyNetworkError,
} from "../../../packages/client/src/index.ts";

/**
 * What every command that speaks to a running server shares: the connection (`--url`, `--key`,
 * or TALLY_URL, TALLY_KEY), the output mode (`--json` for scripts, tables for people) and the
 * exit codes scripts can trust: 0 done, 1 the server refused (or did only part), 2 a usage error.
 */

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** Bad arguments or input: exit 2, nothing was sent. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface RemoteContext {
  http: TallyHttp;
  /** A file the server renders (an invoice's PDF): its bytes, never decoded as text. */
  download: (path: string) => Promise<Uint8Array>;
  json: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
}

interface GlobalOptions {
  url?: string;
  key?: string;
  json?: boolean;
  timeout?: string;
}

export function remoteContext(command: Command): RemoteContext {
  const o = command.optsWithGlobals<GlobalOptions>();
  if (!o.url) throw new UsageError("no server: pass --url or set TALLY_URL");
  if (!o.key) throw new UsageError("no key: pass --key or set TALLY_KEY");
  try {
    new URL(o.url);
  } catch {
    throw new UsageError(`--url ${o.url} is not a URL`);
  }
  const timeoutMs = o.timeout === undefined ? 60_000 : Number(o.timeout) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new UsageError("--timeout must be a number of seconds");
  const http = new TallyHttp({ url: o.url, key: o.key, timeoutMs });
  const key = o.key;
  return {
    http,
    download: async (path) => {
      let res: Response;
      try {
        res = await fetch(http.url(path), {
          headers: { authorization: `Bearer ${key}` },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new TallyNetworkError(`GET ${path}: ${(err as Error).message}`, { cause: err });
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status >= 300) {
        const text = new TextDecoder().decode(bytes);
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        throw new TallyError(res.status, errorMessage(res.status, body), body);
      }
      return bytes;
    },
    json: Boolean(o.json),
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  };
}

/**
 * One request that changes something: sent once (a create is not repeated on a network error,
 * it might have happened), and a refusal becomes a TallyError with the server's message.
 */
export async function send(
  ctx: RemoteContext,
  method: string,
  path: string,
  body?: unknown,
): Promise<HttpAnswer> {
  const answer = await ctx.http.request(method, path, { body });
  if (answer.status >= 300) {
    throw new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
  }
  return answer;
}

/** A read: safe to retry. */
export async function read<T>(ctx: RemoteContext, path: string, query?: Record<string, string | undefined>) {
  return ctx.http.json<T>("GET", path, { query, retry: true });
}

/** A read whose answer is kept whole (its text prints as the server wrote it); a refusal throws. */
export async function readAnswer(
  ctx: RemoteContext,
  path: string,
  query?: Record<string, string | number | undefined>,
): Promise<HttpAnswer> {
  const answer = await ctx.http.request("GET", path, { query, retry: true });
  if (answer.status >= 300) {
    throw new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
  }
  return answer;
}

/** Runs a command's action and turns its failure into a message and an exit code. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<number | undefined>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = (await run(...args)) ?? EXIT_OK;
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
      } else if (err instanceof TallyError) {
        process.stderr.write(`refused (HTTP ${err.status}): ${err.message}\n`);
        process.exitCode = EXIT_REFUSED;
      } else if (err instanceof TallyNetworkError) {
        process.stderr.write(`cannot reach the server: ${err.message}\n`);
        process.exitCode = EXIT_REFUSED;
      } else {
        throw err;
      }
    }
  };
}

/** A table for people: columns padded to their widest cell, numbers right-aligned. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => cellText(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const numeric = columns.map((_, i) => cells.length > 0 && cells.every((row) => /^-?[\d.,]*$/.test(row[i])));
  const line = (row: string[]) =>
    row
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

/** One record for people: a field per line. */
export function record(body: Record<string, unknown>): string {
  const keys = Object.keys(body);
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${k.padEnd(width)}  ${cellText(body[k])}`).join("\n");
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Prints a server's answer: its own JSON text for `--json` (exact decimals stay exact), else a record. */
export function show(ctx: RemoteContext, answer: HttpAnswer): void {
  if (ctx.json) ctx.out(answer.text);
  else ctx.out(record(answer.body as Record<string, unknown>));
}

/**
 * An answer that carries a secret (`field`): for people the record, then the secret once, last,
 * so `tail -1` takes it; `--json` prints the answer as it is.
 */
export function showSecret(ctx: RemoteContext, answer: HttpAnswer, field: string): void {
  if (ctx.json) {
    ctx.out(answer.text);
    return;
  }
  const { [field]: secret, ...rest } = answer.body as Record<string, unknown>;
  ctx.out(record(rest));
  ctx.out(`\nSecret (shown once, store it safely):\n${String(secret)}`);
}

/** `--data '{"field": ...}'`: fields the flags do not cover, merged into the request body. */
export function extraFields(data: string | undefined): Record<string, unknown> {
  if (data === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new UsageError("--data must be a JSON object");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UsageError("--data must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** An integer flag, or `unlimited` (null). */
export function limitFlag(name: string, value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === "unlimited" || value === "null") return null;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number or "unlimited"`);
  return Number(value);
}

export function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) throw new UsageError(`${name} must be a whole number`);
  return Number(value);
}

/** A comma-separated list flag. */
export function listFlag(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A flag of a command: commander's flags string, what it means, whether it is required. */
export interface Flag {
  flags: string;
  description: string;
  required?: boolean;
  default?: string;
}

/** A command that speaks to a running server, declared once: its flags, help and what it does. */
export interface RemoteCommandSpec<O> {
  name: string;
  description: string;
  /** the positional argument, e.g. `["<id>", "the key's id"]` */
  argument?: [string, string];
  flags?: Flag[];
  /** shown under `--help` */
  examples: string[];
  /** the exit code (0 when nothing is returned); `arg` is the positional argument, if any */
  run: (ctx: RemoteContext, opts: O, arg: string) => Promise<number | undefined>;
}

/** Adds `spec` to `group` with the shared connection, output mode, help layout and exit codes. */
export function remoteCommand<O>(group: Command, spec: RemoteCommandSpec<O>): Command {
  const command = group.command(spec.name).description(spec.description);
  if (spec.argument) command.argument(...spec.argument);
  for (const f of spec.flags ?? []) {
    if (f.required) command.requiredOption(f.flags, f.description, f.default);
    else if (f.default !== undefined) command.option(f.flags, f.description, f.default);
    else command.option(f.flags, f.description);
  }
  const title = spec.examples.length > 1 ? "Examples" : "Example";
  command.addHelpText("after", `\n${title}:\n${spec.examples.map((e) => `  ${e}`).join("\n")}`);
  command.action(
    action(async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      return spec.run(remoteContext(cmd), cmd.opts() as O, String(cmd.args[0] ?? ""));
    }),
  );
  return command;
}

/** The group `name` under `program`: the one already registered (local commands), or a new one. */
export function commandGroup(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}
