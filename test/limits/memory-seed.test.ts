import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { createServices } from "../../src/services.ts";
import { post, subscribeToPlan } from "../http/a4f/stats-world.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/** The in-memory counters of a restarted process start from the events already recorded. */
describe.each(storeKinds())("memory rate limiter after a restart ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await subscribeToPlan(h, w.account.id, {
      id: "tight",
      requests_per_minute: 5,
      requests_per_day: 8,
      validity_days: 30,
    });
  });
  afterEach(async () => h.close());

  it("counts the current minute's and day's recorded events, and only those", async () => {
    h.clock.set("2025-06-15T12:00:30Z");
    const now = h.clock.now();
    const events = [
      { id: "a", model_id: "flux-1-dev", quantity: 1, timestamp: new Date(now - 10_000).toISOString() }, // this minute
      { id: "b", model_id: "flux-1-dev", quantity: 1, timestamp: new Date(now - 3_600_000).toISOString() }, // today
      {
        id: "c",
        model_id: "flux-1-dev",
        quantity: 1,
        timestamp: new Date(now - 2 * 86_400_000).toISOString(),
      }, // earlier
    ];
    await post(h, "/v1/events", { events }, w.admin.key);
    await h.services.committer.idle();

    // a second process over the same store: nothing in its memory yet
    const restarted = createServices(h.services.store, { rootKey: ROOT_KEY, now: h.clock.now });
    const app = await buildApp(restarted);
    try {
      const check = async () => {
        const res = await app.inject({
          method: "POST",
          url: "/v1/limits/check",
          headers: { authorization: `Bearer ${w.member.key}` },
        });
        expectStatus(res, 200);
        return res.json();
      };
      expect((await check()).windows).toMatchObject({ minute: { remaining: 3 }, day: { remaining: 5 } });
      // events recorded after the first look are counted live, once
      const res = await app.inject({
        method: "POST",
        url: "/v1/events",
        headers: { authorization: `Bearer ${w.member.key}` },
        payload: { id: "d", model_id: "flux-1-dev", quantity: 1 },
      });
      expectStatus(res, 200);
      await restarted.committer.idle();
      expect((await check()).windows).toMatchObject({ minute: { remaining: 1 }, day: { remaining: 3 } });
    } finally {
      await app.close();
      await restarted.committer.idle();
    }
  });
});
