import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

const GOOD = { model_id: "flux-1-dev", quantity: 1 };

describe.each(storeKinds())("POST /v1/events, errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const send = (payload: unknown, key: string = w.admin.key) =>
    h.request({ method: "POST", url: "/v1/events", payload: payload as object, key });
  const storedIds = async (accountId = w.account.id) =>
    (await h.services.store.listEvents({ accountId, skip: 0, limit: 100_000 })).map((e) => e.eventId).sort();

  it("rejects each bad item on its own, naming its field, and stores the rest", async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ ...GOOD, quantity: -1 }, "quantity"],
      [{ ...GOOD, quantity: "-0.5" }, "quantity"],
      [{ ...GOOD, quantity: "1.0000001" }, "quantity"], // 7 places
      [{ ...GOOD, quantity: "abc" }, "quantity"],
      [{ ...GOOD, quantity: true }, "quantity"],
      [{ ...GOOD, quantity: 1e13 }, "quantity"],
      [{ ...GOOD, quantity: undefined }, "quantity"],
      [{ ...GOOD, unit_price: -0.1 }, "unit_price"],
      [{ ...GOOD, unit_price: "0.0000000000001" }, "unit_price"], // 13 places
      [{ ...GOOD, cost: -3 }, "cost"],
      [{ ...GOOD, cost: "0.0000000000000000001" }, "cost"], // 19 places
      [{ ...GOOD, model_id: "no-such-model" }, "model_id"],
      [{ ...GOOD, model_id: undefined }, "model_id"],
      [{ ...GOOD, timestamp: "yesterday" }, "timestamp"],
      [{ ...GOOD, timestamp: "2025-06-01" }, "timestamp"],
      [{ ...GOOD, timestamp: -1 }, "timestamp"],
      [{ ...GOOD, currency: "EUR" }, "currency"],
      [{ ...GOOD, currency: "usd" }, "currency"],
      [{ ...GOOD, kind: "robot" }, "kind"],
      [{ ...GOOD, tokens: { prompt: -1 } }, "tokens.prompt"],
      [{ ...GOOD, tokens: { prompt: 1, cached: 2 } }, "tokens.cached"],
      [{ ...GOOD, colour: "red" }, "colour"],
      [{ ...GOOD, key_id: "no-such-key" }, "key_id"],
      [{ ...GOOD, user_id: "no-such-user" }, "user_id"],
      [{ ...GOOD, key_id: w.admin.keyId, user_id: w.member.id }, "user_id"],
      [{ ...GOOD, metadata: "text" }, "metadata"],
    ];
    const events: Record<string, unknown>[] = [
      { ...GOOD, id: "good-0" },
      ...bad.map(([e], i) => ({ id: `bad-${i}`, ...e })),
      { ...GOOD, id: "good-1" },
    ];
    events.push({ ...GOOD }); // no id at all
    const res = await send({ events });
    expectStatus(res, 200);
    const body = res.json();
    expect(body.accepted).toBe(2);
    expect(body.duplicates).toBe(0);
    const expected = [
      ...bad.map(([, field], i) => ({ index: i + 1, field: `events.${i + 1}.${field}` })),
      { index: bad.length + 2, field: `events.${bad.length + 2}.id` },
    ];
    expect(
      body.rejected.map((r: { index: number; field: string }) => ({ index: r.index, field: r.field })),
    ).toEqual(expected);
    for (const r of body.rejected) expect(r.error.startsWith(`${r.field}: `), r.error).toBe(true);
    expect(body.results.map((r: { index: number; id: string }) => [r.index, r.id])).toEqual([
      [0, "good-0"],
      [bad.length + 1, "good-1"],
    ]);
    expect(await storedIds()).toEqual(["good-0", "good-1"]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("a single bad event is rejected by field name without the events prefix (422: nothing stored)", async () => {
    const res = await send({ id: "x", model_id: "flux-1-dev", quantity: -2 });
    expectStatus(res, 422);
    expect(res.json()).toEqual({
      accepted: 0,
      duplicates: 0,
      rejected: [{ index: 0, error: "quantity: must not be negative", field: "quantity" }],
      results: [],
    });
    expect(await storedIds()).toEqual([]);
  });

  it("refuses a body that is neither an event nor {events: [...]} with 400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [[{ ...GOOD, id: "a" }], "body"],
      [{ events: "nope" }, "events"],
      [{ events: {} }, "events"],
      [{ events: [], extra: 1 }, "extra"],
      [{ events: [], account_id: 5 }, "account_id"],
    ];
    for (const [payload, field] of cases) {
      const res = await send(payload);
      expectStatus(res, 400);
      const { error } = res.json();
      expect(error.code).toBe("VALIDATION");
      expect(
        error.message.startsWith(field === "body" ? "must be" : `${field}: `) ||
          error.message.startsWith(`${field}: `),
        error.message,
      ).toBe(true);
      expect(error.request_id).toBe(res.headers["x-request-id"]);
    }
    const nullBody = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: "null",
    });
    expectStatus(nullBody, 400);
    const invalid = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: '{"id": "x", ',
    });
    expectStatus(invalid, 400);
    expect(invalid.json().error.message).toBe("body: is not valid JSON");
    expect(await storedIds()).toEqual([]);
  });

  it("takes 10,000 events and refuses 10,001 with 400, writing nothing", async () => {
    const many = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) => ({ ...GOOD, id: `${prefix}-${i}` }));
    const over = await send({ events: many(10_001, "over") });
    expectStatus(over, 400);
    expect(over.json().error).toMatchObject({
      code: "VALIDATION",
      message: "events: at most 10000 events per request",
    });
    expect(await storedIds()).toEqual([]);
    expect(await h.services.query.totals({ accountId: w.account.id })).toEqual([]);
    const max = await send({ events: many(10_000, "max") });
    expectStatus(max, 200);
    expect(max.json().accepted).toBe(10_000);
  });

  it("accepts bodies over 1 MiB up to 16 MiB, and refuses larger ones with 413", async () => {
    const pad = "p".repeat(1500);
    const events = Array.from({ length: 2000 }, (_, i) => ({ ...GOOD, id: `big-${i}`, metadata: { pad } }));
    const payload = JSON.stringify({ events });
    expect(payload.length).toBeGreaterThan(3 * 1024 * 1024);
    const ok = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload,
    });
    expectStatus(ok, 200);
    expect(ok.json().accepted).toBe(2000);
    const huge = JSON.stringify({
      events: [{ ...GOOD, id: "huge", metadata: { pad: "h".repeat(16 * 1024 * 1024) } }],
    });
    const tooBig = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: huge,
    });
    expectStatus(tooBig, 413);
    expect(tooBig.json().error.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await storedIds()).includes("huge")).toBe(false);
  });

  it("requires account_id with the root key, and refuses unknown accounts", async () => {
    const res = await send(
      {
        events: [
          { ...GOOD, id: "no-account" },
          { ...GOOD, id: "bad-account", account_id: "no-such-account" },
          { ...GOOD, id: "ok", account_id: w.account.id },
        ],
      },
      ROOT_KEY,
    );
    expectStatus(res, 200);
    expect(res.json().rejected).toEqual([
      {
        index: 0,
        error: "events.0.account_id: Field required with the root key",
        field: "events.0.account_id",
      },
      { index: 1, error: "events.1.account_id: unknown account", field: "events.1.account_id" },
    ]);
    expect(await storedIds()).toEqual(["ok"]);
  });
});
