import { randomBytes } from "node:crypto";
import type { InjectOptions } from "fastify";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../../src/http/app.ts";
import { RedisRateLimiter } from "../../../src/limits/redis-rate-limiter.ts";
import { createServices, type Services } from "../../../src/services.ts";
import { type Harness, ROOT_KEY, TestClock } from "../../support/harness.ts";
import { REDIS_URL, storeKinds, type TestStore } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { post, subscribeToPlan } from "../a4f/stats-world.ts";

interface Instance {
  services: Services;
  app: Awaited<ReturnType<typeof buildApp>>;
  h: Harness;
}

/** A Tally instance over the shared store, with its own RedisRateLimiter on the shared Redis. */
async function startInstance(testStore: TestStore, clock: TestClock, keyPrefix: string): Promise<Instance> {
  const services = createServices(testStore.store, {
    rootKey: ROOT_KEY,
    now: clock.now,
    rateLimiter: new RedisRateLimiter(REDIS_URL, { keyPrefix, now: clock.now }),
  });
  const app = await buildApp(services);
  const h = {
    services,
    app,
    testStore,
    clock,
    request: ({ key, headers, ...opts }: InjectOptions & { key?: string | null }) =>
      app.inject({
        ...opts,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(headers ?? {}) },
      } as InjectOptions),
    close: async () => {},
  } as Harness;
  return { services, app, h };
}

describe.runIf(REDIS_URL).each(storeKinds())("shared Redis rate limits, two instances ($name)", (kind) => {
  let testStore: TestStore;
  let clock: TestClock;
  let keyPrefix: string;
  let a: Instance;
  let b: Instance;
  let w: World;

  beforeEach(async () => {
    testStore = await kind.create();
    clock = new TestClock();
    keyPrefix = `tally:test:${randomBytes(6).toString("hex")}:`;
    a = await startInstance(testStore, clock, keyPrefix);
    b = await startInstance(testStore, clock, keyPrefix);
    w = await buildWorld(a.h);
  });

  afterEach(async () => {
    for (const i of [a, b]) {
      await i.app.close();
      await i.services.committer.idle();
      await i.services.limiter.close();
    }
    await testStore.cleanup();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${keyPrefix}*`);
    if (keys.length > 0) await r.del(...keys);
    await r.quit();
  });

  const check = (i: Instance, key: string) =>
    i.h.request({ method: "POST", url: "/v1/limits/check", key }).then((r) => r.json());

  it("admit exactly the limit between them under concurrent checks", async () => {
    await subscribeToPlan(a.h, w.account.id, {
      id: "p",
      requests_per_minute: 7,
      requests_per_day: 1000,
      validity_days: 30,
    });
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        check(i % 2 === 0 ? a : b, i % 3 === 0 ? w.member.key : w.admin.key),
      ),
    );
    expect(answers.filter((r) => r.allowed)).toHaveLength(7);
    expect(answers.filter((r) => !r.allowed).every((r) => r.reason === "rate_limited")).toBe(true);
    for (const i of [a, b]) {
      const stats = await i.h.request({
        method: "GET",
        url: "/v1/usage?section=rate_limits_and_restrictions",
        key: w.member.key,
      });
      expect(stats.json().rate_limits_and_restrictions).toMatchObject({
        requests_per_minute_remaining: 0,
        requests_per_day_remaining: 993,
      });
    }
    clock.advance(60_000);
    const next = await Promise.all(Array.from({ length: 10 }, (_, i) => check(i % 2 ? a : b, w.admin.key)));
    expect(next.filter((r) => r.allowed)).toHaveLength(7);
  });

  it("share the requests that events recorded on either instance count", async () => {
    await subscribeToPlan(a.h, w.account.id, {
      id: "p",
      requests_per_minute: null,
      requests_per_day: 5,
      validity_days: 30,
    });
    await post(a.h, "/v1/events", { id: "e1", model_id: "flux-1-dev", quantity: 2 }, w.admin.key);
    await post(
      b.h,
      "/v1/events",
      {
        events: [
          { id: "e2", model_id: "flux-1-dev", quantity: 1 },
          { id: "e3", model_id: "tts-1", quantity: 1 },
        ],
      },
      w.member.key,
    );
    // a retried event is a duplicate and counts nothing
    await post(b.h, "/v1/events", { id: "e1", model_id: "flux-1-dev", quantity: 2 }, w.admin.key);
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => check(i % 2 ? a : b, w.admin.key)));
    expect(answers.filter((r) => r.allowed)).toHaveLength(2);
    expect(await check(a, w.admin.key)).toMatchObject({
      allowed: false,
      window: "day",
      limit: 5,
      remaining: 0,
      reset: "2025-06-16T00:00:00.000Z",
    });
  });
});
