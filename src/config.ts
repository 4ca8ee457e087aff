import { resolve } from "node:path";

/** Configuration, read once from the environment; the only reader of process.env. */
export interface Config {
  port: number;
  host: string;
  sqlitePath: string;
  databaseUrl: string | null;
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
    redisUrl: env.REDIS_URL?.trim() || null,
    adminKey: env.TALLY_ADMIN_KEY?.trim() || null,
    logLevel: env.LOG_LEVEL?.trim() || "info",
  };
}
