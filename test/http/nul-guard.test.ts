import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

const NUL_MSG = "must not contain the NUL character (U+0000)";

/**
 * PostgreSQL cannot store U+0000 in text and SQLite can: every surface refuses it alike, with a
 * 4xx naming the field in its own error format, and writes nothing.
 */
describe.each(storeKinds())("a NUL character in any field ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const storedEvents = async () =>
    (await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 })).length;

  it("native: an event id or a metadata key -> 400 naming the field, nothing stored", async () => {
    for (const [event, loc] of [
      [{ id: "a\u0000b", model_id: "flux-1-dev", quantity: 1 }, ["body", "events", 1, "id"]],
      [
        { id: "ok-2", model_id: "flux-1-dev", quantity: 1, metadata: { "k\u0000": 1 } },
        ["body", "events", 1, "metadata", "k\u0000"],
      ],
    ] as const) {
      const res = await h.request({
        method: "POST",
        url: "/v1/events",
        key: w.admin.key,
        body: { events: [{ id: "fine", model_id: "flux-1-dev", quantity: 1 }, event] },
      });
      expectStatus(res, 400);
      expect(res.json().error.issues).toHaveLength(1);
      expect(res.json().error.issues[0]).toMatchObject({ loc, msg: NUL_MSG });
    }
    const account = await h.request({
      method: "POST",
      url: "/v1/accounts",
      key: ROOT_KEY,
      body: { name: "x\u0000" },
    });
    expectStatus(account, 400);
    expect(account.json().error.issues[0].loc).toEqual(["body", "name"]);
    expect(await storedEvents()).toBe(0);
  });

  it("usage log (FastAPI format): body and path fields -> 422 with loc", async () => {
    const post = await h.request({
      method: "POST",
      url: "/usage",
      key: w.admin.key,
      body: { user_id: w.admin.id, api_name: "flux\u0000", units_used: 1 },
    });
    expectStatus(post, 422);
    expect(post.json().detail[0]).toMatchObject({ loc: ["body", "api_name"], msg: NUL_MSG });
    const get = await h.request({ method: "GET", url: "/usage/user/a%00b", key: w.admin.key });
    expectStatus(get, 422);
    expect(get.json().detail[0]).toMatchObject({ loc: ["path", "user_id"], msg: NUL_MSG });
    expect(await storedEvents()).toBe(0);
  });

  it("workspace usage and key statistics: a query parameter -> 400 naming it", async () => {
    const ws = await h.request({ method: "GET", url: "/v1/models/usage?timezone=UTC%00", key: w.admin.key });
    expectStatus(ws, 400);
    expect(ws.json().error).toMatchObject({
      type: "validation_error",
      message: `query.timezone: ${NUL_MSG}`,
    });
    const stats = await h.request({
      method: "GET",
      url: "/v1/usage?section=usage_statistics%00",
      key: w.admin.key,
    });
    expectStatus(stats, 400);
    expect(stats.json().error).toMatchObject({ param: "section", message: `query.section: ${NUL_MSG}` });
  });

  it("the key is still checked first: no key and a NUL is a 401", async () => {
    const res = await h.request({ method: "POST", url: "/v1/events", body: { events: [{ id: "a\u0000" }] } });
    expectStatus(res, 401);
  });
});
