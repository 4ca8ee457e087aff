import { resolve } from "node:path";
import { DEFAULT_MAX_FUTURE_MS } from "./ingest/event-input.ts";
import { parseSecretsKey } from "./notify/secret-box.ts";

/** Configuration, read once from the environment; the only reader of process.env. */
export interface Config {
  port: number;
  /** the address to listen on (HOST); 0.0.0.0 by default, 127.0.0.1 for this machine only */
  host: string;
  sqlitePath: string;
  databaseUrl: string | null;
  /** PostgreSQL bounds (ms): connect, statement, idle connection; unset ones keep the store's defaults */
  databaseTimeouts: { connectTimeoutMs?: number; statementTimeoutMs?: number; idleTimeoutMs?: number };
  redisUrl: string | null;
  adminKey: string | null;
  logLevel: string;
  /** a bearer token that may read GET /metrics besides the root key (TALLY_METRICS_TOKEN) */
  metricsToken: string | null;
  /** how long SIGTERM waits for in-flight requests before closing their connections */
  shutdownGraceMs: number;
  /** how far into the future an event's timestamp may lie (TALLY_MAX_FUTURE_MS) */
  maxFutureMs: number;
  /** how long to keep retrying a PostgreSQL that is not up yet at start (TALLY_STORE_WAIT_MS) */
  storeWaitMs: number;
  /** invoices close automatically this long after their period ends (TALLY_INVOICE_GRACE_HOURS, default 1) */
  invoiceGraceMs: number;
  /** who issues invoices, printed on their PDF (TALLY_OPERATOR_NAME, TALLY_OPERATOR_ADDRESS lines split by "|") */
  invoiceOperator: { name: string; address: string[] };
  /** seals webhook signing secrets at rest (TALLY_SECRETS_KEY, 32 bytes base64); null: stored plain */
  secretsKey: Buffer | null;
  /** webhooks to loopback and private addresses: allowed unless TALLY_WEBHOOK_PRIVATE=deny */
  webhookPrivate: "allow" | "deny";
  /** how often every alert rule is evaluated again, and forecasts planned (TALLY_ALERT_SWEEP_MS, default 60 s) */
  alertSweepMs: number;
}

/** A year (a leap year's hours): a longer grace would never close a period in time to bill it. */
const MAX_HOURS = 24 * 366;

function hoursFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback * 3_600_000;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > MAX_HOURS)
    throw new Error(`${name} must be a number of hours from 0 to ${MAX_HOURS}, got ${value}`);
  return Math.round(n * 3_600_000);
}

function intFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be a port number, got ${value}`);
  return n;
}

function msFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name} must be a whole number of milliseconds, got ${value}`);
  return n;
}

/** A REDIS_URL that ioredis would read as something else is refused at start, naming it. */
function redisUrlFrom(value: string | undefined): string | null {
  const url = value?.trim();
  if (!url) return null;
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (!parsed || !/^rediss?:$/.test(parsed.protocol) || !parsed.hostname) {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL with a host, got ${JSON.stringify(url)}`);
  }
  return url;
}

function timeoutFrom(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000)
    throw new Error(`${name} must be a whole number of milliseconds from 1 to 3600000, got ${value}`);
  return n;
}

/**
 * The live environment, read at request time for an upstream's secret (`api_key_env`): a secret
 * set or rotated in the environment is used without storing it anywhere.
 */
export const UPSTREAM_SECRETS: Readonly<Record<string, string | undefined>> = process.env;

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
      connectTimeoutMs: timeoutFrom("TALLY_DB_CONNECT_TIMEOUT_MS", env.TALLY_DB_CONNECT_TIMEOUT_MS),
      statementTimeoutMs: timeoutFrom("TALLY_DB_STATEMENT_TIMEOUT_MS", env.TALLY_DB_STATEMENT_TIMEOUT_MS),
      idleTimeoutMs: timeoutFrom("TALLY_DB_IDLE_TIMEOUT_MS", env.TALLY_DB_IDLE_TIMEOUT_MS),
    },
    redisUrl: redisUrlFrom(env.REDIS_URL),
    adminKey: env.TALLY_ADMIN_KEY?.trim() || null,
    logLevel: env.LOG_LEVEL?.trim() || "info",
    metricsToken: env.TALLY_METRICS_TOKEN?.trim() || null,
    shutdownGraceMs: msFrom("TALLY_SHUTDOWN_GRACE_MS", env.TALLY_SHUTDOWN_GRACE_MS, 10_000),
    maxFutureMs: msFrom("TALLY_MAX_FUTURE_MS", env.TALLY_MAX_FUTURE_MS, DEFAULT_MAX_FUTURE_MS),
    storeWaitMs: msFrom("TALLY_STORE_WAIT_MS", env.TALLY_STORE_WAIT_MS, 30_000),
    invoiceGraceMs: hoursFrom("TALLY_INVOICE_GRACE_HOURS", env.TALLY_INVOICE_GRACE_HOURS, 1),
    invoiceOperator: {
      name: env.TALLY_OPERATOR_NAME?.trim() || "Tally",
      address: (env.TALLY_OPERATOR_ADDRESS ?? "")
        .split("|")
        .map((l) => l.trim())
        .filter(Boolean),
    },
    secretsKey: env.TALLY_SECRETS_KEY?.trim() ? parseSecretsKey(env.TALLY_SECRETS_KEY.trim()) : null,
    webhookPrivate: webhookPrivateFrom(env.TALLY_WEBHOOK_PRIVATE),
    alertSweepMs: msFrom("TALLY_ALERT_SWEEP_MS", env.TALLY_ALERT_SWEEP_MS, 60_000),
  };
}

function webhookPrivateFrom(raw: string | undefined): "allow" | "deny" {
  const v = raw?.trim().toLowerCase() || "allow";
  if (v !== "allow" && v !== "deny") throw new Error("TALLY_WEBHOOK_PRIVATE must be allow or deny");
  return v;
}

/** Why a root key is easy to guess (short, or a placeholder left in), or null when it is not. */
export function weakRootKey(key: string): string | null {
  if (/change.?me|example|password|secret|^(root|admin|test)[-_]?key$/i.test(key)) {
    return "looks like a placeholder";
  }
  if (key.length < 20) return "shorter than 20 characters";
  if (new Set(key).size < 6) return "uses fewer than 6 distinct characters";
  return null;
}

/** Where the server's log can name Redis without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable)";
  }
}
