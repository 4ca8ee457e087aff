import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventIdIndex, idHash } from "./event-id-index.ts";

describe("EventIdIndex", () => {
  it("returns every seq stored under a hash, including colliding ones, across growth", () => {
    const index = new EventIdIndex(4);
    for (let seq = 1; seq <= 1000; seq++)
      index.add(seq % 7 === 0 ? 42 : Math.imul(seq, 2654435761) >>> 0, seq);
    expect(index.size).toBe(1000);
    const colliding = [...index.candidates(42)].sort((a, b) => a - b);
    expect(colliding).toEqual(Array.from({ length: 142 }, (_, i) => (i + 1) * 7));
    expect([...index.candidates(Math.imul(5, 2654435761) >>> 0)]).toContain(5);
  });

  it("finds each added id exactly (property)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 300 }), (ids) => {
        const index = new EventIdIndex(8);
        ids.forEach((id, i) => {
          index.add(idHash("acct", id), i + 1);
        });
        ids.forEach((id, i) => {
          expect([...index.candidates(idHash("acct", id))]).toContain(i + 1);
        });
      }),
    );
  });

  it("hashes the account and the id apart", () => {
    expect(idHash("ab", "c")).not.toBe(idHash("a", "bc"));
    expect(idHash("a", "b")).toBe(idHash("a", "b"));
  });

  it("refuses seqs it cannot hold", () => {
    expect(() => new EventIdIndex().add(1, 0)).toThrow(RangeError);
    expect(() => new EventIdIndex().add(1, 2 ** 32)).toThrow(RangeError);
  });
});
