import { validate, version } from "uuid";
import { describe, expect, it } from "vitest";
import { uuid7 } from "./ids.ts";

describe("uuid7", () => {
  it("makes valid version-7 UUIDs, each different, across refills of the random pool", () => {
    const ids = Array.from({ length: 2000 }, () => uuid7());
    for (const id of ids) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("sorts in the order the ids were made, within one millisecond too", () => {
    const ids = Array.from({ length: 5000 }, () => uuid7());
    expect([...ids].sort()).toEqual(ids);
  });

  it("carries the time it was made in its first 48 bits", () => {
    const before = Date.now();
    const id = uuid7();
    const at = Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now() + 1);
  });
});
