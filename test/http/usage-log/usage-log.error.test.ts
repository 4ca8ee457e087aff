import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { accountTotals, d, logUsage, SEED_BODY, whole } from "./usage-log.support.ts";

describe.each(storeKinds())("usage log, bad input ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    h.request({ method: "POST", url: "/usage", key: w.member.key, payload: payload as object, headers });

  describe("POST /usage", () => {
    it.each([
      [
        { ...SEED_BODY, units_used: -1 },
        ["body", "units_used"],
        "must not be negative",
        "greater_than_equal",
      ],
      [
        { ...SEED_BODY, cost_usd: -0.0043 },
        ["body", "cost_usd"],
        "must not be negative",
        "greater_than_equal",
      ],
      [
        { ...SEED_BODY, units_used: "abc" },
        ["body", "units_used"],
        "must be a decimal number",
        "decimal_error",
      ],
      [
        { ...SEED_BODY, units_used: "1.1234567" },
        ["body", "units_used"],
        "must have at most 6 decimal places",
        "decimal_error",
      ],
      [
        { ...SEED_BODY, cost_usd: 1e10 },
        ["body", "cost_usd"],
        "must be at most 1000000000",
        "less_than_equal",
      ],
      [{ ...SEED_BODY, units_used: true }, ["body", "units_used"], "must be number,string", "type_error"],
      [{ ...SEED_BODY, cost_usd: null }, ["body", "cost_usd"], "must be number,string", "type_error"],
      [
        { ...SEED_BODY, api_name: "" },
        ["body", "api_name"],
        "must NOT have fewer than 1 characters",
        "value_error",
      ],
      [{ ...SEED_BODY, api_name: 7 }, ["body", "api_name"], "must be string", "type_error"],
      [{ ...SEED_BODY, api_key_used: 5 }, ["body", "api_key_used"], "must be string,null", "type_error"],
      [{ ...SEED_BODY, extra: 1 }, ["body", "extra"], "Extra inputs are not permitted", "extra_forbidden"],
    ])("refuses %j with 422 naming the field", async (payload, loc, msg, type) => {
      const res = await post(payload);
      expectStatus(res, 422);
      expect(res.json()).toEqual({ detail: [{ loc, msg, type }] });
      expect(await accountTotals(h, w.account.id)).toEqual([]);
    });

    it.each(["units_used", "cost_usd", "api_name", "endpoint"])("requires %s", async (field) => {
      const { [field as keyof typeof SEED_BODY]: _omitted, ...rest } = SEED_BODY;
      const res = await post(rest);
      expectStatus(res, 422);
      expect(res.json()).toEqual({
        detail: [{ loc: ["body", field], msg: "Field required", type: "missing" }],
      });
    });

    it("refuses a body that is not JSON, or not an object", async () => {
      const bad = await h.request({
        method: "POST",
        url: "/usage",
        key: w.member.key,
        payload: "{oops",
        headers: { "content-type": "application/json" },
      });
      expectStatus(bad, 422);
      expect(bad.json()).toEqual({
        detail: [{ loc: ["body"], msg: "JSON decode error", type: "json_invalid" }],
      });
      const list = await post([SEED_BODY]);
      expectStatus(list, 422);
      expect(list.json().detail[0].loc).toEqual(["body"]);
    });

    it("refuses an Idempotency-Key longer than 190 characters", async () => {
      const res = await post(SEED_BODY, { "idempotency-key": "k".repeat(191) });
      expectStatus(res, 422);
      expect(res.json()).toEqual({
        detail: [
          { loc: ["header", "idempotency-key"], msg: "must be 1 to 190 characters", type: "string_type" },
        ],
      });
    });

    it("takes decimal strings exactly", async () => {
      const rec = await logUsage(h, w.member.key, {
        ...SEED_BODY,
        units_used: "0.000001",
        cost_usd: "0.123456789012345678",
      });
      expect(rec.units_used).toBe(0.000001);
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e?.cost).toBe(d("0.123456789012345678"));
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 1, quantity: d("0.000001"), cost: d("0.123456789012345678") },
      ]);
    });
  });

  describe("GET /usage paging", () => {
    it.each([
      ["limit=0", ["query", "limit"], "must be >= 1"],
      ["limit=1001", ["query", "limit"], "must be <= 1000"],
      ["limit=abc", ["query", "limit"], "must be integer"],
      ["limit=1.5", ["query", "limit"], "must be integer"],
      ["skip=-1", ["query", "skip"], "must be >= 0"],
    ])("refuses %s with 422 (never clamped)", async (qs, loc, msg) => {
      for (const url of [`/usage?${qs}`, `/usage/user/${w.member.id}?${qs}`]) {
        const res = await h.request({ method: "GET", url, key: w.admin.key });
        expectStatus(res, 422);
        expect(res.json()).toEqual({ detail: [{ loc, msg, type: expect.any(String) }] });
      }
    });

    it("asks the root key which account to list", async () => {
      const res = await h.request({ method: "GET", url: "/usage", key: ROOT_KEY });
      expectStatus(res, 422);
      expect(res.json()).toEqual({
        detail: [{ loc: ["query", "account_id"], msg: "Field required with the root key", type: "missing" }],
      });
    });
  });

  describe("PUT /usage/{usage_id}", () => {
    it.each([
      [{}, ["body"], "must NOT have fewer than 1 properties"],
      [{ status: "refunded" }, ["body", "status"], "Extra inputs are not permitted"],
      [{ units_used: -5 }, ["body", "units_used"], "must not be negative"],
      [{ cost_usd: -0.01 }, ["body", "cost_usd"], "must not be negative"],
      [{ cost_usd: "1e-19" }, ["body", "cost_usd"], "must have at most 18 decimal places"],
      [{ status_active: "no" }, ["body", "status_active"], "must be boolean"],
      [{ units_used: null }, ["body", "units_used"], "must be number,string"],
    ])("refuses %j with 422 and changes nothing", async (payload, loc, msg) => {
      const rec = await logUsage(h, w.member.key);
      const res = await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: w.admin.key,
        payload,
      });
      expectStatus(res, 422);
      expect(res.json()).toEqual({ detail: [{ loc, msg, type: expect.any(String) }] });
      expect(await accountTotals(h, w.account.id)).toEqual([
        { modelId: "llm_query", requests: 1, quantity: whole(346), cost: d("0.0043") },
      ]);
      const audit = await h.request({ method: "GET", url: "/v1/audit", key: w.admin.key });
      expect(audit.json()).toEqual({ data: [], has_more: false });
    });

    it("refuses a missing body", async () => {
      const rec = await logUsage(h, w.member.key);
      const res = await h.request({ method: "PUT", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      expectStatus(res, 422);
      expect(res.json().detail[0].loc).toEqual(["body"]);
    });
  });

  describe("not found", () => {
    it("answers 404 {detail} for unknown records and users", async () => {
      const id = "01900000-0000-7000-8000-000000000000";
      for (const [method, url, payload] of [
        ["GET", `/usage/${id}`, undefined],
        ["PUT", `/usage/${id}`, { units_used: 1 }],
        ["DELETE", `/usage/${id}`, undefined],
        ["GET", "/usage/not-a-uuid", undefined],
      ] as const) {
        const res = await h.request({ method, url, key: w.admin.key, payload });
        expectStatus(res, 404);
        expect(res.json()).toEqual({ detail: "Usage record not found" });
      }
      const user = await h.request({ method: "GET", url: `/usage/user/${id}`, key: w.admin.key });
      expectStatus(user, 404);
      expect(user.json()).toEqual({ detail: "User not found" });
    });

    it("answers unknown routes under /usage with 404 {detail: 'Not Found'}, key or not", async () => {
      for (const [method, url] of [
        ["GET", "/usage/a/b/c"],
        ["POST", "/usage/abc"],
        ["PATCH", "/usage/abc"],
        ["GET", "/usage/user/x/y"],
      ] as const) {
        for (const key of [w.admin.key, null]) {
          const res = await h.request({ method, url, key });
          expectStatus(res, 404);
          expect(res.json()).toEqual({ detail: "Not Found" });
        }
      }
    });
  });

  describe("GET /v1/audit", () => {
    it("validates limit and asks the root key for account_id (native error format)", async () => {
      const bad = await h.request({ method: "GET", url: "/v1/audit?limit=0", key: w.admin.key });
      expectStatus(bad, 400);
      expect(bad.json().error.issues[0].loc).toEqual(["query", "limit"]);
      const big = await h.request({ method: "GET", url: "/v1/audit?limit=1001", key: w.admin.key });
      expectStatus(big, 400);
      const root = await h.request({ method: "GET", url: "/v1/audit", key: ROOT_KEY });
      expectStatus(root, 400);
      expect(root.json().error.issues[0].loc).toEqual(["query", "account_id"]);
    });

    it("takes a cursor only from this very list: not another account's, filter's or list's id", async () => {
      const rec = await logUsage(h, w.admin.key);
      await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      const entry = (await h.request({ method: "GET", url: "/v1/audit", key: w.admin.key })).json().data[0];
      const ok = await h.request({
        method: "GET",
        url: `/v1/audit?starting_after=${entry.id}`,
        key: w.admin.key,
      });
      expect(ok.json()).toEqual({ data: [], has_more: false });
      for (const url of [
        `/v1/audit?starting_after=${rec.usage_id}`,
        `/v1/audit?starting_after=${w.admin.keyId}`,
        `/v1/audit?resource_type=account&starting_after=${entry.id}`,
        `/v1/audit?usage_id=other&starting_after=${entry.id}`,
        `/v1/audit?account_id=${w.other.accountId}&starting_after=${entry.id}`,
      ]) {
        const res = await h.request({
          method: "GET",
          url,
          key: url.includes("account_id") ? ROOT_KEY : w.admin.key,
        });
        expectStatus(res, 400);
        expect(res.json().error.issues[0].loc, url).toEqual(["query", "starting_after"]);
      }
    });
  });
});
