import { resolve } from "node:path";

/** Configuration, read once from the environment; the only reader of process.env. */
export interface Config {
  port: number;
  host: string;
  sqlitePath: string;
  databaseUrl: string | null;
  /** PostgreSQL bounds (ms): connect, statement, idle connection; unset ones keep the store's defaults */
  databaseTimeouts: { connectTimeoutMs?: number; statementTimeoutMs?: number; idleTimeoutMs?: number };
  redisUrl: string | null;
  adminKey: string | null;
  logLevel: string;
}

function intFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be a port number, got ${value}`);
  return n;
}

function msFrom(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000)
    throw new Error(`${name} must be a whole number of milliseconds from 1 to 3600000, got ${value}`);
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL?.trim() || null;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error("DATABASE_URL must be a postgres:// URL");
  }
  return {
    port: intFrom("PORT", env.PORT, 8787),
    host: env.HOST?.trim() || "0.0.0.0",
    sqlitePath: resolve(env.TALLY_DB?.trim() || "./data/tally.db"),
    databaseUrl,
    databaseTimeouts: {
      connectTimeoutMs: msFrom("TALLY_DB_CONNECT_TIMEOUT_MS", env.TALLY_DB_CONNECT_TIMEOUT_MS),
      statementTimeoutMs: msFrom("TALLY_DB_STATEMENT_TIMEOUT_MS", env.TALLY_DB_STATEMENT_TIMEOUT_MS),
      idleTimeoutMs: msFrom("TALLY_DB_IDLE_TIMEOUT_MS", env.TALLY_DB_IDLE_TIMEOUT_MS),
    },
    redisUrl: env.REDIS_URL?.trim() || null,
    adminKey: env.TALLY_ADMIN_KEY?.trim() || null,
    logLevel: env.LOG_LEVEL?.trim() || "info",
  };
}
