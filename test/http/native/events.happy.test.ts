import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

describe.each(storeKinds())("POST /v1/events ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("accepts a batch, reports duplicates and rejects bad items by index", async () => {
    const res = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      payload: {
        events: [
          { id: "e1", model_id: "flux-1-dev", quantity: 3, timestamp: "2025-06-15T10:00:00Z" },
          { id: "e1", model_id: "flux-1-dev", quantity: 3 },
          { id: "e2", model_id: "nope", quantity: 1 },
          { id: "e3", model_id: "flux-1-dev", quantity: -1 },
        ],
      },
    });
    expectStatus(res, 200);
    const body = res.json();
    expect(body.accepted).toBe(1);
    expect(body.duplicates).toBe(1);
    expect(body.rejected).toEqual([
      { index: 2, error: "events.2.model_id: unknown model nope", field: "events.2.model_id" },
      { index: 3, error: "events.3.quantity: must not be negative", field: "events.3.quantity" },
    ]);
    expect(body.results[1].usage_id).toBe(body.results[0].usage_id);
    const [lines] = await h.services.query.series({
      accountId: w.account.id,
      buckets: [{ start: Date.parse("2025-06-15T00:00:00Z"), end: Date.parse("2025-06-16T00:00:00Z") }],
    });
    expect(lines).toHaveLength(1);
    expect(lines[0].quantity).toBe(3n * 10n ** 18n);
    expect(lines[0].cost).toBe(75n * 10n ** 15n); // 3 x 0.025
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });
});
