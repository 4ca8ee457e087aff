import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import {
  backoffDelay,
  DEFAULT_RETRY,
  readSpool,
  retryAfterMs,
  TallyClient,
  uuidv7,
} from "../../packages/client/src/index.ts";
import { parseCsvLine } from "../../src/cli/remote/events-send.ts";

/** The SDK's pure parts, and its batching against a scripted fetch (no server, no sockets). */

function scriptedFetch(answer: (n: number, body: { events: { id: string }[] }) => Response) {
  const bodies: { events: { id: string }[] }[] = [];
  const impl = (async (_url: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body));
    bodies.push(body);
    return answer(bodies.length - 1, body);
  }) as typeof fetch;
  return { impl, bodies };
}

const okFor = (body: { events: { id: string }[] }) =>
  Response.json({
    accepted: body.events.length,
    duplicates: 0,
    rejected: [],
    results: body.events.map((e, index) => ({ index, id: e.id, usage_id: `u-${e.id}`, status: "inserted" })),
  });

describe("retry arithmetic", () => {
  it("full jitter stays within [0, min(max, base x 2^attempt))", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (a, r) => {
          const d = backoffDelay(DEFAULT_RETRY, a, () => r);
          const ceiling = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** a);
          return d >= 0 && d < ceiling;
        },
      ),
    );
  });

  it("Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3000);
    expect(retryAfterMs("0.5", now)).toBe(500);
    expect(retryAfterMs("Mon, 30 Nov 2026 12:00:07 GMT", now)).toBe(7000);
    expect(retryAfterMs("Mon, 30 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });

  it("UUID v7: version and variant bits, time-ordered across milliseconds", () => {
    const a = uuidv7(Date.parse("2026-01-01T00:00:00Z"));
    const b = uuidv7(Date.parse("2026-01-01T00:00:00.001Z"));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    // 2026-01-01T00:00:00Z is 1767225600000 ms = 0x019b76daa800
    expect(a.slice(0, 13)).toBe("019b76da-a800");
  });
});

describe("batching and outcomes", () => {
  it("a full batch goes at once, the rest after the interval; ids are fixed when recorded", async () => {
    vi.useFakeTimers();
    try {
      const f = scriptedFetch((_, body) => okFor(body));
      const client = new TallyClient({
        url: "http://x",
        key: "k",
        fetch: f.impl,
        batchSize: 3,
        flushIntervalMs: 1000,
      });
      const ids = Array.from({ length: 7 }, (_, i) => client.record({ model_id: "m", quantity: i + 1 }));
      expect(new Set(ids).size).toBe(7);
      await vi.advanceTimersByTimeAsync(999);
      expect(f.bodies.map((b) => b.events.length)).toEqual([3, 3]);
      await vi.advanceTimersByTimeAsync(1);
      expect(f.bodies.map((b) => b.events.length)).toEqual([3, 3, 1]);
      expect(f.bodies.flatMap((b) => b.events.map((e) => e.id))).toEqual(ids);
      await vi.advanceTimersByTimeAsync(0);
      expect(client.pending).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a refused key keeps the events (unsent); a 400 for the whole batch rejects them with its reason", async () => {
    let status = 401;
    const f = scriptedFetch(() =>
      Response.json({ error: { code: "X", message: `answer ${status}` } }, { status }),
    );
    const errors: Error[] = [];
    const client = new TallyClient({
      url: "http://x",
      key: "k",
      fetch: f.impl,
      flushIntervalMs: 60_000,
      onError: (e) => errors.push(e),
    });
    const id = client.record({ model_id: "m", quantity: 1 });
    expect(await client.flush()).toEqual([{ id, status: "unsent", error: "answer 401" }]);
    expect(client.pending).toBe(1);
    expect(errors.length).toBe(1);
    status = 400;
    expect(await client.flush()).toEqual([{ id, status: "rejected", error: "answer 400" }]);
    expect(client.pending).toBe(0);
  });

  it("a second shutdown() returns the first's result and leaves its spool alone; a throwing callback stops nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-spool-"));
    try {
      const spoolPath = join(dir, "s.jsonl");
      const f = scriptedFetch(() => Response.json({ error: { message: "down" } }, { status: 503 }));
      const client = new TallyClient({
        url: "http://x",
        key: "k",
        fetch: f.impl,
        spoolPath,
        retry: { maxAttempts: 1 },
        onOutcomes: () => {
          throw new Error("a caller's bug");
        },
      });
      const ids = [
        client.record({ model_id: "m", quantity: 1 }),
        client.record({ model_id: "m", quantity: 2 }),
      ];
      const first = await client.shutdown({ timeoutMs: 100 });
      expect(first.spooled).toBe(2);
      expect(await client.shutdown()).toBe(first);
      expect(readSpool(spoolPath).map((e) => e.id)).toEqual(ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the spool skips a torn last line", () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-spool-"));
    try {
      const path = join(dir, "s.jsonl");
      writeFileSync(
        path,
        '{"id":"a","model_id":"m","quantity":1,"timestamp":1}\n\n{"id":"b","model_id":"m","qu',
      );
      expect(readSpool(path).map((e) => e.id)).toEqual(["a"]);
      expect(readSpool(join(dir, "missing.jsonl"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("events send: CSV records", () => {
  it("reads RFC 4180 quoting: commas and doubled quotes inside quotes", () => {
    expect(parseCsvLine('a,"b,c","say ""hi""",')).toEqual(["a", "b,c", 'say "hi"', ""]);
    expect(parseCsvLine("")).toEqual([""]);
    expect(() => parseCsvLine('a,"b')).toThrow(/unterminated/);
  });
});
