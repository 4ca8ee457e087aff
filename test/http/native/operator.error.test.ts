import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

describe.each(storeKinds())("operator API, refusals and bad input ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const call = (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, key: string = ROOT_KEY) =>
    h.request({ method, url, payload: payload as object, key });
  const ids = async (url: string, key: string = ROOT_KEY) => {
    const res = await call("GET", url, undefined, key);
    expectStatus(res, 200);
    return res.json().data.map((x: { id: string }) => x.id);
  };
  const expectInvalid = (res: Awaited<ReturnType<typeof call>>, field: string) => {
    expectStatus(res, 400);
    expect(res.json().error.message).toContain(field);
  };

  it("a cursor from another list, or an unknown one, is a 400 naming starting_after", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    expectInvalid(await call("GET", `/v1/accounts?starting_after=${w.admin.id}`), "starting_after");
    expectInvalid(await call("GET", `/v1/accounts?starting_after=nope`), "starting_after");
    expectInvalid(await call("GET", `${base}/users?starting_after=${w.other.admin.id}`), "starting_after");
    expectInvalid(
      await call("GET", `/v1/users/${w.member.id}/keys?starting_after=${w.admin.keyId}`),
      "starting_after",
    );
    expectInvalid(
      await call("GET", `${base}/keys?user_id=${w.member.id}&starting_after=${w.admin.keyId}`),
      "starting_after",
    );
    expectInvalid(
      await call("GET", `/v1/accounts?name_prefix=Glo&starting_after=${w.account.id}`),
      "starting_after",
    );
    const pay = (await call("POST", `${base}/payments`, { amount_usd: 5 })).json();
    expectInvalid(await call("GET", `${base}/licenses?starting_after=${pay.id}`), "starting_after");
    expectInvalid(
      await call("GET", `/v1/accounts/${w.other.accountId}/payments?starting_after=${pay.id}`),
      "starting_after",
    );
    // past the last page: an empty page
    expect((await call("GET", `${base}/payments?starting_after=${pay.id}`)).json()).toEqual({
      data: [],
      has_more: false,
    });
  });

  it("limit is 1 to 1000", async () => {
    expectInvalid(await call("GET", "/v1/accounts?limit=1001"), "limit");
    expectInvalid(await call("GET", "/v1/accounts?limit=0"), "limit");
    expectInvalid(await call("GET", `/v1/accounts/${w.account.id}/users?limit=x`), "limit");
    const one = (await call("GET", "/v1/accounts?limit=1")).json();
    expect(one.data).toHaveLength(1);
    expect(one.has_more).toBe(true);
    const next = (await call("GET", `/v1/accounts?limit=1&starting_after=${one.data[0].id}`)).json();
    expect(next.data).toHaveLength(1);
    expect(next.data[0].id).not.toBe(one.data[0].id);
    expect(next.has_more).toBe(false);
  });

  it("members see their own user and keys, admins their account, the root everything", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    expect(await ids("/v1/accounts", w.member.key)).toEqual([w.account.id]);
    expect(await ids("/v1/accounts", w.admin.key)).toEqual([w.account.id]);
    expect(await ids("/v1/accounts")).toHaveLength(2);
    expect(await ids(`${base}/users`, w.member.key)).toEqual([w.member.id]);
    expect((await ids(`${base}/users`, w.admin.key)).sort()).toEqual([w.admin.id, w.member.id].sort());
    expect(await ids(`${base}/keys`, w.member.key)).toEqual([w.member.keyId]);
    expect(await ids(`/v1/users/${w.member.id}/keys`, w.member.key)).toEqual([w.member.keyId]);
    expectStatus(await call("GET", `/v1/keys/${w.member.keyId}`, undefined, w.member.key), 200);
    expectStatus(await call("GET", `/v1/users/${w.member.id}`, undefined, w.member.key), 200);
    // another user's things in the same account: an admin's
    expectStatus(await call("GET", `/v1/users/${w.admin.id}`, undefined, w.member.key), 403);
    expectStatus(await call("GET", `/v1/keys/${w.admin.keyId}`, undefined, w.member.key), 403);
    expectStatus(await call("GET", `/v1/users/${w.admin.id}/keys`, undefined, w.member.key), 403);
    expectStatus(await call("GET", `${base}/keys?user_id=${w.admin.id}`, undefined, w.member.key), 403);
    expectStatus(await call("GET", `/v1/keys/${w.member.keyId}`, undefined, w.admin.key), 200);
  });

  it("another account's ids are 404 to admins and members alike", async () => {
    const other = `/v1/accounts/${w.other.accountId}`;
    for (const key of [w.admin.key, w.member.key]) {
      for (const url of [
        other,
        `${other}/users`,
        `${other}/keys`,
        `${other}/licenses`,
        `${other}/subscriptions`,
        `${other}/payments`,
        `/v1/users/${w.other.admin.id}`,
        `/v1/users/${w.other.admin.id}/keys`,
        `/v1/keys/${w.other.admin.keyId}`,
      ]) {
        const res = await call("GET", url, undefined, key);
        expect(res.statusCode, url).toBe(404);
      }
    }
    expectStatus(await call("PATCH", `/v1/users/${w.other.admin.id}`, { role: "member" }, w.admin.key), 404);
    expectStatus(await call("PATCH", `/v1/keys/${w.other.admin.keyId}`, { label: "x" }, w.admin.key), 404);
    expectStatus(await call("POST", `/v1/keys/${w.other.admin.keyId}/rotate`, {}, w.admin.key), 404);
    expectStatus(await call("PATCH", other, { name: "mine" }, w.admin.key), 404);
    // a license of one account is not found under another
    const lic = (await call("POST", `${other}/licenses`, { model_id: "flux-1-dev" })).json();
    expectStatus(await call("GET", `/v1/accounts/${w.account.id}/licenses/${lic.id}`), 404);
    expectStatus(
      await call("PATCH", `/v1/accounts/${w.account.id}/licenses/${lic.id}`, { ends_at: null }),
      404,
    );
  });

  it("changes need their role, and nothing is written when refused", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    expectStatus(await call("PATCH", base, { is_enabled: false }, w.admin.key), 403);
    expectStatus(await call("PATCH", `/v1/users/${w.admin.id}`, { role: "member" }, w.member.key), 403);
    expectStatus(await call("PATCH", `/v1/keys/${w.member.keyId}`, { label: "x" }, w.member.key), 403);
    expectStatus(await call("POST", `/v1/keys/${w.member.keyId}/rotate`, {}, w.member.key), 403);
    const lic = (await call("POST", `${base}/licenses`, { model_id: "flux-1-dev" })).json();
    expectStatus(await call("PATCH", `${base}/licenses/${lic.id}`, { ends_at: null }, w.admin.key), 403);
    const pay = (await call("POST", `${base}/payments`, { amount_usd: 5 })).json();
    expectStatus(await call("POST", `${base}/payments/${pay.id}/refund`, {}, w.admin.key), 403);
    expect((await call("GET", base)).json().is_enabled).toBe(true);
    expect((await call("GET", `/v1/audit?account_id=${w.account.id}`)).json()).toEqual({
      data: [],
      has_more: false,
    });
    expectStatus(await call("GET", "/v1/usage", undefined, w.member.key), 200);
  });

  it("bad bodies are 400s naming the field", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    expectInvalid(await call("PATCH", base, { billing_timezone: "Mars/Olympus" }), "billing_timezone");
    expectInvalid(await call("PATCH", base, { billing_mode: "barter" }), "billing_mode");
    expectInvalid(await call("PATCH", base, { is_enabled: "no" }), "is_enabled");
    expectInvalid(await call("PATCH", base, { plan_id: "pro" }), "plan_id");
    expectStatus(await call("PATCH", base, {}), 400);
    expectInvalid(await call("PATCH", `/v1/users/${w.member.id}`, { role: "owner" }), "role");
    expectStatus(await call("PATCH", `/v1/users/${w.member.id}`, { username: "alice" }), 409);
    expectInvalid(await call("PATCH", `/v1/keys/${w.member.keyId}`, { label: "" }), "label");
    for (const grace_seconds of [-1, 1.5, 2_592_001, "60"]) {
      expectInvalid(
        await call("POST", `/v1/keys/${w.member.keyId}/rotate`, { grace_seconds }),
        "grace_seconds",
      );
    }
    expectStatus(await call("POST", `/v1/keys/${w.member.keyId}/rotate`, { grace: 1 }), 400);
    const lic = (
      await call("POST", `${base}/licenses`, { model_id: "flux-1-dev", starts_at: "2025-06-01T00:00:00Z" })
    ).json();
    expectInvalid(
      await call("PATCH", `${base}/licenses/${lic.id}`, { ends_at: "2025-05-01T00:00:00Z" }),
      "ends_at",
    );
    expectInvalid(await call("PATCH", `${base}/licenses/${lic.id}`, { ends_at: "soon" }), "ends_at");
    expectInvalid(await call("PATCH", `${base}/licenses/${lic.id}`, {}), "ends_at");
    const pay = (await call("POST", `${base}/payments`, { amount_usd: "10" })).json();
    expectInvalid(
      await call("POST", `${base}/payments/${pay.id}/refund`, { amount_usd: "10.01" }),
      "amount_usd",
    );
    expectInvalid(await call("POST", `${base}/payments/${pay.id}/refund`, { amount_usd: "0" }), "amount_usd");
    expectInvalid(
      await call("POST", `${base}/payments/${pay.id}/refund`, { amount_usd: "-1" }),
      "amount_usd",
    );
    const refund = (await call("POST", `${base}/payments/${pay.id}/refund`, { amount_usd: "1" })).json();
    expectStatus(await call("POST", `${base}/payments/${refund.id}/refund`, {}), 409);
    expect((await call("GET", `${base}/payments`)).json().data).toHaveLength(2);
    // a revoked key cannot be rotated
    await h.request({ method: "DELETE", url: `/v1/keys/${w.member.keyId}`, key: ROOT_KEY });
    expectStatus(await call("POST", `/v1/keys/${w.member.keyId}/rotate`, {}), 409);
  });
});
