import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { maskSecret } from "../../../src/domain/keys.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, createUserWithKey, type World } from "../../support/world.ts";
import {
  accountTotals,
  d,
  expectRollupsConsistent,
  logUsage,
  SEED_BODY,
  whole,
} from "./usage-log.support.ts";

describe.each(storeKinds())("usage log, security ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  /** Every route of the surface, against one existing record. */
  const routes = (usageId: string, userId: string) =>
    [
      ["POST", "/usage", SEED_BODY],
      ["GET", "/usage?skip=0&limit=50", undefined],
      ["GET", `/usage/user/${userId}`, undefined],
      ["GET", `/usage/${usageId}`, undefined],
      ["PUT", `/usage/${usageId}`, { units_used: 0, cost_usd: 0 }],
      ["DELETE", `/usage/${usageId}`, undefined],
    ] as const;

  const unchanged = async () =>
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: "llm_query", requests: 1, quantity: whole(346), cost: d("0.0043") },
    ]);

  describe("authentication", () => {
    it("answers 401 {detail: 'Not authenticated'} on every route without a key", async () => {
      const rec = await logUsage(h, w.member.key);
      for (const [method, url, payload] of routes(rec.usage_id, w.member.id)) {
        const res = await h.request({ method, url, payload });
        expectStatus(res, 401);
        expect(res.json()).toEqual({ detail: "Not authenticated" });
        expect(res.headers["www-authenticate"]).toBe("Bearer");
      }
      await unchanged();
    });

    it("answers 401 to unknown keys and to keys revoked a moment ago, on every route", async () => {
      const rec = await logUsage(h, w.member.key);
      const revoke = await h.request({ method: "DELETE", url: `/v1/keys/${w.admin.keyId}`, key: ROOT_KEY });
      expectStatus(revoke, 204);
      for (const key of [w.admin.key, "tly_unknownunknownunknownunknownunknown00"]) {
        for (const [method, url, payload] of routes(rec.usage_id, w.member.id)) {
          const res = await h.request({ method, url, payload, key });
          expectStatus(res, 401);
          expect(res.json()).toEqual({ detail: "Invalid or revoked API key" });
        }
      }
      const audit = await h.request({ method: "GET", url: "/v1/audit", key: w.admin.key });
      expectStatus(audit, 401);
      await unchanged();
    });

    it("refuses before validating: a bad body without a key is 401, not 422", async () => {
      const res = await h.request({ method: "POST", url: "/usage", payload: { units_used: -1 } });
      expectStatus(res, 401);
    });

    it("accepts Bearer, Key and x-key", async () => {
      for (const headers of [
        { authorization: `Bearer ${w.member.key}` },
        { authorization: `Key ${w.member.key}` },
        { "x-key": w.member.key },
      ]) {
        const res = await h.request({ method: "GET", url: "/usage", headers });
        expectStatus(res, 200);
      }
    });
  });

  describe("a member", () => {
    it("sees only its own records, and the admin's records are not found", async () => {
      const theirs = await logUsage(h, w.admin.key);
      const mine = await logUsage(h, w.member.key);
      const list = await h.request({ method: "GET", url: "/usage", key: w.member.key });
      expect(list.json()).toEqual([mine]);
      const one = await h.request({ method: "GET", url: `/usage/${theirs.usage_id}`, key: w.member.key });
      expectStatus(one, 404);
      expect(one.json()).toEqual({ detail: "Usage record not found" });
    });

    it("is refused another user's list with 403", async () => {
      await logUsage(h, w.admin.key);
      const res = await h.request({ method: "GET", url: `/usage/user/${w.admin.id}`, key: w.member.key });
      expectStatus(res, 403);
      expect(res.json()).toEqual({
        detail: "Only an account admin or the user itself may read these records",
      });
    });

    it("may not correct or delete, even its own records (403 before the body is read)", async () => {
      const rec = await logUsage(h, w.member.key);
      for (const payload of [{ units_used: 0, cost_usd: 0 }, { status_active: false }, {}, { bogus: 1 }]) {
        const put = await h.request({
          method: "PUT",
          url: `/usage/${rec.usage_id}`,
          key: w.member.key,
          payload,
        });
        expectStatus(put, 403);
        expect(put.json()).toEqual({ detail: "Only an account admin may change or delete usage records" });
      }
      const del = await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.member.key });
      expectStatus(del, 403);
      expect(
        (await h.request({ method: "GET", url: `/usage/${rec.usage_id}`, key: w.member.key })).json(),
      ).toEqual(rec);
      await unchanged();
    });

    it("may not read the audit trail", async () => {
      const res = await h.request({ method: "GET", url: "/v1/audit", key: w.member.key });
      expectStatus(res, 403);
      expect(res.json().error.code).toBe("FORBIDDEN");
    });

    it("cannot replay another user's Idempotency-Key to read that user's record", async () => {
      const other = await createUserWithKey(h, w.account.id, "dave", "member");
      await logUsage(h, other.key, SEED_BODY, { "idempotency-key": "shared" });
      const res = await h.request({
        method: "POST",
        url: "/usage",
        key: w.member.key,
        payload: SEED_BODY,
        headers: { "idempotency-key": "shared" },
      });
      expectStatus(res, 409);
      expect(res.json()).toEqual({ detail: "This Idempotency-Key was already used" });
      await unchanged();
    });
  });

  describe("another account", () => {
    it("gets 404 for every id of this account and sees none of its records", async () => {
      const rec = await logUsage(h, w.member.key);
      const key = w.other.admin.key;
      for (const [method, url, payload] of routes(rec.usage_id, w.member.id).slice(2)) {
        const res = await h.request({ method, url, payload, key });
        expectStatus(res, 404);
        expect(res.json().detail).toMatch(/not found/);
      }
      const list = await h.request({ method: "GET", url: "/usage", key });
      expect(list.json()).toEqual([]);
      const audit = await h.request({ method: "GET", url: `/v1/audit?account_id=${w.account.id}`, key });
      expectStatus(audit, 404);
      await unchanged();
      await expectRollupsConsistent(h);
    });

    it("cannot see this account's audit entries through a usage_id", async () => {
      const rec = await logUsage(h, w.member.key);
      await h.request({ method: "DELETE", url: `/usage/${rec.usage_id}`, key: w.admin.key });
      const res = await h.request({
        method: "GET",
        url: `/v1/audit?usage_id=${rec.usage_id}`,
        key: w.other.admin.key,
      });
      expectStatus(res, 200);
      expect(res.json()).toEqual({ data: [], has_more: false });
    });
  });

  describe("the root key", () => {
    it("cannot log a record (a record belongs to a user) but may read and correct any", async () => {
      const post = await h.request({ method: "POST", url: "/usage", key: ROOT_KEY, payload: SEED_BODY });
      expectStatus(post, 403);
      const rec = await logUsage(h, w.member.key);
      const put = await h.request({
        method: "PUT",
        url: `/usage/${rec.usage_id}`,
        key: ROOT_KEY,
        payload: { cost_usd: "0.0042" },
      });
      expectStatus(put, 200);
      const audit = await h.request({
        method: "GET",
        url: `/v1/audit?account_id=${w.account.id}`,
        key: ROOT_KEY,
      });
      expect(audit.json().data).toMatchObject([
        { action: "update", actor_key_id: null, actor_user_id: null },
      ]);
    });
  });

  describe("api_key_used", () => {
    it("never stores or shows a live key's secret in clear", async () => {
      const rec = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: w.member.key });
      const masked = maskSecret(w.member.key);
      expect(masked).toMatch(/^tly_.{6}\.\.\..{4}$/);
      expect(rec.api_key_used).toBe(masked);
      const e = await h.services.store.getEvent(w.account.id, rec.usage_id);
      expect(e?.apiKeyUsed).toBe(masked);
      for (const url of ["/usage", `/usage/${rec.usage_id}`, `/usage/user/${w.member.id}`]) {
        const res = await h.request({ method: "GET", url, key: w.admin.key });
        expect(res.body).not.toContain(w.member.key);
        expect(res.body).toContain(masked);
      }
    });

    it("keeps a revoked key's text as given (it is no longer a secret)", async () => {
      await h.request({ method: "DELETE", url: `/v1/keys/${w.admin.keyId}`, key: ROOT_KEY });
      const rec = await logUsage(h, w.member.key, { ...SEED_BODY, api_key_used: w.admin.key });
      expect(rec.api_key_used).toBe(w.admin.key);
    });
  });
});
