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
export const FOUR_HOURS_MS = 4 * HOUR_MS;
export const DAY_MS = 86_400_000;

/** Zone names found valid: Luxon's check builds an Intl.DateTimeFormat, about 0.5 ms each time. */
const VALID_ZONES = new Set<string>();

export function isValidZone(zone: string): boolean {
  if (VALID_ZONES.has(zone)) return true;
  const valid = typeof zone === "string" && zone.length > 0 && IANAZone.isValidZone(zone);
  if (valid && VALID_ZONES.size < 1_000) VALID_ZONES.add(zone);
  return valid;
}

/**
 * A zone's offset from UTC at an instant, in minutes. An Intl lookup costs about 10 µs and the
 * same instants (bucket boundaries) recur within and across queries, so answers are remembered,
 * a bounded number per zone. An offset at an instant never changes while the process runs.
 */
const OFFSETS = new Map<string, Map<number, number>>();
const OFFSETS_PER_ZONE = 20_000;

export function offsetAt(zone: string, at: number): number {
  let memo = OFFSETS.get(zone);
  if (!memo) {
    memo = new Map();
    OFFSETS.set(zone, memo);
  }
  let offset = memo.get(at);
  if (offset === undefined) {
    offset = IANAZone.create(zone).offset(at);
    if (memo.size >= OFFSETS_PER_ZONE) memo.clear();
    memo.set(at, offset);
  }
  return offset;
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
  if (timeframe === "hour") return nextHourStart(at, start.toMillis(), zone);
  // the next period's own start: a period whose midnight fell in a gap began later than midnight,
  // and plus() keeps that time of day (Lord Howe on 1 March 1981 began at 00:30)
  return start
    .plus({ [`${timeframe}s`]: 1 })
    .startOf(timeframe)
    .toMillis();
}

/**
 * The next local hour start after `at`, whose hour began at `hourStart`. An hour is 60 minutes
 * unless the offset changes inside it by a part of an hour (Lord Howe's 30-minute DST): then it is
 * the first quarter-hour instant that floorTo calls an hour start (every offset is a
 * multiple of 15 minutes).
 */
function nextHourStart(at: number, hourStart: number, zone: string): number {
  const plain = hourStart + HOUR_MS;
  if (
    localMinute(hourStart, offsetAt(zone, hourStart)) === 0 &&
    localMinute(plain, offsetAt(zone, plain)) === 0
  )
    return plain;
  for (let t = hourStart + 15 * MINUTE_MS; t <= hourStart + 3 * HOUR_MS; t += 15 * MINUTE_MS) {
    if (t > at && floorTo(t, "hour", zone) === t) return t;
  }
  return plain;
}

/** The minute of the local hour at `at`, given the zone's offset there in minutes. */
function localMinute(at: number, offsetMinutes: number): number {
  return (((Math.floor(at / MINUTE_MS) + offsetMinutes) % 60) + 60) % 60;
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
 * listing after that many buckets.
 */
export function bucketsBetween(
  start: number,
  end: number,
  timeframe: Timeframe,
  zone: string,
  max = Number.POSITIVE_INFINITY,
): Bucket[] {
  const buckets: Bucket[] = [];
  if (start >= end || max <= 0) return buckets;
  const steps = boundariesAfter(start, timeframe, zone);
  let cursor = start;
  while (cursor < end && buckets.length < max) {
    const next = Math.min(steps.next(), end);
    buckets.push({ start: cursor, end: next });
    cursor = next;
  }
  return buckets;
}

/**
 * The timeframe's boundaries after `at`, in order. Calling Luxon afresh for every boundary costs
 * several zone lookups each; walking from one boundary to the next costs about one. Every step
 * is checked against the zone, and anything unusual (an offset change at a boundary, a missing
 * local midnight) falls back to a fresh nextBoundary, so the answer is nextBoundary's.
 */
function boundariesAfter(at: number, timeframe: Timeframe, zone: string): { next(): number } {
  let current = nextBoundary(at, timeframe, zone);
  let pending = true;
  if (timeframe === "minute") {
    // every zone offset is a whole number of minutes: local minutes are UTC minutes
    return {
      next() {
        if (pending) pending = false;
        else current += MINUTE_MS;
        return current;
      },
    };
  }
  const fixed =
    timeframe === "hour" ? HOUR_MS : timeframe === "day" ? DAY_MS : timeframe === "week" ? 7 * DAY_MS : 0;
  let offset = offsetAt(zone, current);
  return {
    next() {
      if (pending) {
        pending = false;
        return current;
      }
      let candidate = fixed > 0 ? current + fixed : nextBoundary(current, timeframe, zone);
      const candidateOffset = offsetAt(zone, candidate);
      // a fixed step lands on the next boundary while the offset stays the same (an hour step also
      // while it moves by whole hours and lands on a local :00); otherwise ask the calendar
      const moved =
        timeframe === "hour"
          ? localMinute(candidate, candidateOffset) !== 0 || localMinute(current, offset) !== 0
          : candidateOffset !== offset;
      if (fixed > 0 && moved) {
        candidate = nextBoundary(current, timeframe, zone);
        offset = offsetAt(zone, candidate);
      } else {
        offset = candidateOffset;
      }
      current = candidate;
      return current;
    },
  };
}

/** Local time with its offset, seconds precision: `2025-01-15T00:00:00-05:00`, UTC as `+00:00`. */
export function formatLocal(at: number, zone: string): string {
  // one offset lookup, then plain formatting: Luxon's toFormat costs several lookups per label
  const offset = Math.round(offsetAt(zone, at));
  const abs = Math.abs(offset);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${new Date(at + offset * MINUTE_MS).toISOString().slice(0, 19)}${offset < 0 ? "-" : "+"}${hh}:${mm}`;
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
 * hours, four-hour blocks (00:00, 04:00, .. 20:00) and days, plus raw pieces for unaligned edges
 * (at most one minute at each end).
 *
 * A run may be subtracted (`sign` -1): a piece that covers most of a day is cheaper as the whole
 * day minus the hours it leaves out, and likewise for blocks, hours and minutes. A New York day,
 * 05:00 to 05:00 UTC, is the UTC day minus its first block and hour, plus the next day's: 5 rows
 * instead of 24 (11 with hours alone). Four-hour blocks exist for such days: most zones' offsets
 * are whole hours, and the common ones (-5, -4, -8, +1, +8) are a block and an hour at most.
 * Summing every run times its sign counts each instant of [start, end) exactly once.
 */
export type RollupLevel = "raw" | "minute" | "hour" | "fourHours" | "day";

export interface Segment {
  level: RollupLevel;
  start: number;
  end: number;
  sign: 1 | -1;
}

const LADDER: { level: Exclude<RollupLevel, "raw">; size: number }[] = [
  { level: "day", size: DAY_MS },
  { level: "fourHours", size: FOUR_HOURS_MS },
  { level: "hour", size: HOUR_MS },
  { level: "minute", size: MINUTE_MS },
];

function floorMs(at: number, size: number): number {
  return Math.floor(at / size) * size;
}

interface Plan {
  segments: Segment[];
  /** rollup rows read per line: the number of whole units in the plan */
  cost: number;
}

const EMPTY: Plan = { segments: [], cost: 0 };

function join(...plans: Plan[]): Plan {
  const segments: Segment[] = [];
  let cost = 0;
  for (const p of plans) {
    cost += p.cost;
    for (const s of p.segments) {
      const last = segments[segments.length - 1];
      if (last && last.level === s.level && last.sign === s.sign && last.end === s.start) last.end = s.end;
      else segments.push({ ...s });
    }
  }
  return { segments, cost };
}

/** Minute-aligned [a, b) from ladder step `i` down. */
function planAligned(a: number, b: number, i: number, sign: 1 | -1): Plan {
  if (b <= a) return EMPTY;
  const { level, size } = LADDER[i];
  if (i === LADDER.length - 1) return { segments: [{ level, start: a, end: b, sign }], cost: (b - a) / size };
  const first = Math.ceil(a / size) * size;
  const last = floorMs(b, size);
  if (first > last) return planPartial(a, b, last, i, sign); // inside one unit
  const middle: Plan =
    first < last
      ? { segments: [{ level, start: first, end: last, sign }], cost: (last - first) / size }
      : EMPTY;
  return join(
    first > a ? planPartial(a, first, first - size, i, sign) : EMPTY,
    middle,
    b > last ? planPartial(last, b, last, i, sign) : EMPTY,
  );
}

/** [a, b) inside the unit starting at `cell` of step `i`: finer runs, or the unit minus its rest. */
function planPartial(a: number, b: number, cell: number, i: number, sign: 1 | -1): Plan {
  const direct = planAligned(a, b, i + 1, sign);
  const { level, size } = LADDER[i];
  const unit: Plan = { segments: [{ level, start: cell, end: cell + size, sign }], cost: 1 };
  const minus = (x: number, y: number) => planAligned(x, y, i + 1, sign === 1 ? -1 : 1);
  const complement = join(minus(cell, a), unit, minus(b, cell + size));
  return complement.cost < direct.cost ? complement : direct;
}

export function planSegments(start: number, end: number): Segment[] {
  if (end <= start) return [];
  const alignedStart = Math.min(Math.ceil(start / MINUTE_MS) * MINUTE_MS, end);
  const alignedEnd = Math.max(floorMs(end, MINUTE_MS), alignedStart);
  const raw = (s: number, e: number): Plan =>
    e > s ? { segments: [{ level: "raw", start: s, end: e, sign: 1 }], cost: 0 } : EMPTY;
  return join(raw(start, alignedStart), planAligned(alignedStart, alignedEnd, 0, 1), raw(alignedEnd, end))
    .segments;
}

/** The rollup bucket of each level that an event at `at` falls in (UTC-aligned). */
export function rollupBuckets(at: number): { minute: number; hour: number; fourHours: number; day: number } {
  return {
    minute: floorMs(at, MINUTE_MS),
    hour: floorMs(at, HOUR_MS),
    fourHours: floorMs(at, FOUR_HOURS_MS),
    day: floorMs(at, DAY_MS),
  };
}
