import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { createServices } from "../../src/services.ts";
import type { Store } from "../../src/store/store.ts";
import { captureLog } from "../support/capture-log.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/** The store, with its rollup reads failing (a disk error, a lost connection). */
function failingReads(store: Store): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "aggregate") return () => Promise.reject(new Error("disk I/O error"));
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/**
 * The per-instance rate limiter reads the store the first time it sees an account, from a commit
 * listener nobody awaits: when that read fails, the failure is logged and the server stays up.
 */
describe.each(storeKinds())("a store read failing while counting committed events ($name)", (kind) => {
  let h: Harness;
  let w: World;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
  });
  afterEach(async () => {
    process.off("unhandledRejection", onUnhandled);
    await h.close();
  });

  it("is logged, counted, and leaves the server answering", async () => {
    const log = captureLog();
    const services = createServices(failingReads(h.services.store), {
      rootKey: ROOT_KEY,
      now: h.clock.now,
      log,
    });
    const app = await buildApp(services);
    try {
      const post = (id: string) =>
        app.inject({
          method: "POST",
          url: "/v1/events",
          headers: { authorization: `Bearer ${w.member.key}` },
          payload: { id, model_id: "flux-1-dev", quantity: 1 },
        });
      expectStatus(await post("e-1"), 200);
      await services.committer.idle();
      // the listener's promise settles on a later turn
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      const logged = log.lines.filter((l) => l.level === "error");
      expect(logged.map((l) => l.msg)).toEqual(["rate limiter: counting committed events failed"]);
      expect((logged[0].obj as { err: Error }).err.message).toBe("disk I/O error");
      expect(await services.metrics.text()).toMatch(/tally_store_errors_total\{op="rate_limit_count"\} 1/);
      // still serving: another report, and health
      expectStatus(await post("e-2"), 200);
      expectStatus(await app.inject({ method: "GET", url: "/healthz" }), 200);
      await services.committer.idle();
      expect(await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 })).toHaveLength(
        2,
      );
    } finally {
      await app.close();
      await services.committer.idle();
    }
  });
});
