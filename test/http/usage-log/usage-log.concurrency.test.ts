import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { divDec, parseDec } from "../../../src/domain/decimal.ts";
import { createHarness, expectStatus, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { expectRollupsConsistent, SEED_BODY } from "./usage-log.support.ts";

describe.each(storeKinds())("usage log, concurrent corrections ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("keeps unit_price = cost / quantity when units and cost are corrected at the same time", async () => {
    const created = await h.request({ method: "POST", url: "/usage", key: w.admin.key, payload: SEED_BODY });
    expectStatus(created, 201);
    const id = created.json().usage_id;
    const puts = [];
    for (let i = 1; i <= 10; i++) {
      puts.push(
        h.request({ method: "PUT", url: `/usage/${id}`, key: w.admin.key, payload: { units_used: 100 * i } }),
      );
      puts.push(
        h.request({ method: "PUT", url: `/usage/${id}`, key: w.admin.key, payload: { cost_usd: `0.0${i}` } }),
      );
    }
    for (const res of await Promise.all(puts)) expectStatus(res, 200);
    const event = await h.services.store.getEvent(w.account.id, id);
    expect(event).not.toBeNull();
    expect(event!.unitPrice).toBe(divDec(event!.cost, event!.quantity, 9));
    expect(event!.cost > 0n && event!.quantity >= parseDec("100")).toBe(true);
    await expectRollupsConsistent(h);
  });
});
