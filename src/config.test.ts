import { describe, expect, it } from "vitest";
import { loadConfig, redactUrl, weakRootKey } from "./config.ts";

describe("loadConfig", () => {
  it("reads HOST, the operations settings and their defaults", () => {
    const c = loadConfig({ HOST: "127.0.0.1", TALLY_SHUTDOWN_GRACE_MS: "2500", TALLY_MAX_FUTURE_MS: "0" });
    expect(c).toMatchObject({
      host: "127.0.0.1",
      shutdownGraceMs: 2500,
      maxFutureMs: 0,
      storeWaitMs: 30_000,
    });
    expect(loadConfig({})).toMatchObject({ host: "0.0.0.0", maxFutureMs: 86_400_000, metricsToken: null });
    expect(() => loadConfig({ TALLY_SHUTDOWN_GRACE_MS: "soon" })).toThrow(/TALLY_SHUTDOWN_GRACE_MS/);
  });

  it("reads the invoice grace in hours, and names the range it takes when refusing one", () => {
    expect(loadConfig({}).invoiceGraceMs).toBe(3_600_000);
    expect(loadConfig({ TALLY_INVOICE_GRACE_HOURS: "0.5" }).invoiceGraceMs).toBe(1_800_000);
    expect(loadConfig({ TALLY_INVOICE_GRACE_HOURS: "8784" }).invoiceGraceMs).toBe(8784 * 3_600_000);
    for (const bad of ["8785", "-1", "soon"])
      expect(() => loadConfig({ TALLY_INVOICE_GRACE_HOURS: bad }), bad).toThrow(
        /TALLY_INVOICE_GRACE_HOURS must be a number of hours from 0 to 8784/,
      );
  });

  it("refuses a mistyped REDIS_URL at start, naming it", () => {
    for (const url of ["localhost:6379", "redis:/6379", "http://127.0.0.1:6379", "redis://"]) {
      expect(() => loadConfig({ REDIS_URL: url }), url).toThrow(/REDIS_URL/);
    }
    expect(loadConfig({ REDIS_URL: "redis://:pw@cache:6380/2" }).redisUrl).toBe("redis://:pw@cache:6380/2");
    expect(redactUrl("redis://:pw@cache:6380/2")).toBe("redis://:***@cache:6380/2");
  });
});

describe("weakRootKey", () => {
  it("names placeholders and short keys, and passes long random ones", () => {
    expect(weakRootKey("change-me-root-key")).toMatch(/placeholder/);
    expect(weakRootKey("CHANGEME-please-0123456789")).toMatch(/placeholder/);
    expect(weakRootKey("abc123")).toMatch(/shorter/);
    expect(weakRootKey("aaaaaaaaaaaaaaaaaaaaaaaaaaaa")).toMatch(/distinct/);
    expect(weakRootKey("tly_9f8e7d6c5b4a39281706f5e4d3c2b1a0")).toBeNull();
  });
});
