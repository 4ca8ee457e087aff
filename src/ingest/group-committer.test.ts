import { describe, expect, it } from "vitest";
import type { Store, UsageEvent } from "../store/store.ts";
import { GroupCommitter } from "./group-committer.ts";

/** A store that records the size of each append transaction. */
function countingStore(): { store: Store; groups: number[] } {
  const groups: number[] = [];
  const store = {
    async appendEvents(events: UsageEvent[]) {
      groups.push(events.length);
      return events.map((e) => ({ status: "inserted" as const, usageId: e.usageId }));
    },
  } as unknown as Store;
  return { store, groups };
}

const event = (n: number) => ({ usageId: `u${n}` }) as UsageEvent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("GroupCommitter linger", () => {
  it("events submitted with a linger within its window share one commit", async () => {
    const { store, groups } = countingStore();
    const c = new GroupCommitter(store);
    const first = c.submit([event(1)], 50);
    await sleep(10);
    const second = c.submit([event(2)], 50);
    expect(groups).toEqual([]);
    await Promise.all([first, second]);
    expect(groups).toEqual([2]);
  });

  it("a submit without linger commits the lingering ones with it at once", async () => {
    const { store, groups } = countingStore();
    const c = new GroupCommitter(store);
    const lingering = c.submit([event(1)], 10_000);
    const started = performance.now();
    await Promise.all([lingering, c.submit([event(2)])]);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(groups).toEqual([2]);
  });

  it("idle() commits lingering events without waiting out the linger", async () => {
    const { store, groups } = countingStore();
    const c = new GroupCommitter(store);
    const lingering = c.submit([event(1)], 10_000);
    await c.idle();
    expect(groups).toEqual([1]);
    await expect(lingering).resolves.toEqual([{ status: "inserted", usageId: "u1" }]);
  });
});
