import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ONE, parseDec } from "../../../src/domain/decimal.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const d = parseDec;

describe.each(storeKinds())("POST /v1/events, happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const send = (payload: unknown, key: string = w.admin.key) =>
    h.request({ method: "POST", url: "/v1/events", payload: payload as object, key });
  const allTime = (accountId: string, family: "account" | "key" = "account") =>
    h.services.query.totals({ accountId, family });

  it("records one event: exact answer, priced from the model, attributed to the key's user", async () => {
    const res = await send({
      id: "one",
      model_id: "flux-1-dev",
      quantity: 4,
      timestamp: "2025-06-15T11:59:00Z",
    });
    expectStatus(res, 200);
    const body = res.json();
    expect(body).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [],
      results: [{ index: 0, id: "one", usage_id: expect.stringMatching(UUID), status: "inserted" }],
    });
    const stored = await h.services.store.getEvent(w.account.id, body.results[0].usage_id);
    expect(stored).toMatchObject({
      eventId: "one",
      ts: Date.parse("2025-06-15T11:59:00Z"),
      userId: w.admin.id,
      keyId: w.admin.keyId,
      modelId: "flux-1-dev",
      kind: "image",
      unit: "image",
      quantity: d("4"),
      unitPrice: d("0.025"),
      cost: d("0.1"),
      currency: "USD",
    });
    // a retry is a duplicate naming the same usage_id
    const retry = await send({ id: "one", model_id: "flux-1-dev", quantity: 4 });
    expect(retry.json()).toEqual({
      accepted: 0,
      duplicates: 1,
      rejected: [],
      results: [{ index: 0, id: "one", usage_id: body.results[0].usage_id, status: "duplicate" }],
    });
  });

  it("defaults the timestamp to now and keeps every optional field", async () => {
    const res = await send({
      id: "full",
      model_id: "gpt-mini",
      quantity: "1500",
      api_name: "chat",
      endpoint: "/v1/chat/completions",
      tokens: { prompt: 1000, completion: 500 },
      metadata: { region: "eu", nested: { ok: true } },
    });
    expectStatus(res, 200);
    const e = await h.services.store.getEvent(w.account.id, res.json().results[0].usage_id);
    expect(e).toMatchObject({
      ts: h.clock.now(),
      apiName: "chat",
      endpoint: "/v1/chat/completions",
      kind: "chat",
      unit: "token",
      quantity: d("1500"),
      unitPrice: d("0.00000015"),
      cost: d("0.000225"),
      tokensPrompt: 1000,
      tokensCompletion: 500,
      metadata: { region: "eu", nested: { ok: true } },
    });
  });

  it("prices each event by the price version in force at its own timestamp", async () => {
    // flux-1-dev costs 0.025 from 2020; 0.03 from 2025-06-10 (sent later, applies to its period)
    expectStatus(
      await h.request({
        method: "POST",
        url: "/v1/models",
        key: ROOT_KEY,
        payload: {
          id: "flux-1-dev",
          unit: "image",
          kind: "image",
          unit_price: "0.03",
          effective_from: "2025-06-10T00:00:00Z",
        },
      }),
      200,
    );
    const res = await send({
      events: [
        { id: "before", model_id: "flux-1-dev", quantity: 10, timestamp: "2025-06-09T23:59:59.999Z" },
        { id: "at", model_id: "flux-1-dev", quantity: 10, timestamp: "2025-06-10T00:00:00Z" },
        { id: "after", model_id: "flux-1-dev", quantity: 10, timestamp: Date.parse("2025-06-14T00:00:00Z") },
      ],
    });
    expectStatus(res, 200);
    expect(res.json().accepted).toBe(3);
    const lines = await allTime(w.account.id);
    expect(lines.map((l) => [l.unitPrice, l.requests, l.quantity, l.cost])).toEqual([
      [d("0.025"), 1, d("10"), d("0.25")],
      [d("0.03"), 2, d("20"), d("0.6")],
    ]);
  });

  it("takes a given unit_price or cost instead of the model's price", async () => {
    const res = await send({
      events: [
        { id: "p", model_id: "flux-1-dev", quantity: 2, unit_price: "0.5" },
        { id: "c", model_id: "flux-1-dev", quantity: 2, cost: "0.0000000000000001" },
        { id: "pc", model_id: "flux-1-dev", quantity: 3, unit_price: 0.1, cost: 7 },
        { id: "zero", model_id: "flux-1-dev", quantity: 0 },
      ],
    });
    expectStatus(res, 200);
    expect(res.json().accepted).toBe(4);
    const byId = new Map(
      (await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 })).map((e) => [
        e.eventId,
        e,
      ]),
    );
    expect([byId.get("p")?.unitPrice, byId.get("p")?.cost]).toEqual([d("0.5"), d("1")]);
    expect([byId.get("c")?.unitPrice, byId.get("c")?.cost]).toEqual([d("0.025"), 100n]);
    expect([byId.get("pc")?.unitPrice, byId.get("pc")?.cost]).toEqual([d("0.1"), d("7")]);
    expect([byId.get("zero")?.quantity, byId.get("zero")?.cost]).toEqual([0n, 0n]);
  });

  it("takes 10,000 events in one request, and 20,000 events of 0.0043 sum to exactly 86", async () => {
    expectStatus(
      await h.request({
        method: "POST",
        url: "/v1/models",
        key: ROOT_KEY,
        payload: {
          id: "cheap",
          unit: "request",
          kind: "other",
          unit_price: 0.0043,
          effective_from: "2020-01-01T00:00:00Z",
        },
      }),
      201,
    );
    const base = Date.parse("2025-06-14T00:00:00Z");
    for (let part = 0; part < 2; part++) {
      const events = Array.from({ length: 10_000 }, (_, i) => ({
        id: `cheap-${part}-${i}`,
        model_id: "cheap",
        quantity: 1,
        timestamp: base + (part * 10_000 + i) * 3_001,
      }));
      const res = await send({ events });
      expectStatus(res, 200);
      expect([res.json().accepted, res.json().duplicates, res.json().rejected]).toEqual([10_000, 0, []]);
    }
    const [line] = await allTime(w.account.id);
    expect([line.requests, line.quantity, line.cost]).toEqual([20_000, 20_000n * ONE, d("86")]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("lets the root key name account_id on the wrapper or on each event (the event's wins)", async () => {
    const res = await send(
      {
        account_id: w.account.id,
        events: [
          { id: "r1", model_id: "tts-1", quantity: 10 },
          { id: "r2", model_id: "tts-1", quantity: 20, account_id: w.other.accountId },
          { id: "r3", model_id: "tts-1", quantity: 30, user_id: w.member.id },
          { id: "r4", model_id: "tts-1", quantity: 40, key_id: w.admin.keyId },
        ],
      },
      ROOT_KEY,
    );
    expectStatus(res, 200);
    expect(res.json()).toMatchObject({ accepted: 4, duplicates: 0, rejected: [] });
    expect((await allTime(w.account.id)).map((l) => l.quantity)).toEqual([d("80")]);
    expect((await allTime(w.other.accountId)).map((l) => l.quantity)).toEqual([d("20")]);
    const byKey = await allTime(w.account.id, "key");
    expect(byKey.map((l) => [l.keyId, l.userId, l.quantity])).toEqual(
      [
        ["", "", d("10")],
        ["", w.member.id, d("30")],
        [w.admin.keyId, w.admin.id, d("40")],
      ].sort((a, b) => `${a[0]}|${a[1]}`.localeCompare(`${b[0]}|${b[1]}`)),
    );
  });

  it("puts a late event (three weeks back) in its own day, and changes nothing today", async () => {
    expectStatus(await send({ id: "today", model_id: "flux-1-dev", quantity: 1 }), 200);
    expectStatus(
      await send({ id: "late", model_id: "flux-1-dev", quantity: 5, timestamp: "2025-05-25T23:30:00-02:00" }),
      200,
    );
    const day = (iso: string) => ({ start: Date.parse(iso), end: Date.parse(iso) + 86_400_000 });
    const [today, late, before] = await h.services.query.series({
      accountId: w.account.id,
      buckets: [day("2025-06-15T00:00:00Z"), day("2025-05-26T00:00:00Z"), day("2025-05-25T00:00:00Z")],
    });
    expect(today.map((l) => l.quantity)).toEqual([d("1")]);
    expect(late.map((l) => l.quantity)).toEqual([d("5")]);
    expect(before).toEqual([]);
  });
});
