import { type Logger, pino } from "pino";

/** The structured logger every part of Tally writes through (pino: one JSON object per line). */
export type Log = Pick<Logger, "info" | "warn" | "error" | "debug" | "fatal">;

/** The process's logger: JSON lines on stdout at `level`, with `redact`ed paths never written. */
export function createLog(level: string, redact: string[] = []): Logger {
  return pino({ level, redact });
}

/** For services built without one (tests): drops everything. */
export const SILENT_LOG: Log = pino({ level: "silent" });
