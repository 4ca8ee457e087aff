import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { usageEvent } from "../support/events.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";
import { tally } from "../support/tally-process.ts";

describe.each(storeKinds())("tally invoices close ($name)", (kind) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await kind.create();
  });
  afterEach(async () => t.cleanup());

  it("closes a month on the local store, once, and refuses a bad period with exit 2", async () => {
    const at = Date.parse("2025-03-01T00:00:00Z");
    await t.store.createAccount({ id: "acme", name: "Acme", isEnabled: true, planId: null, createdAt: at });
    await t.store.createAccount({ id: "idle", name: "Idle", isEnabled: true, planId: null, createdAt: at });
    await t.store.appendEvents([
      usageEvent({ accountId: "acme", eventId: "a", ts: Date.parse("2025-03-31T23:59:00Z") }),
      usageEvent({ accountId: "acme", eventId: "b", ts: Date.parse("2025-04-01T00:00:00Z") }),
    ]);
    const first = await tally(["invoices", "close", "--period", "2025-03", "--json"], t.env);
    expect(first.code, first.stderr).toBe(0);
    const [inv] = JSON.parse(first.stdout).invoices;
    expect(JSON.parse(first.stdout).invoices).toHaveLength(1); // the idle account has nothing to bill
    expect(inv).toMatchObject({
      account_id: "acme",
      status: "finalized",
      total: "1",
      number: expect.any(String),
    });
    const again = await tally(
      ["invoices", "close", "--period", "2025-03", "--account", "acme", "--json"],
      t.env,
    );
    expect(JSON.parse(again.stdout).invoices[0].id).toBe(inv.id);
    expect(await t.store.listInvoices("acme")).toHaveLength(1);
    const bad = await tally(["invoices", "close", "--period", "2025-3"], t.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("YYYY-MM");
  });
});
