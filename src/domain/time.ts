import { DateTime, IANAZone } from "luxon";

/**
 * Time buckets in any IANA timezone. Instants are epoch milliseconds; buckets are half-open
 * [bucketStart, bucketEnd). Calendar arithmetic (DST days of 23 or 25 hours, +05:45 zones,
 * months) is Luxon's, over the platform's IANA database: never a hand-made offset table.
 */

export const TIMEFRAMES = ["minute", "hour", "day", "week", "month"] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export function isValidZone(zone: string): boolean {
  return typeof zone === "string" && zone.length > 0 && IANAZone.isValidZone(zone);
}

function inZone(at: number, zone: string): DateTime {
  return DateTime.fromMillis(at, { zone });
}

/** Start of the timeframe period containing `at`, in `zone` (weeks start on Monday). */
export function floorTo(at: number, timeframe: Timeframe, zone: string): number {
  return inZone(at, zone).startOf(timeframe).toMillis();
}

/** The first timeframe boundary strictly after `at`. */
export function nextBoundary(at: number, timeframe: Timeframe, zone: string): number {
  const start = inZone(at, zone).startOf(timeframe);
  // minutes and hours are fixed lengths of absolute time; a local-time plus() would skip or repeat
  // an hour at DST changes
  if (timeframe === "minute") return start.toMillis() + MINUTE_MS;
  if (timeframe === "hour") return start.toMillis() + HOUR_MS;
  return start.plus({ [`${timeframe}s`]: 1 }).toMillis();
}

/** Smallest boundary >= at. */
export function ceilTo(at: number, timeframe: Timeframe, zone: string): number {
  const floor = floorTo(at, timeframe, zone);
  return floor === at ? at : nextBoundary(at, timeframe, zone);
}

/** The seed's auto-detection: minute (<2h), hour (<2d), day (<64d), week (<183d), month otherwise. */
export function autoTimeframe(start: number, end: number): Timeframe {
  const span = end - start;
  if (span < 2 * HOUR_MS) return "minute";
  if (span < 2 * DAY_MS) return "hour";
  if (span < 64 * DAY_MS) return "day";
  if (span < 183 * DAY_MS) return "week";
  return "month";
}

export interface Bucket {
  start: number;
  end: number;
}

/**
 * Buckets tiling [start, end): each breaks at the timeframe's boundaries in `zone`; the first
 * starts at `start` and the last ends at `end` even when those are not boundaries. `max` stops the
 * listing after that many buckets (each costs a zone lookup, ~50us).
 */
export function bucketsBetween(
  start: number,
  end: number,
  timeframe: Timeframe,
  zone: string,
  max = Number.POSITIVE_INFINITY,
): Bucket[] {
  const buckets: Bucket[] = [];
  let cursor = start;
  while (cursor < end && buckets.length < max) {
    const next = Math.min(nextBoundary(cursor, timeframe, zone), end);
    buckets.push({ start: cursor, end: next });
    cursor = next;
  }
  return buckets;
}

/** Local time with its offset, seconds precision: `2025-01-15T00:00:00-05:00`, UTC as `+00:00`. */
export function formatLocal(at: number, zone: string): string {
  return inZone(at, zone).toFormat("yyyy-MM-dd'T'HH:mm:ssZZ");
}

/** UTC ISO 8601 with milliseconds, `2025-07-04T12:00:00.000Z`. */
export function formatUtc(at: number): string {
  return new Date(at).toISOString();
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Parses an ISO 8601 instant. A date-only value is midnight in `zone`; a date-time without an
 * offset is read in `zone` as well. Returns null when the text is not a valid date.
 */
export function parseInstant(text: string, zone = "UTC"): number | null {
  if (typeof text !== "string" || text.length === 0) return null;
  const dt = DATE_ONLY.test(text)
    ? DateTime.fromISO(text, { zone })
    : DateTime.fromISO(text, { zone, setZone: false });
  return dt.isValid ? dt.toMillis() : null;
}

/**
 * Splits [start, end) into runs that the rollup levels can answer exactly: UTC-aligned minutes,
 * hours and days, plus raw pieces for unaligned edges (at most one minute at each end).
 */
export type RollupLevel = "raw" | "minute" | "hour" | "day";

export interface Segment {
  level: RollupLevel;
  start: number;
  end: number;
}

const LEVEL_MS: Record<Exclude<RollupLevel, "raw">, number> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
};

function floorMs(at: number, size: number): number {
  return Math.floor(at / size) * size;
}

export function planSegments(start: number, end: number): Segment[] {
  if (end <= start) return [];
  const segments: Segment[] = [];
  const push = (level: RollupLevel, s: number, e: number) => {
    if (e <= s) return;
    const last = segments[segments.length - 1];
    if (last && last.level === level && last.end === s) last.end = e;
    else segments.push({ level, start: s, end: e });
  };
  const alignedStart = Math.min(
    floorMs(start, MINUTE_MS) === start ? start : floorMs(start, MINUTE_MS) + MINUTE_MS,
    end,
  );
  const alignedEnd = Math.max(floorMs(end, MINUTE_MS), alignedStart);
  push("raw", start, alignedStart);
  let cursor = alignedStart;
  while (cursor < alignedEnd) {
    let level: Exclude<RollupLevel, "raw"> = "minute";
    if (cursor % DAY_MS === 0 && cursor + DAY_MS <= alignedEnd) level = "day";
    else if (cursor % HOUR_MS === 0 && cursor + HOUR_MS <= alignedEnd) level = "hour";
    const size = LEVEL_MS[level];
    // take as many whole units of this level as fit before the next coarser alignment or the end
    const lastFit = cursor + Math.floor((alignedEnd - cursor) / size) * size;
    const coarser = level === "minute" ? HOUR_MS : level === "hour" ? DAY_MS : 0;
    const stop = coarser === 0 ? lastFit : Math.min(lastFit, floorMs(cursor, coarser) + coarser);
    push(level, cursor, stop);
    cursor = stop;
  }
  push("raw", alignedEnd, end);
  return segments;
}

/** The rollup bucket of each level that an event at `at` falls in (UTC-aligned). */
export function rollupBuckets(at: number): { minute: number; hour: number; day: number } {
  return { minute: floorMs(at, MINUTE_MS), hour: floorMs(at, HOUR_MS), day: floorMs(at, DAY_MS) };
}
