import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

/** Billing refusals: roles, bad periods and zones, bad charges; nothing is written. */
describe.each(storeKinds())("invoices, errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let invoiceId: string;
  beforeEach(async () => {
    h = await createHarness(kind);
    h.clock.set("2026-10-01T00:00:00Z");
    w = await buildWorld(h);
    h.clock.set("2026-11-02T00:00:00Z");
    const ev = await call(
      "POST",
      "/v1/events",
      { id: "e1", timestamp: "2026-10-05T00:00:00Z", model_id: "flux-1-dev", quantity: 4 },
      w.admin.key,
    );
    expectStatus(ev, 200);
    await h.services.committer.idle();
    const closed = await call("POST", "/v1/invoices/close", { period: "2026-10", account_id: w.account.id });
    expectStatus(closed, 200);
    invoiceId = closed.json().invoices[0].id;
  });
  afterEach(async () => h.close());

  const call = (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, key: string = ROOT_KEY) =>
    h.request({ method, url, payload: payload as object, key });
  const refused = async (
    res: Awaited<ReturnType<typeof call>>,
    status: number,
    code: string,
    loc?: unknown[],
  ) => {
    expectStatus(res, status);
    expect(res.json().error.code).toBe(code);
    if (loc) expect(res.json().error.issues?.[0]?.loc).toEqual(loc);
  };

  it("member keys read no invoices, not even their own account's", async () => {
    const k = w.member.key;
    await refused(await call("GET", `/v1/accounts/${w.account.id}/invoices`, undefined, k), 403, "FORBIDDEN");
    await refused(
      await call("GET", `/v1/accounts/${w.account.id}/invoices/upcoming`, undefined, k),
      403,
      "FORBIDDEN",
    );
    await refused(await call("GET", `/v1/invoices/${invoiceId}`, undefined, k), 403, "FORBIDDEN");
    await refused(await call("GET", `/v1/invoices/${invoiceId}.pdf`, undefined, k), 403, "FORBIDDEN");
    await refused(await call("GET", `/v1/invoices/${invoiceId}.csv`, undefined, k), 403, "FORBIDDEN");
  });

  it("an admin reads only its own account's invoices and closes or voids none", async () => {
    const k = w.other.admin.key;
    await refused(await call("GET", `/v1/accounts/${w.account.id}/invoices`, undefined, k), 404, "NOT_FOUND");
    await refused(await call("GET", `/v1/invoices/${invoiceId}`, undefined, k), 404, "NOT_FOUND");
    await refused(await call("GET", `/v1/invoices/${invoiceId}.pdf`, undefined, k), 404, "NOT_FOUND");
    const own = w.admin.key;
    await refused(await call("POST", "/v1/invoices/close", { period: "2026-10" }, own), 403, "FORBIDDEN");
    await refused(await call("POST", `/v1/invoices/${invoiceId}/void`, undefined, own), 403, "FORBIDDEN");
    expect((await call("GET", `/v1/invoices/${invoiceId}`)).json().status).toBe("finalized");
  });

  it("refuses bad or open periods and unknown accounts and invoices", async () => {
    await refused(await call("POST", "/v1/invoices/close", { period: "2026-13" }), 400, "VALIDATION");
    await refused(await call("POST", "/v1/invoices/close", { period: "Nov 2026" }), 400, "VALIDATION");
    await refused(
      await call("POST", "/v1/invoices/close", { period: "2026-11", account_id: w.account.id }),
      400,
      "VALIDATION",
    );
    await refused(
      await call("POST", "/v1/invoices/close", { period: "2026-10", account_id: "nope" }),
      404,
      "NOT_FOUND",
    );
    await refused(await call("GET", "/v1/invoices/nope"), 404, "NOT_FOUND");
    await refused(await call("GET", "/v1/accounts/nope/invoices/upcoming"), 404, "NOT_FOUND");
    expect((await call("GET", `/v1/accounts/${w.account.id}/invoices`)).json().data).toHaveLength(1);
  });

  it("refuses a zone that is not IANA and charges that do not parse, naming the field", async () => {
    await refused(
      await call("POST", "/v1/accounts", { name: "X", billing_timezone: "Mars/Olympus" }),
      400,
      "VALIDATION",
      ["body", "billing_timezone"],
    );
    await refused(
      await call("PATCH", `/v1/accounts/${w.account.id}`, { billing_timezone: "+05:30" }),
      400,
      "VALIDATION",
      ["body", "billing_timezone"],
    );
    expect((await call("GET", `/v1/accounts/${w.account.id}`)).json().billing_timezone).toBe("UTC");
    const plan = {
      id: "bad",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: 30,
      charges: [
        {
          model_id: "flux-1-dev",
          pricing: "volume",
          tiers: [
            { up_to: 100, unit_price: 1 },
            { up_to: 50, unit_price: 1 },
            { up_to: null, unit_price: 1 },
          ],
        },
      ],
    };
    await refused(await call("POST", "/v1/plans", plan), 400, "VALIDATION", [
      "body",
      "charges",
      0,
      "tiers",
      1,
      "up_to",
    ]);
    await refused(
      await call("POST", "/v1/plans", { ...plan, charges: [], base_fee: "-1" }),
      400,
      "VALIDATION",
    );
    expectStatus(await call("GET", `/v1/accounts/${w.account.id}`), 200);
  });
});
