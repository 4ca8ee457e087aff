import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KeyUseRecorder } from "../../src/auth/authenticator.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";

const T = Date.parse("2025-06-15T12:00:00Z");

describe("KeyUseRecorder", () => {
  let store: SqliteStore;
  beforeEach(async () => {
    vi.useFakeTimers();
    store = new SqliteStore(":memory:");
    await store.createAccount({ id: "a", name: "A", isEnabled: true, planId: null, createdAt: T });
    for (const id of ["k1", "k2"]) {
      await store.createKey({
        id,
        userId: null,
        accountId: "a",
        isRoot: false,
        label: id,
        prefix: "tly_x",
        hash: id.repeat(32),
        createdAt: T,
        lastUsedAt: null,
        revokedAt: null,
      });
    }
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
  });

  it("writes each key's latest use within a second, in one write of its own", async () => {
    const recorder = new KeyUseRecorder(store);
    const touchKeys = vi.spyOn(store, "touchKeys");
    recorder.touch("k1", T + 10);
    recorder.touch("k1", T + 5); // an earlier use never moves it back
    recorder.touch("k2", T + 7);
    await vi.advanceTimersByTimeAsync(999);
    expect((await store.getKey("k1"))?.lastUsedAt).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect((await store.getKey("k1"))?.lastUsedAt).toBe(T + 10);
    expect((await store.getKey("k2"))?.lastUsedAt).toBe(T + 7);
    expect(touchKeys).toHaveBeenCalledTimes(1);
    // nothing pending: no write
    await vi.advanceTimersByTimeAsync(5_000);
    expect(touchKeys).toHaveBeenCalledTimes(1);
  });

  it("keeps uses whose write failed and writes them with the next batch", async () => {
    const recorder = new KeyUseRecorder(store);
    vi.spyOn(store, "touchKeys").mockRejectedValueOnce(new Error("database is locked"));
    recorder.touch("k1", T + 10);
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await store.getKey("k1"))?.lastUsedAt).toBeNull();
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await store.getKey("k1"))?.lastUsedAt).toBe(T + 10);
  });
});
