import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvoiceService, OPERATOR } from "../../../src/billing/invoice-service.ts";
import { RollupPeriodUsage } from "../../../src/billing/rollup-period-usage.ts";
import { loadConfig } from "../../../src/config.ts";
import { QueryService } from "../../../src/query/usage-query.ts";
import { openStore } from "../../../src/store/open-store.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

interface LineJson {
  model_id: string | null;
  quantity: number;
  events: number;
  amount: number;
  rollup_query: string;
  tiers: unknown[];
}
interface AdjustmentJson {
  period: string;
  quantity: number;
  amount: number;
}
interface InvoiceJson {
  id: string;
  number: string | null;
  status: string;
  period: { label: string; start: string; end: string; timezone: string };
  lines: LineJson[];
  adjustments: AdjustmentJson[];
  subtotal: number;
  total: number;
}

/** Billing end to end (issue 16): plans with charges, periods in account zones, close, files, late usage. */
describe.each(storeKinds())("invoices, happy paths ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let n = 0;
  beforeEach(async () => {
    h = await createHarness(kind);
    h.clock.set("2026-10-01T00:00:00Z");
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const call = async (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, key = ROOT_KEY) =>
    h.request({ method, url, payload: payload as object, key });
  const ok = async (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, key = ROOT_KEY) => {
    const res = await call(method, url, payload, key);
    expectStatus(res, method === "POST" && res.statusCode === 201 ? 201 : 200);
    return res.json();
  };
  const account = async (name: string, zone: string, plan?: string) => {
    const a = await ok("POST", "/v1/accounts", {
      name,
      billing_timezone: zone,
      ...(plan ? { plan_id: plan } : {}),
    });
    return a.id as string;
  };
  /** events through the API as root, for `accountId` */
  const events = async (
    accountId: string,
    list: { at: string; model?: string; quantity: number | string }[],
  ) => {
    const user = await ok("POST", `/v1/accounts/${accountId}/users`, { username: `u${n++}`, role: "admin" });
    const key = (await ok("POST", `/v1/users/${user.id}/keys`, {})).key as string;
    const body = await ok(
      "POST",
      "/v1/events",
      {
        events: list.map((e) => ({
          id: `e${n++}`,
          timestamp: e.at,
          model_id: e.model ?? "flux-1-dev",
          quantity: e.quantity,
        })),
      },
      key,
    );
    expect(body.accepted, JSON.stringify(body)).toBe(list.length);
    await h.services.committer.idle();
    return key;
  };
  const close = async (period: string, accountId?: string) =>
    (await ok("POST", "/v1/invoices/close", { period, ...(accountId ? { account_id: accountId } : {}) }))
      .invoices as InvoiceJson[];

  it("plans carry charges; accounts carry their billing zone (PATCH changes it)", async () => {
    const plan = await ok("POST", "/v1/plans", {
      id: "img",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: -999999,
      currency: "EUR",
      base_fee: "9.5",
      charges: [
        { model_id: "flux-1-dev", pricing: "standard", unit_price: "0.01", minimum_quantity: 100000 },
        {
          model_id: "gpt-mini",
          pricing: "graduated",
          tiers: [
            { up_to: 10000, unit_price: "0.001" },
            { up_to: null, unit_price: "0.0008", flat_fee: 2 },
          ],
        },
      ],
    });
    expect(plan).toMatchObject({ currency: "EUR", base_fee: 9.5 });
    expect(plan.charges).toEqual([
      {
        model_id: "flux-1-dev",
        meter: null,
        pricing: "standard",
        unit_price: 0.01,
        included_quantity: 0,
        minimum_quantity: 100000,
      },
      {
        model_id: "gpt-mini",
        meter: null,
        pricing: "graduated",
        tiers: [
          { up_to: 10000, unit_price: 0.001, flat_fee: 0 },
          { up_to: null, unit_price: 0.0008, flat_fee: 2 },
        ],
        included_quantity: 0,
        minimum_quantity: 0,
      },
    ]);
    const id = await account("Kolkata Co", "Asia/Kolkata", "img");
    expect((await ok("GET", `/v1/accounts/${id}`)).billing_timezone).toBe("Asia/Kolkata");
    const patched = await ok("PATCH", `/v1/accounts/${id}`, { billing_timezone: "Asia/Kathmandu" });
    expect(patched.billing_timezone).toBe("Asia/Kathmandu");
    expect((await ok("GET", `/v1/accounts/${id}`)).billing_timezone).toBe("Asia/Kathmandu");
    expect((await ok("GET", `/v1/accounts/${w.account.id}`)).billing_timezone).toBe("UTC");
  });

  it("puts events minutes either side of local midnight in the right month (Kolkata, Los Angeles over DST)", async () => {
    h.clock.set("2026-12-01T09:00:00Z");
    const kolkata = await account("Kolkata Co", "Asia/Kolkata");
    const la = await account("LA Co", "America/Los_Angeles");
    // Kolkata (+05:30): Nov 30 23:55 local = 18:25Z; Dec 1 00:05 local = 18:35Z
    await events(kolkata, [
      { at: "2026-11-30T23:55:00+05:30", quantity: 1 },
      { at: "2026-12-01T00:05:00+05:30", quantity: 10 },
    ]);
    // Los Angeles: October ends at PDT midnight (07:00Z); DST ends at 02:00 on Nov 1, inside November
    await events(la, [
      { at: "2026-10-31T23:55:00-07:00", quantity: 2 },
      { at: "2026-11-01T00:05:00-07:00", quantity: 20 },
      { at: "2026-11-30T23:55:00-08:00", quantity: 300 },
      { at: "2026-12-01T00:05:00-08:00", quantity: 4000 },
    ]);
    h.clock.set("2026-12-01T09:00:00Z");
    const [k] = await close("2026-11", kolkata);
    expect(k.period).toEqual({
      label: "2026-11",
      start: "2026-11-01T00:00:00+05:30",
      end: "2026-12-01T00:00:00+05:30",
      timezone: "Asia/Kolkata",
    });
    expect(k.lines.map((l: LineJson) => [l.model_id, l.quantity, l.events])).toEqual([["flux-1-dev", 1, 1]]);
    expect(k.total).toBe(0.03); // 1 x 0.025 at the price book, half-up to cents
    const [oct] = await close("2026-10", la);
    expect(oct.lines.map((l: LineJson) => l.quantity)).toEqual([2]);
    const [nov] = await close("2026-11", la);
    expect(nov.period.start).toBe("2026-11-01T00:00:00-07:00");
    expect(nov.period.end).toBe("2026-12-01T00:00:00-08:00");
    expect(nov.lines.map((l: LineJson) => l.quantity)).toEqual([320]);
    // December so far, live
    const up = await ok("GET", `/v1/accounts/${la}/invoices/upcoming`);
    expect(up.status).toBe("draft");
    expect(up.lines.map((l: LineJson) => l.quantity)).toEqual([4000]);
    expect((await ok("GET", `/v1/accounts/${kolkata}/invoices/upcoming`)).lines[0].quantity).toBe(10);
  });

  it("seed 002: a 100,000-image minimum bills nothing at 100,000 and everything at 100,001", async () => {
    await ok("POST", "/v1/plans", {
      id: "images",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: -999999,
      charges: [
        { model_id: "flux-1-dev", pricing: "standard", unit_price: "0.01", minimum_quantity: 100000 },
      ],
    });
    const at = await account("At", "UTC", "images");
    const above = await account("Above", "UTC", "images");
    h.clock.set("2026-11-02T00:00:00Z");
    await events(at, [{ at: "2026-10-10T10:00:00Z", quantity: 100000 }]);
    await events(above, [
      { at: "2026-10-10T10:00:00Z", quantity: 100000 },
      { at: "2026-10-31T23:59:59Z", quantity: 1 },
    ]);
    h.clock.set("2026-11-02T00:00:00Z");
    const [free] = await close("2026-10", at);
    expect(free).toMatchObject({ status: "no_charge", number: null, total: 0 });
    expect(free.lines[0]).toMatchObject({ quantity: 100000, billable_quantity: 0, amount: 0 });
    const [billed] = await close("2026-10", above);
    expect(billed).toMatchObject({ status: "finalized", number: "TLY-2026-000001", total: 1000.01 });
    expect(billed.lines[0]).toMatchObject({ quantity: 100001, billable_quantity: 100001, events: 2 });
    expect(billed.lines[0].tiers).toEqual([
      { from: 0, up_to: null, quantity: 100001, unit_price: 0.01, flat_fee: 0, amount: 1000.01 },
    ]);
    // the CSV sums to the total; the PDF is a PDF
    const csv = await call("GET", `/v1/invoices/${billed.id}.csv`);
    expectStatus(csv, 200);
    const rows = parseCsv(csv.body);
    const amount = rows[0].indexOf("amount");
    const sum = rows.slice(1).reduce((s, r) => s + Math.round(Number(r[amount]) * 100), 0);
    expect(sum).toBe(100001);
    const pdf = await call("GET", `/v1/invoices/${billed.id}.pdf`);
    expectStatus(pdf, 200);
    expect(pdf.headers["content-type"]).toBe("application/pdf");
    expect(pdf.rawPayload.subarray(0, 5).toString()).toBe("%PDF-");
  });

  it("closing twice, and two instances at once, make one invoice and consume one number", async () => {
    h.clock.set("2026-11-02T00:00:00Z");
    const a = await account("A", "UTC");
    const b = await account("B", "UTC");
    await events(a, [{ at: "2026-10-05T00:00:00Z", quantity: 40 }]);
    await events(b, [{ at: "2026-10-05T00:00:00Z", quantity: 40 }]);
    h.clock.set("2026-11-02T00:00:00Z");
    // a second instance over the same database
    const second = await openStore(loadConfig({ ...h.testStore.env }));
    try {
      const other = new InvoiceService(second, new RollupPeriodUsage(new QueryService(second)), h.clock.now, {
        name: "Tally",
        address: [],
      });
      const [one, two] = await Promise.all([
        h.services.invoices.close(OPERATOR, "2026-10", a),
        other.close(OPERATOR, "2026-10", a),
      ]);
      expect(one[0].id).toBe(two[0].id);
      expect(one[0].number).toBe("TLY-2026-000001");
    } finally {
      await second.close();
    }
    const again = await close("2026-10", a);
    expect(again[0].number).toBe("TLY-2026-000001");
    expect((await ok("GET", `/v1/accounts/${a}/invoices`)).data).toHaveLength(1);
    // the next number is the next one: none was consumed by the race
    const [next] = await close("2026-10", b);
    expect(next.number).toBe("TLY-2026-000002");
    // without account_id: every account with usage; those closed answer as they are
    const all = await close("2026-10");
    expect(all.map((i) => i.number).sort()).toEqual(["TLY-2026-000001", "TLY-2026-000002"]);
  });

  it("late usage after close is an adjustment next month; the closed invoice and its PDF never change", async () => {
    await ok("POST", "/v1/plans", {
      id: "images",
      requests_per_minute: null,
      requests_per_day: null,
      validity_days: -999999,
      charges: [
        { model_id: "flux-1-dev", pricing: "standard", unit_price: "0.01", minimum_quantity: 100000 },
      ],
    });
    const a = await account("A", "UTC", "images");
    h.clock.set("2026-11-01T02:00:00Z");
    const key = await events(a, [{ at: "2026-10-10T00:00:00Z", quantity: 99999 }]);
    h.clock.set("2026-11-01T02:00:00Z");
    const [oct] = await close("2026-10", a);
    expect(oct.status).toBe("no_charge");
    const json = (await call("GET", `/v1/invoices/${oct.id}`)).body;
    const pdf = (await call("GET", `/v1/invoices/${oct.id}.pdf`)).rawPayload;
    // two late images in October: all 100,001 are billed now, on November's invoice
    await ok(
      "POST",
      "/v1/events",
      { events: [{ id: "late-1", timestamp: "2026-10-31T12:00:00Z", model_id: "flux-1-dev", quantity: 2 }] },
      key,
    );
    h.clock.set("2026-11-03T01:00:00Z");
    await events(a, [{ at: "2026-11-03T00:00:00Z", quantity: 5 }]);
    const up = await ok("GET", `/v1/accounts/${a}/invoices/upcoming`);
    expect(up.adjustments).toEqual([
      {
        period: "2026-10",
        model_id: "flux-1-dev",
        meter: null,
        quantity: 2,
        amount: 1000.01,
        description: expect.stringContaining("Late usage of 2026-10"),
      },
    ]);
    h.clock.set("2026-12-01T02:00:00Z");
    const [nov] = await close("2026-11", a);
    expect(nov.adjustments.map((x: AdjustmentJson) => [x.period, x.quantity, x.amount])).toEqual([
      ["2026-10", 2, 1000.01],
    ]);
    expect(nov.total).toBe(1000.01);
    expect((await call("GET", `/v1/invoices/${oct.id}`)).body).toBe(json);
    expect(Buffer.compare((await call("GET", `/v1/invoices/${oct.id}.pdf`)).rawPayload, pdf)).toBe(0);
    // billed once: December carries no second adjustment for October
    expect((await ok("GET", `/v1/accounts/${a}/invoices/upcoming`)).adjustments).toEqual([]);
  });

  it("without charges the total is the workspace-usage cost of the month", async () => {
    h.clock.set("2026-11-02T00:00:00Z");
    const a = await account("A", "Europe/Paris");
    await events(a, [
      { at: "2026-10-01T00:30:00+02:00", quantity: 3 },
      { at: "2026-10-15T12:00:00+02:00", model: "gpt-mini", quantity: 123457 },
      { at: "2026-10-31T23:59:00+01:00", model: "tts-1", quantity: "7.5" },
      { at: "2026-11-01T00:01:00+01:00", quantity: 1000 },
    ]);
    h.clock.set("2026-11-02T00:00:00Z");
    const [inv] = await close("2026-10", a);
    let cents = 0n;
    let exact = 0;
    for (const line of inv.lines) {
      const usage = await ok("GET", `${line.rollup_query}&expand=summary`);
      const cost = usage.summary.reduce((s: number, l: { cost: number }) => s + l.cost, 0);
      expect(line.amount).toBeCloseTo(cost, 12);
      exact += cost;
    }
    cents = BigInt(Math.round(exact * 100));
    // 3 x 0.025 + 123457 x 0.00000015 + 7.5 x 0.0005 = 0.075 + 0.01851855 + 0.00375 = 0.09726855
    expect(inv.subtotal).toBe(0.09726855);
    expect(inv.total).toBe(0.1);
    expect(BigInt(Math.round(inv.total * 100))).toBe(cents);
  });

  it("closes by itself once the month ended plus the grace, in the account's zone", async () => {
    const la = await account("LA Co", "America/Los_Angeles");
    h.clock.set("2026-11-01T06:00:00Z");
    await events(la, [{ at: "2026-10-31T22:00:00-07:00", quantity: 8 }]);
    const grace = 3_600_000;
    // October ends at 07:00Z in Los Angeles: not yet due at 07:59:59.999Z
    h.clock.set("2026-11-01T07:59:59.999Z");
    expect(await h.services.invoices.closeDue(grace)).toEqual([]);
    h.clock.set("2026-11-01T08:00:00Z");
    const [made] = await h.services.invoices.closeDue(grace);
    expect(made).toMatchObject({ accountId: la, status: "finalized" });
    expect(made.period.label).toBe("2026-10");
    // the next check answers the same invoice; accounts with nothing to bill get none
    expect((await h.services.invoices.closeDue(grace)).map((i) => i.id)).toEqual([made.id]);
    expect((await ok("GET", `/v1/accounts/${w.account.id}/invoices`)).data).toEqual([]);
  });

  it("admins read their own account's invoices; void keeps the number", async () => {
    h.clock.set("2026-11-02T00:00:00Z");
    await events(w.account.id, [{ at: "2026-10-05T00:00:00Z", quantity: 4 }]);
    h.clock.set("2026-11-02T00:00:00Z");
    const [inv] = await close("2026-10", w.account.id);
    expect(
      (await ok("GET", `/v1/accounts/${w.account.id}/invoices`, undefined, w.admin.key)).data[0].id,
    ).toBe(inv.id);
    expect((await ok("GET", `/v1/invoices/${inv.id}`, undefined, w.admin.key)).total).toBe(0.1);
    const voided = await ok("POST", `/v1/invoices/${inv.id}/void`);
    expect(voided).toMatchObject({ status: "void", number: inv.number });
    expect((await ok("GET", `/v1/invoices/${inv.id}`)).status).toBe("void");
  });
});

/** RFC 4180: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  if (field !== "" || row.length > 0) rows.push([...row, field]);
  return rows;
}
