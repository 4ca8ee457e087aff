import { DomainError } from "../domain/errors.ts";

/**
 * Driver errors as the core sees them, decided here and nowhere else: a unique violation is a
 * CONFLICT, a database that cannot answer (down, unreachable, too slow, disk full or read-only,
 * locked too long) is UNAVAILABLE. The driver's error stays as `cause`. Anything else passes
 * through unchanged: it is a bug, answered with a generic 5xx by the surfaces.
 */
export function storeError(err: unknown): unknown {
  if (err instanceof DomainError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : "";
  if (UNIQUE_CODES.has(code))
    return withCause(new DomainError("CONFLICT", `already exists (${message || code})`), err);
  if (isUnavailable(code, message))
    return withCause(new DomainError("UNAVAILABLE", `database unavailable: ${message || code}`), err);
  return err;
}

/** Runs `op`, turning a driver error into the core's (see `storeError`). */
export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw storeError(err);
  }
}

/** `guarded` for synchronous SQLite work. */
export function guardedSync<T>(op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw storeError(err);
  }
}

export function withCause(e: DomainError, cause: unknown): DomainError {
  Object.defineProperty(e, "cause", { value: cause, enumerable: false, writable: true, configurable: true });
  return e;
}

/** PostgreSQL 23505 unique_violation; SQLite's UNIQUE and PRIMARY KEY constraints. */
const UNIQUE_CODES = new Set(["23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"]);

/** Socket errors of a connection that failed or broke. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * PostgreSQL classes 08 (connection exception) and 53 (insufficient resources), 57P01-57P03
 * (server shutting down or starting) and 57014 (statement_timeout cancelled the query).
 */
const PG_UNAVAILABLE = /^(08...|53...|57P0[123]|57014)$/;

/** SQLite: disk full, I/O error, read-only database or file, locked beyond busy_timeout, cannot open. */
const SQLITE_UNAVAILABLE = /^SQLITE_(FULL|IOERR|READONLY|BUSY|CANTOPEN)(_|$)/;

/** pg reports a lost or timed-out connection, and its own query_timeout, by message only. */
const PG_LOST =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection ended unexpectedly/i;

function isUnavailable(code: string, message: string): boolean {
  return (
    NETWORK_CODES.has(code) ||
    PG_UNAVAILABLE.test(code) ||
    SQLITE_UNAVAILABLE.test(code) ||
    (code === "" && PG_LOST.test(message))
  );
}
