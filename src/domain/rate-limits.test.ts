import { describe, expect, it } from "vitest";
import { hasRoom, limitStatus, windowEnd, windowStart } from "./rate-limits.ts";

const at = Date.parse("2025-06-15T12:34:56.789Z");

describe("rate windows", () => {
  it("are the UTC minute and UTC day containing the instant", () => {
    expect(new Date(windowStart(at, "minute")).toISOString()).toBe("2025-06-15T12:34:00.000Z");
    expect(new Date(windowEnd(at, "minute")).toISOString()).toBe("2025-06-15T12:35:00.000Z");
    expect(new Date(windowStart(at, "day")).toISOString()).toBe("2025-06-15T00:00:00.000Z");
    expect(new Date(windowEnd(at, "day")).toISOString()).toBe("2025-06-16T00:00:00.000Z");
    const boundary = Date.parse("2025-06-15T12:35:00Z");
    expect(windowStart(boundary, "minute")).toBe(boundary);
  });

  it("admit while both windows are under their limits; null is unlimited", () => {
    expect(hasRoom({ perMinute: 2, perDay: 10 }, { minute: 1, day: 9 })).toBe(true);
    expect(hasRoom({ perMinute: 2, perDay: 10 }, { minute: 2, day: 0 })).toBe(false);
    expect(hasRoom({ perMinute: 2, perDay: 10 }, { minute: 0, day: 10 })).toBe(false);
    expect(hasRoom({ perMinute: null, perDay: null }, { minute: 1e9, day: 1e9 })).toBe(true);
    expect(hasRoom({ perMinute: 0, perDay: null }, { minute: 0, day: 0 })).toBe(false);
  });

  it("report the tighter window, remaining never below 0", () => {
    const s = limitStatus({ perMinute: 5, perDay: 100 }, { minute: 7, day: 7 }, at);
    expect(s.minute.remaining).toBe(0);
    expect(s.day.remaining).toBe(93);
    expect(s.binding?.window).toBe("minute");
    const tie = limitStatus({ perMinute: 5, perDay: 5 }, { minute: 5, day: 5 }, at);
    expect(tie.binding?.window).toBe("day");
    const dayOnly = limitStatus({ perMinute: null, perDay: 5 }, { minute: 1, day: 1 }, at);
    expect(dayOnly.binding).toEqual({
      window: "day",
      limit: 5,
      used: 1,
      remaining: 4,
      resetAt: Date.parse("2025-06-16T00:00:00Z"),
    });
    expect(limitStatus({ perMinute: null, perDay: null }, { minute: 1, day: 1 }, at).binding).toBeNull();
  });
});
