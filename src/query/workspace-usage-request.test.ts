import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors.ts";
import { formatLocal } from "../domain/time.ts";
import {
  decodeCursor,
  encodeCursor,
  pageOfBuckets,
  parseWorkspaceUsageQuery,
  type RawQuery,
  readQueryInstant,
} from "./workspace-usage-request.ts";

/**
 * Expected buckets are written out by hand from the calendar (offsets, DST dates), never computed
 * by the code under test: each case lists [UTC start, UTC end, local label] of every bucket.
 */

const NOW = Date.parse("2025-06-15T12:34:56.789Z");
const H = 3_600_000;
const M = 60_000;

function resolve(query: RawQuery, now = NOW) {
  const req = parseWorkspaceUsageQuery(query, now);
  const { buckets, hasMore } = pageOfBuckets(req.range, req.timeframe, req.zone, 1, 1000);
  return { req, buckets, hasMore };
}

/** [utcStart, utcEnd, label] for each bucket, as the API would list it. */
function listed(query: RawQuery): [string, string, string][] {
  const { req, buckets } = resolve(query);
  return buckets.map((b) => [
    new Date(b.start).toISOString(),
    new Date(b.end).toISOString(),
    formatLocal(b.start, req.zone),
  ]);
}

function errorOf(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error("expected a DomainError");
}

/** Hourly buckets from a hand-written UTC start, one absolute hour each. */
function hours(firstUtc: string, n: number): [string, string][] {
  const s = Date.parse(firstUtc);
  return Array.from({ length: n }, (_, i) => [
    new Date(s + i * H).toISOString(),
    new Date(s + (i + 1) * H).toISOString(),
  ]);
}

describe("buckets in New York across the 2025 DST changes", () => {
  it("spring forward: 2025-03-09 is a 23-hour day", () => {
    expect(
      listed({ start: "2025-03-08", end: "2025-03-11", timezone: "America/New_York", timeframe: "day" }),
    ).toEqual([
      ["2025-03-08T05:00:00.000Z", "2025-03-09T05:00:00.000Z", "2025-03-08T00:00:00-05:00"],
      ["2025-03-09T05:00:00.000Z", "2025-03-10T04:00:00.000Z", "2025-03-09T00:00:00-05:00"],
      ["2025-03-10T04:00:00.000Z", "2025-03-11T04:00:00.000Z", "2025-03-10T00:00:00-04:00"],
    ]);
  });

  it("fall back: 2025-11-02 is a 25-hour day", () => {
    expect(
      listed({ start: "2025-11-01", end: "2025-11-04", timezone: "America/New_York", timeframe: "day" }),
    ).toEqual([
      ["2025-11-01T04:00:00.000Z", "2025-11-02T04:00:00.000Z", "2025-11-01T00:00:00-04:00"],
      ["2025-11-02T04:00:00.000Z", "2025-11-03T05:00:00.000Z", "2025-11-02T00:00:00-04:00"],
      ["2025-11-03T05:00:00.000Z", "2025-11-04T05:00:00.000Z", "2025-11-03T00:00:00-05:00"],
    ]);
  });

  it("hours of 2025-03-09: 23 of them, local 02:00 never happens", () => {
    const got = listed({ start: "2025-03-09", end: "2025-03-10", timezone: "America/New_York" });
    expect(got.map(([s, e]) => [s, e])).toEqual(hours("2025-03-09T05:00:00Z", 23));
    expect(got.slice(0, 4).map((b) => b[2])).toEqual([
      "2025-03-09T00:00:00-05:00",
      "2025-03-09T01:00:00-05:00",
      "2025-03-09T03:00:00-04:00",
      "2025-03-09T04:00:00-04:00",
    ]);
    expect(got[22][2]).toBe("2025-03-09T23:00:00-04:00");
  });

  it("hours of 2025-11-02: 25 of them, local 01:00 twice", () => {
    const got = listed({ start: "2025-11-02", end: "2025-11-03", timezone: "America/New_York" });
    expect(got.map(([s, e]) => [s, e])).toEqual(hours("2025-11-02T04:00:00Z", 25));
    expect(got.slice(0, 4).map((b) => b[2])).toEqual([
      "2025-11-02T00:00:00-04:00",
      "2025-11-02T01:00:00-04:00",
      "2025-11-02T01:00:00-05:00",
      "2025-11-02T02:00:00-05:00",
    ]);
    expect(got[24][2]).toBe("2025-11-02T23:00:00-05:00");
  });

  it("a week across spring forward is 167 hours, from Monday", () => {
    // 2025-03-05 is a Wednesday; 2025-03-12 too
    expect(
      listed({ start: "2025-03-05", end: "2025-03-12", timezone: "America/New_York", timeframe: "week" }),
    ).toEqual([
      ["2025-03-03T05:00:00.000Z", "2025-03-10T04:00:00.000Z", "2025-03-03T00:00:00-05:00"],
      ["2025-03-10T04:00:00.000Z", "2025-03-17T04:00:00.000Z", "2025-03-10T00:00:00-04:00"],
    ]);
  });

  it("months change offset with DST", () => {
    expect(
      listed({ start: "2025-02-10", end: "2025-04-02", timezone: "America/New_York", timeframe: "month" }),
    ).toEqual([
      ["2025-02-01T05:00:00.000Z", "2025-03-01T05:00:00.000Z", "2025-02-01T00:00:00-05:00"],
      ["2025-03-01T05:00:00.000Z", "2025-04-01T04:00:00.000Z", "2025-03-01T00:00:00-05:00"],
      ["2025-04-01T04:00:00.000Z", "2025-05-01T04:00:00.000Z", "2025-04-01T00:00:00-04:00"],
    ]);
  });
});

describe("buckets in half- and quarter-hour zones", () => {
  it("Asia/Kolkata (+05:30): days start at 18:30Z", () => {
    expect(
      listed({ start: "2025-01-01", end: "2025-01-03", timezone: "Asia/Kolkata", timeframe: "day" }),
    ).toEqual([
      ["2024-12-31T18:30:00.000Z", "2025-01-01T18:30:00.000Z", "2025-01-01T00:00:00+05:30"],
      ["2025-01-01T18:30:00.000Z", "2025-01-02T18:30:00.000Z", "2025-01-02T00:00:00+05:30"],
    ]);
  });

  it("Asia/Kolkata: hours break at :30 UTC", () => {
    expect(
      listed({
        start: "2025-01-01T10:10:00Z",
        end: "2025-01-01T12:00:00Z",
        timezone: "Asia/Kolkata",
        timeframe: "hour",
      }),
    ).toEqual([
      ["2025-01-01T09:30:00.000Z", "2025-01-01T10:30:00.000Z", "2025-01-01T15:00:00+05:30"],
      ["2025-01-01T10:30:00.000Z", "2025-01-01T11:30:00.000Z", "2025-01-01T16:00:00+05:30"],
      ["2025-01-01T11:30:00.000Z", "2025-01-01T12:30:00.000Z", "2025-01-01T17:00:00+05:30"],
    ]);
  });

  it("Asia/Kathmandu (+05:45): days start at 18:15Z", () => {
    expect(
      listed({ start: "2025-01-01", end: "2025-01-03", timezone: "Asia/Kathmandu", timeframe: "day" }),
    ).toEqual([
      ["2024-12-31T18:15:00.000Z", "2025-01-01T18:15:00.000Z", "2025-01-01T00:00:00+05:45"],
      ["2025-01-01T18:15:00.000Z", "2025-01-02T18:15:00.000Z", "2025-01-02T00:00:00+05:45"],
    ]);
  });

  it("Asia/Kathmandu: hours break at :15 UTC", () => {
    expect(
      listed({
        start: "2025-01-01T00:00:00Z",
        end: "2025-01-01T01:00:00Z",
        timezone: "Asia/Kathmandu",
        timeframe: "hour",
      }),
    ).toEqual([
      ["2024-12-31T23:15:00.000Z", "2025-01-01T00:15:00.000Z", "2025-01-01T05:00:00+05:45"],
      ["2025-01-01T00:15:00.000Z", "2025-01-01T01:15:00.000Z", "2025-01-01T06:00:00+05:45"],
    ]);
  });
});

describe("buckets in UTC", () => {
  it("weeks start on Monday (2025-01-01 is a Wednesday)", () => {
    expect(listed({ start: "2025-01-01", end: "2025-01-20", timeframe: "week" })).toEqual([
      ["2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z", "2024-12-30T00:00:00+00:00"],
      ["2025-01-06T00:00:00.000Z", "2025-01-13T00:00:00.000Z", "2025-01-06T00:00:00+00:00"],
      ["2025-01-13T00:00:00.000Z", "2025-01-20T00:00:00.000Z", "2025-01-13T00:00:00+00:00"],
    ]);
  });

  it("months of 28, 31 and 30 days", () => {
    expect(listed({ start: "2025-02-15", end: "2025-04-10", timeframe: "month" })).toEqual([
      ["2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z", "2025-02-01T00:00:00+00:00"],
      ["2025-03-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z", "2025-03-01T00:00:00+00:00"],
      ["2025-04-01T00:00:00.000Z", "2025-05-01T00:00:00.000Z", "2025-04-01T00:00:00+00:00"],
    ]);
  });

  it("defaults: the last 24 hours, hourly, bound to whole hours", () => {
    const { req, buckets } = resolve({});
    expect(req.zone).toBe("UTC");
    expect(req.timeframe).toBe("hour");
    expect(req.bound).toBe(true);
    expect([...req.expand]).toEqual(["time_series"]);
    expect(req.limit).toBe(50);
    expect(req.page).toBe(1);
    expect(req.endpointIds).toBeUndefined();
    // now - 24h = 2025-06-14T12:34:56.789Z floors to 12:00; now ceils to 13:00
    expect(req.range).toEqual({
      start: Date.parse("2025-06-14T12:00:00Z"),
      end: Date.parse("2025-06-15T13:00:00Z"),
    });
    expect(buckets).toHaveLength(25);
  });
});

describe("bound_to_timeframe=false", () => {
  it("keeps [start, end) exact; buckets still break at local hour boundaries", () => {
    // 01:30 EST = 06:30Z; 05:00 EDT = 09:00Z; local 02:00 does not exist that day
    expect(
      listed({
        start: "2025-03-09T01:30:00",
        end: "2025-03-09T05:00:00",
        timezone: "America/New_York",
        timeframe: "hour",
        bound_to_timeframe: "false",
      }),
    ).toEqual([
      ["2025-03-09T06:30:00.000Z", "2025-03-09T07:00:00.000Z", "2025-03-09T01:30:00-05:00"],
      ["2025-03-09T07:00:00.000Z", "2025-03-09T08:00:00.000Z", "2025-03-09T03:00:00-04:00"],
      ["2025-03-09T08:00:00.000Z", "2025-03-09T09:00:00.000Z", "2025-03-09T04:00:00-04:00"],
    ]);
  });

  it("days in Kolkata: partial first and last days", () => {
    expect(
      listed({
        start: "2025-01-01T12:00:00+05:30",
        end: "2025-01-03T06:00:00+05:30",
        timezone: "Asia/Kolkata",
        timeframe: "day",
        bound_to_timeframe: "false",
      }),
    ).toEqual([
      ["2025-01-01T06:30:00.000Z", "2025-01-01T18:30:00.000Z", "2025-01-01T12:00:00+05:30"],
      ["2025-01-01T18:30:00.000Z", "2025-01-02T18:30:00.000Z", "2025-01-02T00:00:00+05:30"],
      ["2025-01-02T18:30:00.000Z", "2025-01-03T00:30:00.000Z", "2025-01-03T00:00:00+05:30"],
    ]);
  });

  it("bound=true on the same input floors and ceils", () => {
    const { req } = resolve({
      start: "2025-01-01T12:00:00+05:30",
      end: "2025-01-03T06:00:00+05:30",
      timezone: "Asia/Kolkata",
      timeframe: "day",
    });
    expect(req.range).toEqual({
      start: Date.parse("2024-12-31T18:30:00Z"),
      end: Date.parse("2025-01-03T18:30:00Z"),
    });
  });
});

describe("timeframe auto-detection from the raw range", () => {
  const base = "2025-01-01T00:00:00.000Z";
  const at = (ms: number) => new Date(Date.parse(base) + ms).toISOString();
  const D = 24 * H;
  it.each([
    [2 * H - 1, "minute"],
    [2 * H, "hour"],
    [2 * D - 1, "hour"],
    [2 * D, "day"],
    [64 * D - 1, "day"],
    [64 * D, "week"],
    [183 * D - 1, "week"],
    [183 * D, "month"],
  ])("a span of %i ms is %s", (span, timeframe) => {
    expect(resolve({ start: base, end: at(span) }).req.timeframe).toBe(timeframe);
  });

  it("measures absolute time: two New York days across spring forward are 47 hours -> hour", () => {
    expect(
      resolve({ start: "2025-03-09", end: "2025-03-11", timezone: "America/New_York" }).req.timeframe,
    ).toBe("hour");
  });

  it("two New York days across fall back are 49 hours -> day", () => {
    expect(
      resolve({ start: "2025-11-02", end: "2025-11-04", timezone: "America/New_York" }).req.timeframe,
    ).toBe("day");
  });

  it("the detected timeframe sets the bucket count (minute: 120 buckets for 2h - 1ms)", () => {
    expect(resolve({ start: base, end: at(2 * H - 1) }).buckets).toHaveLength(120);
  });
});

describe("instants", () => {
  it("date-only is midnight in the timezone; offset-less date-times are read in it", () => {
    expect(readQueryInstant("start", "2025-01-15", "America/New_York")).toBe(
      Date.parse("2025-01-15T05:00:00Z"),
    );
    expect(readQueryInstant("start", "2025-01-15T10:00:00", "America/New_York")).toBe(
      Date.parse("2025-01-15T15:00:00Z"),
    );
    expect(readQueryInstant("start", "2025-01-15T10:00", "Asia/Kathmandu")).toBe(
      Date.parse("2025-01-15T04:15:00Z"),
    );
    expect(readQueryInstant("start", "2025-01-15T10:00:00Z", "America/New_York")).toBe(
      Date.parse("2025-01-15T10:00:00Z"),
    );
    expect(readQueryInstant("start", "2025-01-15T10:00:00.250-03:00", "UTC")).toBe(
      Date.parse("2025-01-15T13:00:00.250Z"),
    );
  });

  it("a '+' offset decoded to a space by form decoding is read as '+'", () => {
    expect(readQueryInstant("end", "2025-01-15T10:00:00 05:30", "UTC")).toBe(
      Date.parse("2025-01-15T04:30:00Z"),
    );
  });

  it.each([
    "yesterday",
    "2025-13-01",
    "2025-02-30",
    "2025-01-15T25:00:00Z",
    "2025",
    "2025-W03",
    "1736899200000",
    "",
  ])("refuses %j", (text) => {
    expect(errorOf(() => readQueryInstant("start", text, "UTC")).message).toMatch(
      /^query\.start: must be a date/,
    );
  });
});

describe("cursor", () => {
  it("is the base64 of the page number", () => {
    expect(encodeCursor(2)).toBe("Mg==");
    expect(encodeCursor(10)).toBe("MTA=");
    expect(decodeCursor("Mg==")).toBe(2);
    expect(decodeCursor("Mg")).toBe(2);
    expect(decodeCursor("MTA=")).toBe(10);
    expect(decodeCursor("MQ==")).toBe(1);
  });

  it.each([
    ["abc", "not base64 of a number"],
    ["MA==", "page 0"],
    ["LTE=", "page -1"],
    ["Mi41", "page 2.5"],
    ["MDI=", "page 02"],
    ["!!", "not base64"],
    ["Mg===", "bad padding"],
  ])("refuses %s (%s)", (cursor) => {
    const e = errorOf(() => decodeCursor(cursor));
    expect(e.code).toBe("VALIDATION");
    expect(e.message).toMatch(/^query\.cursor: /);
  });
});

describe("paging over buckets", () => {
  const range = { start: Date.parse("2025-01-01T00:00:00Z"), end: Date.parse("2025-01-02T01:00:00Z") };
  it("pages of 10 over 25 hourly buckets: 10, 10, 5, then nothing", () => {
    const p1 = pageOfBuckets(range, "hour", "UTC", 1, 10);
    const p2 = pageOfBuckets(range, "hour", "UTC", 2, 10);
    const p3 = pageOfBuckets(range, "hour", "UTC", 3, 10);
    const p4 = pageOfBuckets(range, "hour", "UTC", 4, 10);
    expect([p1.buckets.length, p2.buckets.length, p3.buckets.length, p4.buckets.length]).toEqual([
      10, 10, 5, 0,
    ]);
    expect([p1.hasMore, p2.hasMore, p3.hasMore, p4.hasMore]).toEqual([true, true, false, false]);
    expect(p2.buckets[0]).toEqual({
      start: Date.parse("2025-01-01T10:00:00Z"),
      end: Date.parse("2025-01-01T11:00:00Z"),
    });
    expect(p3.buckets[4]).toEqual({
      start: Date.parse("2025-01-02T00:00:00Z"),
      end: Date.parse("2025-01-02T01:00:00Z"),
    });
  });

  it("an exact multiple has no further page", () => {
    const p = pageOfBuckets(range, "hour", "UTC", 1, 25);
    expect(p.buckets).toHaveLength(25);
    expect(p.hasMore).toBe(false);
  });
});

describe("other parameters", () => {
  it("endpoint_id: comma-separated and repeated, trimmed, duplicates once", () => {
    expect(resolve({ endpoint_id: ["a,b", " c ", "a"] }).req.endpointIds).toEqual(["a", "b", "c"]);
    expect(resolve({ endpoint_id: "fal-ai/flux/dev" }).req.endpointIds).toEqual(["fal-ai/flux/dev"]);
    const fifty = Array.from({ length: 50 }, (_, i) => `m${i}`);
    expect(resolve({ endpoint_id: fifty.join(",") }).req.endpointIds).toHaveLength(50);
  });

  it("expand: comma-separated and repeated", () => {
    expect([...resolve({ expand: "summary,auth_method" }).req.expand].sort()).toEqual([
      "auth_method",
      "summary",
    ]);
    expect([...resolve({ expand: ["time_series", "summary"] }).req.expand].sort()).toEqual([
      "summary",
      "time_series",
    ]);
  });

  it("limit 1 and 1000 are accepted; a cursor sets the page", () => {
    expect(resolve({ limit: "1" }).req.limit).toBe(1);
    expect(resolve({ limit: "1000" }).req.limit).toBe(1000);
    expect(resolve({ cursor: "Mw==" }).req.page).toBe(3);
  });

  it("any IANA zone; bound_to_timeframe=true is the default", () => {
    expect(resolve({ timezone: "Australia/Lord_Howe" }).req.zone).toBe("Australia/Lord_Howe");
    expect(resolve({ bound_to_timeframe: "true" }).req.bound).toBe(true);
  });

  it("exactly the maximum of buckets is accepted: 10,000 minutes", () => {
    const end = new Date(Date.parse("2025-01-01T00:00:00Z") + 10_000 * M).toISOString();
    const { req } = resolve({ start: "2025-01-01T00:00:00Z", end, timeframe: "minute" });
    expect(req.range.end - req.range.start).toBe(10_000 * M);
  });
});

describe("every 400", () => {
  const cases: [string, RawQuery, RegExp][] = [
    [
      "unknown timezone",
      { timezone: "Mars/Olympus" },
      /^query\.timezone: unknown IANA timezone 'Mars\/Olympus'$/,
    ],
    ["empty timezone", { timezone: "" }, /^query\.timezone: /],
    [
      "unknown timeframe",
      { timeframe: "year" },
      /^query\.timeframe: must be one of minute, hour, day, week, month$/,
    ],
    [
      "bad bound_to_timeframe",
      { bound_to_timeframe: "yes" },
      /^query\.bound_to_timeframe: must be 'true' or 'false'$/,
    ],
    ["bad start", { start: "soon" }, /^query\.start: must be a date/],
    ["bad end", { end: "2025-02-30" }, /^query\.end: must be a date/],
    ["start = end", { start: "2025-01-01", end: "2025-01-01" }, /^query\.start: must be before end/],
    ["start > end", { start: "2025-01-02", end: "2025-01-01" }, /^query\.start: must be before end/],
    ["start in the future, end defaulted", { start: "2025-06-16" }, /^query\.start: must be before end/],
    ["empty endpoint_id", { endpoint_id: "" }, /^query\.endpoint_id: must name at least one/],
    ["only commas", { endpoint_id: ",," }, /^query\.endpoint_id: must name at least one/],
    [
      "51 endpoint ids",
      { endpoint_id: Array.from({ length: 51 }, (_, i) => `m${i}`) },
      /^query\.endpoint_id: must name at most 50 endpoint ids$/,
    ],
    ["an endpoint id too long", { endpoint_id: "x".repeat(201) }, /^query\.endpoint_id: /],
    ["unknown expand", { expand: "time_series,charts" }, /^query\.expand: unknown value 'charts'/],
    [
      "expand without time_series or summary",
      { expand: "auth_method" },
      /^query\.expand: must include time_series or summary$/,
    ],
    ["limit 0", { limit: "0" }, /^query\.limit: must be at least 1$/],
    ["limit 1001", { limit: "1001" }, /^query\.limit: must be at most 1000$/],
    ["limit not a number", { limit: "ten" }, /^query\.limit: must be an integer$/],
    ["limit fractional", { limit: "1.5" }, /^query\.limit: must be an integer$/],
    ["limit negative", { limit: "-1" }, /^query\.limit: must be an integer$/],
    ["limit twice", { limit: ["1", "2"] }, /^query\.limit: must be given at most once$/],
    ["bad cursor", { cursor: "page2" }, /^query\.cursor: /],
    [
      "a minute timeframe over a year",
      { start: "2024-01-01", end: "2025-01-01", timeframe: "minute" },
      /^query\.timeframe: the range spans more than 10000 minute buckets/,
    ],
    [
      "10,001 minutes",
      { start: "2025-01-01T00:00:00Z", end: "2025-01-07T22:41:00Z", timeframe: "minute" },
      /^query\.timeframe: the range spans more than 10000 minute buckets/,
    ],
  ];
  it.each(cases)("%s", (_name, query, message) => {
    const e = errorOf(() => parseWorkspaceUsageQuery(query, NOW));
    expect(e.code).toBe("VALIDATION");
    expect(e.message).toMatch(message);
  });
});
