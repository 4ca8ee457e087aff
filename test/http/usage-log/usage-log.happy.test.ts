import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { maskSecret } from "../../../src/domain/keys.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import {
  accountTotals,
  d,
  expectRollupsConsistent,
  logUsage,
  SEED_BODY,
  UUID,
  whole,
} from "./usage-log.support.ts";

describe.each(storeKinds())("usage log, happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  describe("POST /usage", () => {
    it("answers 201 with exactly the seed's fields, exact decimals and the key's user", async () => {
      const res = await h.request({ method: "POST", url: "/usage", key: w.member.key, payload: SEED_BODY });
      expectStatus(res, 201);
      const body = res.json();
      expect(body).toEqual({
        usage_id: expect.stringMatching(UUID),
        user_id: w.member.id,
        api_name: "llm_query",
        endpoint: "/chat",
        units_used: 346,
        cost_usd: 0.0043,
        api_key_used: "pk_live_abc123",
        status_active: true,
        created_at: "2025-06-15T12:00:00.000Z",
      });
      expect(res.body).toContain('"units_used":346,"cost_usd":0.0043,');
    });

    it("stores an event of the key's user and key: unknown api -> unit 'unit', kind 'other', price cost/quantity", async () => {
      const rec = await logUsage(h, w.member.key);
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e).toMatchObject({
        userId: w.member.id,
        keyId: w.member.keyId,
        modelId: "llm_query",
        apiName: "llm_query",
        endpoint: "/chat",
        unit: "unit",
        kind: "other",
        quantity: whole(346),
        cost: d("0.0043"),
        // 0.0043 / 346 = 0.0000124277..., rounded to 9 places
        unitPrice: d("0.000012428"),
        currency: "USD",
        statusActive: true,
      });
    });

    it("takes unit and kind from an existing model and prices by the given cost, not the model's price", async () => {
      const rec = await logUsage(h, w.admin.key, {
        api_name: "flux-1-dev",
        endpoint: "/images",
        units_used: 4,
        cost_usd: "0.09",
      });
      expect(rec.cost_usd).toBe(0.09);
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e).toMatchObject({ unit: "image", kind: "image", unitPrice: d("0.0225"), cost: d("0.09") });
    });

    it("gives zero units a zero unit price", async () => {
      const rec = await logUsage(h, w.admin.key, { ...SEED_BODY, units_used: 0, cost_usd: 0.5 });
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e?.unitPrice).toBe(0n);
      expect(e?.cost).toBe(d("0.5"));
    });

    it("masks api_key_used when it is a live key's secret, and keeps other values as given", async () => {
      const masked = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: w.admin.key });
      expect(masked.api_key_used).toBe(`${w.admin.key.slice(0, 10)}...${w.admin.key.slice(-4)}`);
      expect(masked.api_key_used).toBe(maskSecret(w.admin.key));
      const root = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: ROOT_KEY });
      expect(root.api_key_used).toBe(maskSecret(ROOT_KEY));
      const plain = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: "tly_not_a_real_key" });
      expect(plain.api_key_used).toBe("tly_not_a_real_key");
      const none = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: undefined });
      expect(none.api_key_used).toBeNull();
    });

    it("counts a retry with the same Idempotency-Key once and answers the first record", async () => {
      const headers = { "idempotency-key": "req-42" };
      const first = await logUsage(h, w.member.key, SEED_BODY, headers);
      h.clock.advance(1000);
      const again = await logUsage(h, w.member.key, SEED_BODY, headers);
      expect(again).toEqual(first);
      const other = await logUsage(h, w.member.key, SEED_BODY, { "idempotency-key": "req-43" });
      expect(other.usage_id).not.toBe(first.usage_id);
      const e = await h.services.store.getEvent(w.account.id, first.usage_id);
      expect(e?.eventId).toBe("usage-log:req-42");
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 2, quantity: whole(692), cost: d("0.0086") },
      ]);
    });

    it("sums many 0.0043 records exactly", async () => {
      await Promise.all(Array.from({ length: 200 }, () => logUsage(h, w.member.key)));
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 200, quantity: whole(69_200), cost: d("0.86") },
      ]);
      const page = await h.request({ method: "GET", url: "/usage?limit=1000", key: w.admin.key });
      expect(page.json()).toHaveLength(200);
      await expectRollupsConsistent(h);
    });
  });

  describe("GET /usage", () => {
    async function logThree() {
      const a = await logUsage(h, w.admin.key, { ...SEED_BODY, api_name: "a" });
      h.clock.advance(1000);
      const b = await logUsage(h, w.member.key, { ...SEED_BODY, api_name: "b" });
      h.clock.advance(1000);
      const c = await logUsage(h, w.member.key, { ...SEED_BODY, api_name: "c" });
      return { a, b, c };
    }

    it("lists the whole account for an admin, newest first, with default paging", async () => {
      const { a, b, c } = await logThree();
      const res = await h.request({ method: "GET", url: "/usage", key: w.admin.key });
      expectStatus(res, 200);
      expect(res.json()).toEqual([c, b, a]);
      const slash = await h.request({ method: "GET", url: "/usage/", key: w.admin.key });
      expect(slash.json()).toEqual([c, b, a]);
    });

    it("lists only a member's own records", async () => {
      const { b, c } = await logThree();
      const res = await h.request({ method: "GET", url: "/usage?skip=0&limit=50", key: w.member.key });
      expectStatus(res, 200);
      expect(res.json()).toEqual([c, b]);
    });

    it("pages with skip and limit, and skip past the end gives []", async () => {
      const { a, b, c } = await logThree();
      const get = async (qs: string) =>
        (await h.request({ method: "GET", url: `/usage?${qs}`, key: w.admin.key })).json();
      expect(await get("skip=0&limit=1")).toEqual([c]);
      expect(await get("skip=1&limit=1")).toEqual([b]);
      expect(await get("skip=2&limit=1000")).toEqual([a]);
      expect(await get("skip=3")).toEqual([]);
      expect(await get("skip=1000")).toEqual([]);
      expect(await get("limit=1000")).toEqual([c, b, a]);
    });

    it("defaults limit to 50", async () => {
      await Promise.all(Array.from({ length: 55 }, () => logUsage(h, w.admin.key)));
      const res = await h.request({ method: "GET", url: "/usage", key: w.admin.key });
      expect(res.json()).toHaveLength(50);
    });

    it("lets the root key list an account named by account_id", async () => {
      const { a, b, c } = await logThree();
      const res = await h.request({ method: "GET", url: `/usage?account_id=${w.account.id}`, key: ROOT_KEY });
      expectStatus(res, 200);
      expect(res.json()).toEqual([c, b, a]);
    });

    it("shows events from POST /v1/events and the license report with sensible api_name and endpoint", async () => {
      const ev = await h.request({
        method: "POST",
        url: "/v1/events",
        key: w.member.key,
        payload: {
          events: [
            { id: "e1", model_id: "gpt-mini", quantity: 1000, timestamp: "2025-06-15T11:00:00Z" },
            {
              id: "e2",
              model_id: "gpt-mini",
              quantity: 10,
              api_name: "chat",
              endpoint: "/chat",
              timestamp: "2025-06-15T11:30:00Z",
            },
          ],
        },
      });
      expectStatus(ev, 200);
      const lic = await h.request({
        method: "POST",
        url: `/v1/accounts/${w.account.id}/licenses`,
        key: ROOT_KEY,
        payload: { model_id: "flux-1-dev", starts_at: "2025-01-01T00:00:00Z" },
      });
      expectStatus(lic, 201);
      const rep = await h.request({
        method: "POST",
        url: "/v1/licenses/models/flux-1-dev/usage",
        headers: { "x-key": w.member.key },
        payload: { number_of_generations: 2 },
      });
      expectStatus(rep, 200);
      const res = await h.request({ method: "GET", url: "/usage", key: w.member.key });
      expectStatus(res, 200);
      const rows = res.json() as Record<string, unknown>[];
      expect(rows.map((r) => [r.api_name, r.endpoint, r.units_used, r.cost_usd, r.user_id])).toEqual([
        ["flux-1-dev", "/v1/licenses/models/{model_slug}/usage", 2, 0.05, w.member.id],
        ["chat", "/chat", 10, 0.0000015, w.member.id],
        ["gpt-mini", "/v1/events", 1000, 0.00015, w.member.id],
      ]);
      expect(rows[2].created_at).toBe("2025-06-15T11:00:00.000Z");
      expect(rows.every((r) => r.status_active === true && r.api_key_used === null)).toBe(true);
    });
  });

  describe("GET /usage/user/{user_id} and GET /usage/{usage_id}", () => {
    it("lists a user's records for an admin of the account and for the user", async () => {
      const mine = await logUsage(h, w.member.key);
      await logUsage(h, w.admin.key);
      for (const key of [w.admin.key, w.member.key]) {
        const res = await h.request({ method: "GET", url: `/usage/user/${w.member.id}`, key });
        expectStatus(res, 200);
        expect(res.json()).toEqual([mine]);
      }
      const paged = await h.request({
        method: "GET",
        url: `/usage/user/${w.member.id}?skip=1`,
        key: w.admin.key,
      });
      expect(paged.json()).toEqual([]);
    });

    it("answers one record to its owner and to an admin", async () => {
      const rec = await logUsage(h, w.member.key);
      for (const key of [w.member.key, w.admin.key, ROOT_KEY]) {
        const res = await h.request({ method: "GET", url: `/usage/${rec.usage_id}`, key });
        expectStatus(res, 200);
        expect(res.json()).toEqual(rec);
      }
    });
  });

  describe("PUT /usage/{usage_id}", () => {
    it("applies the seed's refund and moves every total, verified against the raw events", async () => {
      const keep = await logUsage(h, w.member.key, { ...SEED_BODY, units_used: 100, cost_usd: "0.0010" });
      const rec = await logUsage(h, w.member.key);
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 2, quantity: whole(446), cost: d("0.0053") },
      ]);
      h.clock.advance(60_000);
      const res = await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: w.admin.key,
        payload: { units_used: 0, cost_usd: 0.0 },
      });
      expectStatus(res, 200);
      expect(res.json()).toEqual({ ...rec, units_used: 0, cost_usd: 0 });
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 2, quantity: whole(100), cost: d("0.001") },
      ]);
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e?.unitPrice).toBe(0n);
      const byKey = await h.services.query.totals({
        accountId: w.account.id,
        family: "key",
        keyId: w.member.keyId,
      });
      expect(byKey.reduce((s, l) => s + l.cost, 0n)).toBe(d("0.001"));
      expect(
        (await h.request({ method: "GET", url: `/usage/${keep.usage_id}`, key: w.admin.key })).json(),
      ).toEqual(keep);
      await expectRollupsConsistent(h);
    });

    it("updates one field at a time and recomputes the unit price from cost and units", async () => {
      const rec = await logUsage(h, w.member.key, { ...SEED_BODY, units_used: 10, cost_usd: 1 });
      const put = (payload: object) =>
        h.request({ method: "PUT", url: `/usage/${rec.usage_id}`, key: w.admin.key, payload });
      const r1 = await put({ cost_usd: "0.0043" });
      expectStatus(r1, 200);
      expect(r1.json()).toMatchObject({ units_used: 10, cost_usd: 0.0043, status_active: true });
      expect((await h.services.store.getEvent(w.account.id, rec.usage_id))?.unitPrice).toBe(d("0.00043"));
      const r2 = await put({ units_used: 3 });
      expect(r2.json()).toMatchObject({ units_used: 3, cost_usd: 0.0043 });
      // 0.0043 / 3 = 0.001433333...
      expect((await h.services.store.getEvent(w.account.id, rec.usage_id))?.unitPrice).toBe(d("0.001433333"));
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 1, quantity: whole(3), cost: d("0.0043") },
      ]);
      await expectRollupsConsistent(h);
    });

    it("status_active false keeps the record listed but counts it nowhere; true counts it again", async () => {
      const rec = await logUsage(h, w.member.key);
      const off = await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: w.admin.key,
        payload: { status_active: false },
      });
      expectStatus(off, 200);
      expect(off.json()).toEqual({ ...rec, status_active: false });
      expect(await accountTotals(h, w.account.id)).toEqual([]);
      expect(await h.services.query.totals({ accountId: w.account.id, family: "key" })).toEqual([]);
      const list = await h.request({ method: "GET", url: "/usage", key: w.member.key });
      expect(list.json()).toEqual([{ ...rec, status_active: false }]);
      await expectRollupsConsistent(h);
      const on = await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: w.admin.key,
        payload: { status_active: true },
      });
      expect(on.json()).toEqual(rec);
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 1, quantity: whole(346), cost: d("0.0043") },
      ]);
      await expectRollupsConsistent(h);
    });
  });

  describe("DELETE /usage/{usage_id}", () => {
    it("answers 204, takes the record out of listings and totals, and keeps rollups exact", async () => {
      const keep = await logUsage(h, w.member.key, { ...SEED_BODY, cost_usd: 0.0001 });
      const rec = await logUsage(h, w.member.key);
      const res = await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      expectStatus(res, 204);
      expect(res.body).toBe("");
      const gone = await h.request({ method: "GET", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      expectStatus(gone, 404);
      expect((await h.request({ method: "GET", url: "/usage", key: w.admin.key })).json()).toEqual([keep]);
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 1, quantity: whole(346), cost: d("0.0001") },
      ]);
      await expectRollupsConsistent(h);
      const again = await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      expectStatus(again, 404);
    });
  });

  describe("GET /v1/audit", () => {
    it("records who changed or deleted which record, when, before and after", async () => {
      const rec = await logUsage(h, w.member.key);
      h.clock.set("2025-06-15T12:05:00Z");
      await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: w.admin.key,
        payload: { units_used: 0, cost_usd: 0 },
      });
      h.clock.set("2025-06-15T12:10:00Z");
      await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      const res = await h.request({
        method: "GET",
        url: `/v1/audit?usage_id=${rec.usage_id}`,
        key: w.admin.key,
      });
      expectStatus(res, 200);
      const snapshot = {
        usage_id: rec.usage_id,
        event_id: expect.any(String),
        model_id: "llm_query",
        timestamp: "2025-06-15T12:00:00.000Z",
        status_active: true,
      };
      expect(res.json().has_more).toBe(false);
      expect(res.json().data).toEqual([
        {
          id: expect.any(String),
          account_id: w.account.id,
          resource_type: "usage_record",
          resource_id: rec.usage_id,
          usage_id: rec.usage_id,
          action: "delete",
          actor_key_id: w.admin.keyId,
          actor_user_id: w.admin.id,
          at: "2025-06-15T12:10:00.000Z",
          before: { ...snapshot, quantity: 0, unit_price: 0, cost: 0 },
          after: null,
        },
        {
          id: expect.any(String),
          account_id: w.account.id,
          resource_type: "usage_record",
          resource_id: rec.usage_id,
          usage_id: rec.usage_id,
          action: "update",
          actor_key_id: w.admin.keyId,
          actor_user_id: w.admin.id,
          at: "2025-06-15T12:05:00.000Z",
          before: { ...snapshot, quantity: 346, unit_price: 0.000012428, cost: 0.0043 },
          after: { ...snapshot, quantity: 0, unit_price: 0, cost: 0 },
        },
      ]);
      expect(res.body).toContain('"cost":0.0043');
      // paged newest first: the next page starts after the last id of the previous one
      const limited = await h.request({ method: "GET", url: "/v1/audit?limit=1", key: w.admin.key });
      expect(limited.json()).toEqual({ data: [res.json().data[0]], has_more: true });
      const next = await h.request({
        method: "GET",
        url: `/v1/audit?limit=1&starting_after=${limited.json().data[0].id}`,
        key: w.admin.key,
      });
      expect(next.json()).toEqual({ data: [res.json().data[1]], has_more: false });
      const past = await h.request({
        method: "GET",
        url: `/v1/audit?limit=1&starting_after=${next.json().data[0].id}`,
        key: w.admin.key,
      });
      expect(past.json()).toEqual({ data: [], has_more: false });
      const root = await h.request({
        method: "GET",
        url: `/v1/audit?account_id=${w.account.id}`,
        key: ROOT_KEY,
      });
      expectStatus(root, 200);
      expect(root.json()).toEqual(res.json());
    });
  });
});
