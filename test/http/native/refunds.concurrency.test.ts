import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

describe.each(storeKinds())("refunds sent at once ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("together never exceed the payment; the others are refused with what is left", async () => {
    const base = `/v1/accounts/${w.account.id}`;
    const pay = await h.request({
      method: "POST",
      url: `${base}/payments`,
      payload: { amount_usd: "10" },
      key: ROOT_KEY,
    });
    expectStatus(pay, 201);
    const paymentId = pay.json().id;
    // 20 refunds of 1.5 (30 in all) against 10: at most 6 fit
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        h.request({
          method: "POST",
          url: `${base}/payments/${paymentId}/refund`,
          payload: { amount_usd: "1.5" },
          key: ROOT_KEY,
        }),
      ),
    );
    const accepted = answers.filter((r) => r.statusCode === 201);
    const refused = answers.filter((r) => r.statusCode !== 201);
    for (const r of refused) {
      expect([400, 409], r.body).toContain(r.statusCode);
      expect(r.body).toMatch(/left to refund|refunded in full/);
    }
    expect(accepted).toHaveLength(6);

    const payments = (
      await h.request({ method: "GET", url: `${base}/payments?limit=100`, key: ROOT_KEY })
    ).json();
    const refunds = payments.data.filter((p: { refund_of: string | null }) => p.refund_of === paymentId);
    expect(refunds).toHaveLength(accepted.length);
    expect(refunds.reduce((s: number, p: { amount_usd: number }) => s + p.amount_usd, 0)).toBeCloseTo(-9, 9);
    // one audit entry per refund written, none for the refused ones
    const audit = (
      await h.request({
        method: "GET",
        url: `/v1/audit?account_id=${w.account.id}&resource_type=payment&limit=100`,
        key: ROOT_KEY,
      })
    ).json();
    expect(audit.data).toHaveLength(accepted.length);
  });
});
