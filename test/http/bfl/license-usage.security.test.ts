import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import {
  accountTotals,
  grantLicense,
  type KeyStyle,
  NOT_LICENSED_TEXT,
  report,
  revokeKey,
  SUCCESS,
  storedEvents,
  usageUrl,
} from "./license-world.ts";

const MISSING_KEY = { detail: "Missing API key" };
const BAD_KEY = { detail: "Invalid or revoked API key" };

describe.each(storeKinds())("POST /v1/licenses/models/{model_slug}/usage: security ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await grantLicense(h, w.account.id);
  });
  afterEach(async () => h.close());

  it.each(["x-key", "bearer", "key"] as KeyStyle[])("accepts the key as %s", async (style) => {
    const res = await report(h, w.member.key, { body: { number_of_generations: 2 }, style });
    expectStatus(res, 200);
    expect(res.json()).toEqual(SUCCESS);
    const events = await storedEvents(h, w.account.id);
    expect(events.map((e) => [e.userId, e.keyId])).toEqual([[w.member.id, w.member.keyId]]);
  });

  it("accepts a lower-case scheme and a padded x-key", async () => {
    expectStatus(
      await report(h, null, { body: {}, headers: { authorization: `bearer ${w.admin.key}` } }),
      200,
    );
    expectStatus(await report(h, null, { body: {}, headers: { "x-key": `  ${w.admin.key} ` } }), 200);
  });

  it("no key -> 401 {detail}, nothing written", async () => {
    const res = await report(h, null, { body: { number_of_generations: 1 } });
    expectStatus(res, 401);
    expect(res.json()).toEqual(MISSING_KEY);
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it.each([
    ["an unknown x-key", { "x-key": "tly_not-a-real-key" }],
    ["an unknown bearer key", { authorization: "Bearer tly_not-a-real-key" }],
    ["an empty x-key", { "x-key": "" }],
    ["a bearer scheme with no key", { authorization: "Bearer" }],
    ["a Basic scheme", { authorization: "Basic dXNlcjpwYXNz" }],
  ])("%s -> 401", async (_name, headers) => {
    const res = await report(h, null, { body: {}, headers });
    expectStatus(res, 401);
    expect([MISSING_KEY, BAD_KEY]).toContainEqual(res.json());
    expect(res.body).not.toContain("tly_not-a-real-key");
  });

  it("an unknown key -> 401 'Invalid or revoked API key'", async () => {
    const res = await report(h, "tly_not-a-real-key", { body: {} });
    expectStatus(res, 401);
    expect(res.json()).toEqual(BAD_KEY);
  });

  it("the key is checked before the body, the slug and the license", async () => {
    const cases = [
      { body: { number_of_generations: 0 } },
      { raw: "{broken", headers: { "content-type": "application/json" } },
      { raw: "", headers: { "content-type": "application/json" } },
      { raw: "null", headers: { "content-type": "application/json" } },
      { raw: "text", headers: { "content-type": "text/plain" } },
      {},
      { slug: "unknown-model", body: {} },
    ];
    for (const opts of cases) {
      const none = await report(h, null, opts);
      expect(none.statusCode, `${JSON.stringify(opts)}: ${none.body}`).toBe(401);
      expect(none.json()).toEqual(MISSING_KEY);
      const bad = await report(h, "tly_wrong", opts);
      expect(bad.statusCode, `${JSON.stringify(opts)}: ${bad.body}`).toBe(401);
      expect(bad.json()).toEqual(BAD_KEY);
    }
  });

  it("a revoked key is refused at once", async () => {
    expectStatus(await report(h, w.member.key, { body: {} }), 200);
    await revokeKey(h, w.member.keyId);
    const res = await report(h, w.member.key, { body: {} });
    expectStatus(res, 401);
    expect(res.json()).toEqual(BAD_KEY);
    // the user's other credentials are unaffected
    expectStatus(await report(h, w.admin.key, { body: {} }), 200);
    expect((await storedEvents(h, w.account.id)).map((e) => e.keyId)).toEqual([
      w.member.keyId,
      w.admin.keyId,
    ]);
  });

  it("the operator's root key holds no license: 403, nothing written anywhere", async () => {
    const res = await report(h, ROOT_KEY, { body: {} });
    expectStatus(res, 403);
    expect(res.json()).toEqual({ detail: NOT_LICENSED_TEXT });
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it("one account's license does not cover another account", async () => {
    const res = await report(h, w.other.admin.key, { body: { number_of_generations: 3 } });
    expectStatus(res, 403);
    expect(res.json()).toEqual({ detail: NOT_LICENSED_TEXT });
    expect(await accountTotals(h, w.account.id)).toEqual([]);
    expect(await accountTotals(h, w.other.accountId)).toEqual([]);
  });

  it("reports land in the reporting key's account only; Idempotency-Keys are per account", async () => {
    await grantLicense(h, w.other.accountId);
    const headers = { "idempotency-key": "shared-key" };
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 2 }, headers }), 200);
    expectStatus(await report(h, w.other.admin.key, { body: { number_of_generations: 5 }, headers }), 200);
    expect((await storedEvents(h, w.account.id)).map((e) => e.quantity)).toEqual([2n * 10n ** 18n]);
    expect((await storedEvents(h, w.other.accountId)).map((e) => [e.quantity, e.keyId])).toEqual([
      [5n * 10n ** 18n, w.other.admin.keyId],
    ]);
  });

  it("does not log or echo the key in any answer", async () => {
    for (const opts of [{ body: {} }, { body: { number_of_generations: 0 } }, { slug: "nope", body: {} }]) {
      const res = await report(h, w.admin.key, opts);
      expect(res.body).not.toContain(w.admin.key);
    }
  });

  it("every answer carries x-request-id", async () => {
    const answers = [
      await report(h, w.admin.key, { body: {} }),
      await report(h, null, { body: {} }),
      await report(h, w.admin.key, { body: { number_of_generations: -1 } }),
      await h.request({ method: "GET", url: usageUrl() }),
    ];
    for (const res of answers) expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});
