import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { FallbackRateLimiter } from "../../src/limits/fallback-rate-limiter.ts";
import { RedisRateLimiter } from "../../src/limits/redis-rate-limiter.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { createServices, type Services } from "../../src/services.ts";
import { subscribeToPlan } from "../http/a4f/stats-world.ts";
import { captureLog } from "../support/capture-log.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { parsePromText, sampleValue } from "../support/prom-text.ts";
import { type RedisProcess, redisProcess } from "../support/redis-process.ts";
import { REDIS_URL, storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

const hasRedisServer = (() => {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe.runIf(REDIS_URL)("a Redis that cannot be reached", () => {
  it("falls back at once, says so once, counts it, and never waits on Redis", async () => {
    const { freePort } = await import("../support/server-process.ts");
    const redis = new RedisRateLimiter(`redis://127.0.0.1:${await freePort()}`);
    const log = captureLog();
    const metrics = new Metrics();
    let counted = 0;
    const limiter = new FallbackRateLimiter(redis, async () => ({ minute: 2, day: 7 }), Date.now, log, {
      onFallback: () => {
        counted++;
        metrics.limiterFallbacks.inc();
      },
      onBackend: (b) => metrics.setLimiterBackend(b),
    });
    try {
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        const { allowed, used } = await limiter.consume("acct", { perMinute: 100, perDay: null });
        expect(performance.now() - started).toBeLessThan(50);
        expect(allowed).toBe(true);
        // the per-instance counters start from the store's counts
        expect(used).toEqual({ minute: 3 + i, day: 8 + i });
      }
      await new Promise((r) => setTimeout(r, 300)); // reconnection attempts meanwhile
      expect(limiter.backend).toBe("memory");
      expect(counted).toBe(1);
      expect(log.lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
        "Redis unavailable: rate limits use this instance's own counters until it returns",
      ]);
      const samples = parsePromText(await metrics.text());
      expect(sampleValue(samples, "tally_rate_limiter_fallbacks_total")).toBe(1);
      expect(sampleValue(samples, "tally_rate_limiter_backend", { backend: "memory" })).toBe(1);
      expect(sampleValue(samples, "tally_rate_limiter_backend", { backend: "redis" })).toBe(0);
    } finally {
      await limiter.close();
    }
  });
});

/**
 * A Redis of the test's own, stopped and started again under a Tally instance: requests go on at
 * once on per-instance counters, and the restarted (empty) Redis is rebuilt from the store.
 */
describe.runIf(REDIS_URL && hasRedisServer).each(storeKinds())("Redis lost and back ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let rp: RedisProcess;
  let services: Services;
  let app: Awaited<ReturnType<typeof buildApp>>;
  const log = captureLog();

  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await subscribeToPlan(h, w.account.id, {
      id: "roomy",
      requests_per_minute: 1000,
      requests_per_day: 1000,
      validity_days: 30,
    });
    rp = await redisProcess();
    await rp.start();
    const redis = new RedisRateLimiter(rp.url, {
      keyPrefix: `tally:test:${randomBytes(6).toString("hex")}:`,
      now: h.clock.now,
    });
    expect(await redis.waitReady(5000)).toBe(true);
    log.lines.length = 0;
    services = createServices(h.services.store, { rootKey: ROOT_KEY, now: h.clock.now, redis, log });
    app = await buildApp(services);
  });
  afterEach(async () => {
    await app.close();
    await services.committer.idle();
    await services.limiter.close();
    await rp.stop();
    await h.close();
  });

  const report = async (id: string) => {
    const started = performance.now();
    const res = await app.inject({
      method: "POST",
      url: "/v1/events",
      headers: { authorization: `Bearer ${w.member.key}` },
      payload: { id, model_id: "flux-1-dev", quantity: 1 },
    });
    expectStatus(res, 200);
    await services.committer.idle();
    const ms = performance.now() - started;
    // the limiter hears of a commit after it is answered; requests here follow one another, so
    // each is counted before the next is sent (a seed read racing a later commit can count that
    // commit twice: a known over-count while a fallback starts, see the closing note of issue 14)
    await new Promise((r) => setTimeout(r, 20));
    return ms;
  };
  const check = async () => {
    const started = performance.now();
    const res = await app.inject({
      method: "POST",
      url: "/v1/limits/check",
      headers: { authorization: `Bearer ${w.member.key}` },
    });
    expectStatus(res, 200);
    return { ms: performance.now() - started, body: res.json() };
  };
  const limiter = () => services.limiter as FallbackRateLimiter;
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it("counts every request exactly once across the outage, and the day does not restart at zero", async () => {
    for (const id of ["a", "b", "c"]) await report(id);
    await settle();
    expect(await services.limiter.peek(w.account.id)).toEqual({ minute: 3, day: 3 });
    expect(limiter().backend).toBe("redis");

    await rp.stop();
    await until("the fallback", () => limiter().backend === "memory");
    // served at once from this instance's counters, seeded from the store
    for (const id of ["d", "e"]) expect(await report(id)).toBeLessThan(1000);
    const during = await check();
    expect(during.ms).toBeLessThan(1000);
    expect(during.body).toMatchObject({ allowed: true, windows: { day: { remaining: 994 } } });
    await settle();

    await rp.start(); // empty: a restart loses every key
    await until("Redis back", () => limiter().backend === "redis");
    // rebuilt from the store's five events; the allowed check's request has no event yet
    expect(await services.limiter.peek(w.account.id)).toEqual({ minute: 5, day: 5 });
    await report("f");
    await settle();
    expect(await services.limiter.peek(w.account.id)).toEqual({ minute: 6, day: 6 });

    const samples = parsePromText(await services.metrics.text());
    expect(sampleValue(samples, "tally_rate_limiter_fallbacks_total")).toBe(1);
    expect(sampleValue(samples, "tally_rate_limiter_backend", { backend: "redis" })).toBe(1);
    const warnings = log.lines.filter((l) => l.level === "warn").map((l) => l.msg);
    expect(warnings).toEqual([
      "Redis unavailable: rate limits use this instance's own counters until it returns",
    ]);
    expect(log.lines.some((l) => l.msg === "Redis is back: rate limits use the shared counters again")).toBe(
      true,
    );
  });
});
