import fc from "fast-check";
import { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import {
  autoTimeframe,
  bucketsBetween,
  ceilTo,
  DAY_MS,
  floorTo,
  formatLocal,
  formatUtc,
  HOUR_MS,
  isValidZone,
  MINUTE_MS,
  nextBoundary,
  parseInstant,
  planSegments,
  rollupBuckets,
  type Segment,
  TIMEFRAMES,
} from "./time.ts";

const at = (iso: string): number => Date.parse(iso);
const LEVEL_MS = { minute: MINUTE_MS, hour: HOUR_MS, fourHours: 4 * HOUR_MS, day: DAY_MS } as const;
const ZONES = [
  "UTC",
  "America/New_York",
  "Europe/Berlin",
  "Asia/Kolkata", // +05:30
  "Asia/Kathmandu", // +05:45
  "Australia/Lord_Howe", // half-hour DST
  "Pacific/Chatham", // +12:45 / +13:45
  "America/St_Johns", // -03:30 with DST
];

/**
 * The laws of a segment plan: summing every run times its sign counts each instant of
 * [start, end) exactly once and nothing outside it; rollup runs are aligned to their level; raw
 * runs are added, only at sub-minute edges; and the rows read are bounded by the buckets' shape,
 * never by the events.
 */
function expectTiling(segments: Segment[], start: number, end: number): void {
  if (end <= start) {
    expect(segments).toEqual([]);
    return;
  }
  const points = [...new Set([start, end, ...segments.flatMap((s) => [s.start, s.end])])].sort(
    (a, b) => a - b,
  );
  for (let i = 0; i + 1 < points.length; i++) {
    const mid = points[i];
    const coverage = segments.reduce((n, s) => n + (s.start <= mid && mid < s.end ? s.sign : 0), 0);
    expect(coverage, `coverage at ${new Date(mid).toISOString()}`).toBe(mid >= start && mid < end ? 1 : 0);
  }
  let units = 0;
  for (const s of segments) {
    expect(s.end).toBeGreaterThan(s.start);
    if (s.level === "raw") {
      expect(s.sign).toBe(1);
      // no whole aligned minute inside a raw run: the rollups answer those
      const firstMinute = Math.ceil(s.start / MINUTE_MS) * MINUTE_MS;
      expect(firstMinute + MINUTE_MS).toBeGreaterThan(s.end);
      expect(s.start === start || s.end === end).toBe(true);
    } else {
      const size = LEVEL_MS[s.level];
      expect(s.start % size).toBe(0);
      expect(s.end % size).toBe(0);
      units += (s.end - s.start) / size;
    }
  }
  // whole days, plus at most a day's hours and an hour's minutes at each end
  const days = Math.ceil((end - start) / DAY_MS) + 1;
  expect(units).toBeLessThanOrEqual(days + 2 * 24 + 2 * 60);
  expect(segments.length).toBeLessThanOrEqual(15);
}

describe("planSegments", () => {
  it("splits a range into raw edges, minutes, hours and days", () => {
    const start = at("2025-01-01T22:58:30.500Z");
    const end = at("2025-01-04T01:02:10Z");
    expect(planSegments(start, end)).toEqual([
      { level: "raw", start, end: at("2025-01-01T22:59:00Z"), sign: 1 },
      { level: "minute", start: at("2025-01-01T22:59:00Z"), end: at("2025-01-01T23:00:00Z"), sign: 1 },
      { level: "hour", start: at("2025-01-01T23:00:00Z"), end: at("2025-01-02T00:00:00Z"), sign: 1 },
      { level: "day", start: at("2025-01-02T00:00:00Z"), end: at("2025-01-04T00:00:00Z"), sign: 1 },
      { level: "hour", start: at("2025-01-04T00:00:00Z"), end: at("2025-01-04T01:00:00Z"), sign: 1 },
      { level: "minute", start: at("2025-01-04T01:00:00Z"), end: at("2025-01-04T01:02:00Z"), sign: 1 },
      { level: "raw", start: at("2025-01-04T01:02:00Z"), end, sign: 1 },
    ]);
  });

  it("answers a sub-minute range from raw events only", () => {
    const start = at("2025-01-01T10:00:10Z");
    expect(planSegments(start, start + 20_000)).toEqual([
      { level: "raw", start, end: start + 20_000, sign: 1 },
    ]);
    // crossing a minute boundary without a whole minute inside: still raw, as one run
    const a = at("2025-01-01T10:00:50Z");
    expect(planSegments(a, a + 20_000)).toEqual([{ level: "raw", start: a, end: a + 20_000, sign: 1 }]);
  });

  it("uses no raw events for a range on minute boundaries", () => {
    const start = at("2025-03-01T00:00:00Z");
    expect(planSegments(start, start + 31 * DAY_MS)).toEqual([
      { level: "day", start, end: start + 31 * DAY_MS, sign: 1 },
    ]);
    expect(planSegments(start + MINUTE_MS, start + 2 * MINUTE_MS)).toEqual([
      { level: "minute", start: start + MINUTE_MS, end: start + 2 * MINUTE_MS, sign: 1 },
    ]);
  });

  it("answers a New York day as the UTC day minus its first block and hour, plus the next day's", () => {
    const d = at("2025-01-15T00:00:00Z");
    const B = 4 * HOUR_MS;
    // winter, -05:00: 5 rows per line
    expect(planSegments(d + 5 * HOUR_MS, d + DAY_MS + 5 * HOUR_MS)).toEqual([
      { level: "fourHours", start: d, end: d + B, sign: -1 },
      { level: "hour", start: d + B, end: d + 5 * HOUR_MS, sign: -1 },
      { level: "day", start: d, end: d + DAY_MS, sign: 1 },
      { level: "fourHours", start: d + DAY_MS, end: d + DAY_MS + B, sign: 1 },
      { level: "hour", start: d + DAY_MS + B, end: d + DAY_MS + 5 * HOUR_MS, sign: 1 },
    ]);
    // summer, -04:00: 3 rows
    expect(planSegments(d + B, d + DAY_MS + B)).toEqual([
      { level: "fourHours", start: d, end: d + B, sign: -1 },
      { level: "day", start: d, end: d + DAY_MS, sign: 1 },
      { level: "fourHours", start: d + DAY_MS, end: d + DAY_MS + B, sign: 1 },
    ]);
  });

  it("is empty for an empty or inverted range", () => {
    expect(planSegments(1000, 1000)).toEqual([]);
    expect(planSegments(2000, 1000)).toEqual([]);
  });

  it("tiles any [start, end) exactly with aligned runs (property)", () => {
    const base = at("2024-01-01T00:00:00Z");
    const instant = fc.integer({ min: 0, max: 400 * DAY_MS }).map((x) => base + x);
    // ranges of every scale: ms, seconds, minutes, hours, days
    const span = fc.oneof(
      fc.integer({ min: 0, max: 2 * MINUTE_MS }),
      fc.integer({ min: 0, max: 3 * HOUR_MS }),
      fc.integer({ min: 0, max: 3 * DAY_MS }),
      fc.integer({ min: 0, max: 90 * DAY_MS }),
    );
    fc.assert(
      fc.property(instant, span, (start, len) =>
        expectTiling(planSegments(start, start + len), start, start + len),
      ),
      { numRuns: 3000 },
    );
  });

  it("needs no raw events for any timezone's hour, day, week or month bucket (property)", () => {
    const instant = fc.integer({ min: at("2000-01-01T00:00:00Z"), max: at("2040-01-01T00:00:00Z") });
    fc.assert(
      fc.property(
        instant,
        fc.constantFrom(...ZONES),
        fc.constantFrom("hour", "day", "week", "month") as fc.Arbitrary<"hour" | "day" | "week" | "month">,
        (t, zone, tf) => {
          const s = floorTo(t, tf, zone);
          const e = nextBoundary(t, tf, zone);
          expect(s % MINUTE_MS).toBe(0);
          expect(e % MINUTE_MS).toBe(0);
          const segments = planSegments(s, e);
          expectTiling(segments, s, e);
          expect(segments.filter((x) => x.level === "raw")).toEqual([]);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("nextBoundary after a period that began in a gap", () => {
  it("ends the day and the month at the next local midnight (Lord Howe, 1 March 1981 began at 00:30)", () => {
    const zone = "Australia/Lord_Howe";
    const at = Date.parse("1981-02-28T14:10:00Z"); // 00:40 local on 1 March
    expect(new Date(floorTo(at, "day", zone)).toISOString()).toBe("1981-02-28T14:00:00.000Z");
    expect(new Date(nextBoundary(at, "day", zone)).toISOString()).toBe("1981-03-01T13:30:00.000Z");
    expect(new Date(nextBoundary(at, "month", zone)).toISOString()).toBe("1981-03-31T13:30:00.000Z");
  });
});

describe("bucketsBetween walks the calendar", () => {
  it("breaks exactly where nextBoundary does, across DST and odd offsets (property)", () => {
    const instant = fc.integer({ min: at("2000-01-01T00:00:00Z"), max: at("2040-01-01T00:00:00Z") });
    const tfs = fc.constantFrom("minute", "hour", "day", "week", "month") as fc.Arbitrary<
      "minute" | "hour" | "day" | "week" | "month"
    >;
    fc.assert(
      fc.property(
        instant,
        fc.constantFrom(...ZONES),
        tfs,
        fc.integer({ min: 1, max: 40 }),
        (t, zone, tf, n) => {
          const expected: number[] = [];
          let cursor = t;
          for (let i = 0; i < n; i++) {
            cursor = nextBoundary(cursor, tf, zone);
            expected.push(cursor);
          }
          const buckets = bucketsBetween(t, expected[n - 1], tf, zone);
          expect(buckets.map((b) => b.end)).toEqual(expected);
          expect(buckets[0].start).toBe(t);
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe("hours across Lord Howe's half-hour DST changes", () => {
  const zone = "Australia/Lord_Howe";
  it("ends the repeated hour when the clock next shows :00 (02:00+10:30 at 15:30Z)", () => {
    // 2027-04-04 02:00+11 -> 01:30+10:30 at 15:00Z: the local hour from 01:00+11 lasts 90 minutes
    const ends = bucketsBetween(at("2027-04-03T14:10:00Z"), at("2027-04-03T18:00:00Z"), "hour", zone).map(
      (b) => b.end,
    );
    expect(ends).toEqual([
      at("2027-04-03T15:30:00Z"),
      at("2027-04-03T16:30:00Z"),
      at("2027-04-03T17:30:00Z"),
      at("2027-04-03T18:00:00Z"),
    ]);
  });

  it("starts the shortened hour at 02:30+11 when 02:00-02:30 does not exist", () => {
    // 2025-10-05 02:00+10:30 -> 02:30+11 at 15:30Z
    const ends = bucketsBetween(at("2025-10-04T14:40:00Z"), at("2025-10-04T18:00:00Z"), "hour", zone).map(
      (b) => b.end,
    );
    expect(ends).toEqual([
      at("2025-10-04T15:30:00Z"),
      at("2025-10-04T16:00:00Z"),
      at("2025-10-04T17:00:00Z"),
      at("2025-10-04T18:00:00Z"),
    ]);
  });
});

describe("formatLocal", () => {
  it("labels an instant with its local time and offset, UTC as +00:00", () => {
    expect(formatLocal(at("2025-01-15T05:00:00Z"), "America/New_York")).toBe("2025-01-15T00:00:00-05:00");
    expect(formatLocal(at("2025-07-15T04:00:00Z"), "America/New_York")).toBe("2025-07-15T00:00:00-04:00");
    expect(formatLocal(at("2025-01-14T18:15:00Z"), "Asia/Kathmandu")).toBe("2025-01-15T00:00:00+05:45");
    expect(formatLocal(at("2025-01-15T00:00:00Z"), "UTC")).toBe("2025-01-15T00:00:00+00:00");
  });

  it("agrees with Luxon's own formatting in every zone (property)", () => {
    const instant = fc.integer({ min: at("1990-01-01T00:00:00Z"), max: at("2040-01-01T00:00:00Z") });
    fc.assert(
      fc.property(instant, fc.constantFrom(...ZONES), (t, zone) => {
        expect(formatLocal(t, zone)).toBe(
          DateTime.fromMillis(t, { zone }).toFormat("yyyy-MM-dd'T'HH:mm:ssZZ"),
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe("rollupBuckets", () => {
  it("floors an instant to its UTC minute, hour, four-hour block and day", () => {
    expect(rollupBuckets(at("2025-06-15T15:34:56.789Z"))).toEqual({
      minute: at("2025-06-15T15:34:00Z"),
      hour: at("2025-06-15T15:00:00Z"),
      fourHours: at("2025-06-15T12:00:00Z"),
      day: at("2025-06-15T00:00:00Z"),
    });
    // before the epoch too
    expect(rollupBuckets(at("1969-12-31T23:59:59.999Z"))).toEqual({
      minute: at("1969-12-31T23:59:00Z"),
      hour: at("1969-12-31T23:00:00Z"),
      fourHours: at("1969-12-31T20:00:00Z"),
      day: at("1969-12-31T00:00:00Z"),
    });
  });
});

describe("calendar buckets", () => {
  it("floors to local boundaries, weeks starting on Monday", () => {
    const t = at("2025-01-15T03:40:10Z"); // a Wednesday; 22:40 the day before in New York
    expect(floorTo(t, "minute", "UTC")).toBe(at("2025-01-15T03:40:00Z"));
    expect(floorTo(t, "hour", "Asia/Kathmandu")).toBe(at("2025-01-15T03:15:00Z"));
    expect(floorTo(t, "hour", "Asia/Kolkata")).toBe(at("2025-01-15T03:30:00Z"));
    expect(floorTo(t, "day", "America/New_York")).toBe(at("2025-01-14T05:00:00Z"));
    expect(floorTo(t, "week", "UTC")).toBe(at("2025-01-13T00:00:00Z"));
    expect(floorTo(t, "month", "America/New_York")).toBe(at("2025-01-01T05:00:00Z"));
  });

  it("has a 23-hour day and a 25-hour day at the DST changes", () => {
    const spring = at("2025-03-09T12:00:00Z");
    expect(nextBoundary(spring, "day", "America/New_York") - floorTo(spring, "day", "America/New_York")).toBe(
      23 * HOUR_MS,
    );
    const fall = at("2025-11-02T12:00:00Z");
    expect(nextBoundary(fall, "day", "America/New_York") - floorTo(fall, "day", "America/New_York")).toBe(
      25 * HOUR_MS,
    );
    // hours stay 60 minutes long across the repeated hour
    const repeated = at("2025-11-02T05:30:00Z"); // 01:30 EDT... then 01:30 EST an hour later
    expect(nextBoundary(repeated, "hour", "America/New_York")).toBe(at("2025-11-02T06:00:00Z"));
    expect(nextBoundary(repeated + HOUR_MS, "hour", "America/New_York")).toBe(at("2025-11-02T07:00:00Z"));
  });

  it("ceils to the smallest boundary at or after an instant", () => {
    expect(ceilTo(at("2025-01-15T00:00:00Z"), "day", "UTC")).toBe(at("2025-01-15T00:00:00Z"));
    expect(ceilTo(at("2025-01-15T00:00:01Z"), "day", "UTC")).toBe(at("2025-01-16T00:00:00Z"));
    expect(ceilTo(at("2025-01-31T10:00:00Z"), "month", "UTC")).toBe(at("2025-02-01T00:00:00Z"));
  });

  it("lists buckets tiling [start, end) on local boundaries (property)", () => {
    const instant = fc.integer({ min: at("2020-01-01T00:00:00Z"), max: at("2030-01-01T00:00:00Z") });
    const span = fc.oneof(fc.integer({ min: 0, max: 3 * HOUR_MS }), fc.integer({ min: 0, max: 10 * DAY_MS }));
    fc.assert(
      fc.property(
        instant,
        span,
        fc.constantFrom(...ZONES),
        fc.constantFrom(...TIMEFRAMES),
        (s, len, zone, tf) => {
          const e = s + (tf === "minute" ? Math.min(len, 3 * HOUR_MS) : tf === "hour" ? len : len * 4);
          const buckets = bucketsBetween(s, e, tf, zone);
          if (e <= s) {
            expect(buckets).toEqual([]);
            return;
          }
          expect(buckets[0].start).toBe(s);
          expect(buckets[buckets.length - 1].end).toBe(e);
          buckets.forEach((b, i) => {
            expect(b.end).toBeGreaterThan(b.start);
            if (i > 0) {
              expect(b.start).toBe(buckets[i - 1].end);
              expect(floorTo(b.start, tf, zone)).toBe(b.start);
            }
            if (i < buckets.length - 1) expect(floorTo(b.end, tf, zone)).toBe(b.end);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("detects the timeframe from the range as the seed says", () => {
    const s = at("2025-01-01T00:00:00Z");
    expect(autoTimeframe(s, s + 2 * HOUR_MS - 1)).toBe("minute");
    expect(autoTimeframe(s, s + 2 * HOUR_MS)).toBe("hour");
    expect(autoTimeframe(s, s + 2 * DAY_MS - 1)).toBe("hour");
    expect(autoTimeframe(s, s + 2 * DAY_MS)).toBe("day");
    expect(autoTimeframe(s, s + 64 * DAY_MS - 1)).toBe("day");
    expect(autoTimeframe(s, s + 64 * DAY_MS)).toBe("week");
    expect(autoTimeframe(s, s + 183 * DAY_MS - 1)).toBe("week");
    expect(autoTimeframe(s, s + 183 * DAY_MS)).toBe("month");
  });
});

describe("formatting and parsing", () => {
  it("formats local time with its offset", () => {
    expect(formatLocal(at("2025-01-15T05:00:00Z"), "America/New_York")).toBe("2025-01-15T00:00:00-05:00");
    expect(formatLocal(at("2025-01-15T05:00:00Z"), "UTC")).toBe("2025-01-15T05:00:00+00:00");
    expect(formatLocal(at("2025-01-15T05:00:00Z"), "Asia/Kathmandu")).toBe("2025-01-15T10:45:00+05:45");
    expect(formatUtc(at("2025-07-04T12:00:00Z"))).toBe("2025-07-04T12:00:00.000Z");
  });

  it("parses instants, reading date-only and offset-less values in the zone", () => {
    expect(parseInstant("2025-01-15T10:00:00Z")).toBe(at("2025-01-15T10:00:00Z"));
    expect(parseInstant("2025-01-15T10:00:00+05:30")).toBe(at("2025-01-15T04:30:00Z"));
    expect(parseInstant("2025-01-15", "America/New_York")).toBe(at("2025-01-15T05:00:00Z"));
    expect(parseInstant("2025-01-15T00:00:00", "Asia/Kolkata")).toBe(at("2025-01-14T18:30:00Z"));
    expect(parseInstant("2025-02-30")).toBeNull();
    expect(parseInstant("yesterday")).toBeNull();
    expect(parseInstant("")).toBeNull();
  });

  it("knows valid IANA zones", () => {
    expect(isValidZone("Asia/Kathmandu")).toBe(true);
    expect(isValidZone("UTC")).toBe(true);
    expect(isValidZone("Mars/Olympus")).toBe(false);
    expect(isValidZone("")).toBe(false);
  });
});
