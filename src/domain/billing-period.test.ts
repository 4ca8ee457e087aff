import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextPeriod, periodContaining, periodOfLabel, previousPeriod } from "./billing-period.ts";
import { DomainError } from "./errors.ts";

const utc = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

describe("calendar months in the billing timezone", () => {
  it("Los Angeles: November 2026 starts on the day DST ends (PDT) and ends in PST, 30 days and 1 hour", () => {
    const nov = periodOfLabel("2026-11", "America/Los_Angeles");
    expect(iso(nov.start)).toBe("2026-11-01T07:00:00.000Z");
    expect(iso(nov.end)).toBe("2026-12-01T08:00:00.000Z");
    expect(nov.end - nov.start).toBe((30 * 24 + 1) * 60 * MIN);
    expect(previousPeriod(nov).end).toBe(nov.start);
    expect(iso(previousPeriod(nov).start)).toBe("2026-10-01T07:00:00.000Z");
  });

  it("Los Angeles: March 2026 (DST starts on the 8th) is 31 days less 1 hour", () => {
    const mar = periodOfLabel("2026-03", "America/Los_Angeles");
    expect(iso(mar.start)).toBe("2026-03-01T08:00:00.000Z");
    expect(iso(mar.end)).toBe("2026-04-01T07:00:00.000Z");
  });

  it.each([
    // zone, local midnight starting December 2026 in UTC
    ["America/Los_Angeles", "2026-12-01T08:00:00.000Z"],
    ["America/Los_Angeles", "2026-11-01T07:00:00.000Z"],
    ["Asia/Kolkata", "2026-11-30T18:30:00.000Z"],
    ["Asia/Kathmandu", "2026-11-30T18:15:00.000Z"],
    ["UTC", "2026-12-01T00:00:00.000Z"],
  ])("%s: events minutes either side of local midnight at %s land in the right month", (zone, midnight) => {
    const at = utc(midnight);
    const before = periodContaining(at - 2 * MIN, zone);
    const after = periodContaining(at + 2 * MIN, zone);
    const exact = periodContaining(at, zone);
    expect(before.end).toBe(at);
    expect(after.start).toBe(at);
    expect(exact.start).toBe(at);
    expect(nextPeriod(before)).toEqual(after);
    const month = (label: string) => Number(label.slice(5));
    expect(month(after.label)).toBe((month(before.label) % 12) + 1);
  });

  it("an instant is in different months in different zones", () => {
    const at = utc("2026-11-30T18:40:00Z");
    expect(periodContaining(at, "Asia/Kolkata").label).toBe("2026-12");
    expect(periodContaining(at, "Asia/Kathmandu").label).toBe("2026-12");
    expect(periodContaining(at, "UTC").label).toBe("2026-11");
    expect(periodContaining(utc("2026-11-01T06:59:00Z"), "America/Los_Angeles").label).toBe("2026-10");
  });

  it("the next period of December is January of the next year", () => {
    const dec = periodOfLabel("2026-12", "Asia/Kolkata");
    expect(nextPeriod(dec).label).toBe("2027-01");
    expect(iso(nextPeriod(dec).start)).toBe("2026-12-31T18:30:00.000Z");
  });

  it("a month that began in a gap ends at the next month's midnight (Lord Howe, March 1981)", () => {
    // 1 March 1981 00:00 did not exist there (+10:00 -> +10:30): March began at 00:30
    const march = periodContaining(Date.parse("1981-03-10T00:00:00Z"), "Australia/Lord_Howe");
    expect(iso(march.start)).toBe("1981-02-28T14:00:00.000Z");
    expect(iso(march.end)).toBe("1981-03-31T13:30:00.000Z");
    expect(nextPeriod(march).start).toBe(march.end);
  });

  it("periods tile time in any zone: the containing period holds the instant and the next starts at its end", () => {
    const zones = fc.constantFrom(
      "UTC",
      "America/Los_Angeles",
      "Asia/Kolkata",
      "Asia/Kathmandu",
      "Australia/Lord_Howe",
      "Pacific/Chatham",
    );
    fc.assert(
      fc.property(
        fc.integer({ min: utc("1971-01-01T00:00:00Z"), max: utc("2060-01-01T00:00:00Z") }),
        zones,
        (at, zone) => {
          const p = periodContaining(at, zone);
          expect(p.start <= at && at < p.end).toBe(true);
          expect(nextPeriod(p).start).toBe(p.end);
          expect(periodOfLabel(p.label, zone)).toEqual(p);
        },
      ),
    );
  });

  it("rejects a bad label or zone naming the field", () => {
    for (const label of ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01"]) {
      expect(() => periodOfLabel(label, "UTC")).toThrow(DomainError);
      expect(() => periodOfLabel(label, "UTC")).toThrow(/^period: /);
    }
    expect(() => periodContaining(0, "Mars/Olympus")).toThrow(/^billing_timezone: /);
  });
});
