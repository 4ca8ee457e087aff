import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import type { QueuedEvent } from "./types.ts";

/**
 * The spool: events that could not be delivered, one JSON object per line, each with its fixed id
 * and timestamp, so that sending them later (even twice) stores each one once. Writes are
 * synchronous and fsynced: the spool is written while a process is going away.
 */

/** Reads a spool; a torn last line (a crash while writing) and blank lines are skipped. */
export function readSpool(path: string): QueuedEvent[] {
  if (!existsSync(path)) return [];
  const events: QueuedEvent[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      const e = JSON.parse(line) as QueuedEvent;
      if (e && typeof e === "object" && typeof e.id === "string") events.push(e);
    } catch {
      // a torn line: its event was never acknowledged as spooled
    }
  }
  return events;
}

function writeAll(path: string, flags: string, events: readonly QueuedEvent[]): void {
  const fd = openSync(path, flags);
  try {
    const text = events.map((e) => `${JSON.stringify(e)}\n`).join("");
    if (text) writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces the spool with `events` atomically (write aside, fsync, rename); none: removes it. */
export function replaceSpool(path: string, events: readonly QueuedEvent[]): void {
  if (events.length === 0) {
    removeSpool(path);
    return;
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeAll(tmp, "w", events);
  renameSync(tmp, path);
}

/** Appends `events` to the spool (a spool this process did not load stays as it was). */
export function appendSpool(path: string, events: readonly QueuedEvent[]): void {
  if (events.length > 0) writeAll(path, "a", events);
}

export function removeSpool(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
