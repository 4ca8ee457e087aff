import { describe, expect, it } from "vitest";
import { usageEvent } from "../../test/support/events.ts";
import { parseDec } from "../domain/decimal.ts";
import { correctionDeltas, rollupDeltas, seriesKey } from "./rollup-delta.ts";

const T = Date.parse("2025-06-15T12:00:30Z");
const keyOf = (r: { level: number; bucketStart: number } & Parameters<typeof seriesKey>[0]) =>
  `${r.level}|${r.bucketStart}|${seriesKey(r)}`;

describe("correctionDeltas", () => {
  const before = usageEvent({
    accountId: "a",
    eventId: "e",
    ts: T,
    quantity: parseDec("2"),
    cost: parseDec("2"),
  });

  it("folds a correction's minus and plus rows into one row per rollup key", () => {
    const after = { ...before, quantity: parseDec("3"), cost: parseDec("3.5"), tokensPrompt: 4 };
    const rows = correctionDeltas(before, after);
    // one event: 4 levels x 2 families, each once
    expect(rows).toHaveLength(8);
    expect(new Set(rows.map(keyOf)).size).toBe(8);
    for (const r of rows) {
      expect(r.requests).toBe(0);
      expect(r.quantity).toBe(1_000_000n); // micro units
      expect(r.costNano * 1_000_000_000n + r.costAtto).toBe(parseDec("1.5")); // atto units
      expect(r.costAtto >= 0n && r.costAtto < 1_000_000_000n).toBe(true);
      expect(r.tokensPrompt).toBe(4);
    }
  });

  it("a new price is another series: its rows are taken from one and added to the other", () => {
    const after = { ...before, unitPrice: parseDec("0.5") };
    const rows = correctionDeltas(before, after);
    expect(rows).toHaveLength(16);
    expect(rows.filter((r) => r.requests === -1)).toHaveLength(8);
    expect(rows.filter((r) => r.requests === 1)).toHaveLength(8);
  });

  it("a deletion takes the event out", () => {
    expect(correctionDeltas(before, null)).toEqual(rollupDeltas([before], -1));
  });
});
