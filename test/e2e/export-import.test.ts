import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServices } from "../../src/services.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";
import { tally } from "../support/tally-process.ts";
import { buildWorld, type World } from "../support/world.ts";

/**
 * `tally export` from a lived-in SQLite store, `tally import` into an empty store of the other
 * kind (PostgreSQL when the suite has one), `tally verify` there: every total equal, every row
 * the same (a second export matches the first line for line), and an import refused into a store
 * that is not empty.
 */
const target = storeKinds().find((k) => k.name === "postgres") ?? storeKinds()[0];

describe(`tally export from SQLite, import into ${target.name}`, () => {
  let h: Harness;
  let w: World;
  let to: TestStore;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tally-export-"));
    h = await createHarness(storeKinds()[0]);
    w = await buildWorld(h);
    const post = async (url: string, payload: object, key = ROOT_KEY) => {
      const res = await h.request({ method: "POST", url, payload, key });
      expect(res.statusCode, `${url}: ${res.body}`).toBeLessThan(300);
      return res.json();
    };
    // a month of usage in two accounts, with fractional prices, a correction and a deletion
    const events = Array.from({ length: 1200 }, (_, i) => ({
      id: `e-${i}`,
      model_id: i % 3 === 0 ? "gpt-mini" : "flux-1-dev",
      quantity: i % 3 === 0 ? 1234 + i : (i % 7) + 1,
      timestamp: new Date(Date.parse("2025-05-01T00:00:00Z") + i * 37 * 60_000).toISOString(),
    }));
    for (let i = 0; i < events.length; i += 500)
      await post("/v1/events", { events: events.slice(i, i + 500) }, w.member.key);
    const other = await post(
      "/v1/events",
      { events: [{ id: "g-1", model_id: "tts-1", quantity: 42 }] },
      w.other.admin.key,
    );
    expect(other.accepted).toBe(1);
    await h.services.committer.idle();
    const log = await h.request({ method: "GET", url: "/usage?limit=2", key: w.admin.key });
    const [first, second] = log.json() as { usage_id: string }[];
    expectStatus(
      await h.request({ method: "DELETE", url: `/usage/${first.usage_id}`, key: w.admin.key }),
      204,
    );
    const patched = await h.request({
      method: "PUT",
      url: `/usage/${second.usage_id}`,
      payload: { units_used: 3 },
      key: w.admin.key,
    });
    expect(patched.statusCode, patched.body).toBeLessThan(300);
    await post(`/v1/accounts/${w.account.id}/payments`, { amount_usd: "12.34" });
    await post("/v1/invoices/close", { period: "2025-05", account_id: w.account.id });
    await post("/v1/webhooks", { url: "https://hooks.example.com/t", events: ["invoice.finalized"] });
    await post(`/v1/accounts/${w.account.id}/alerts`, {
      metric: "cost",
      period: "month",
      thresholds: [50],
      basis: "absolute",
      value: 1,
    });
    to = await target.create();
  }, 120_000);

  afterAll(async () => {
    await to?.cleanup();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("moves every row exactly, recounts the rollups, and verify passes", async () => {
    const from = { TALLY_DB: h.testStore.env.TALLY_DB };
    const file = join(dir, "tally.jsonl");
    const exported = await tally(["export", "--out", file], from);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/exported .*1201 usage_events/);

    const imported = await tally(["import", file], to.env);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported .*1201 usage_events.*rollups recounted/);
    const verified = await tally(["verify"], to.env);
    expect(verified.code, verified.stderr).toBe(0);

    // the same rows: a second export from the target is the first one, but for its first line
    const again = await tally(["export"], to.env);
    expect(again.code, again.stderr).toBe(0);
    const lines = (text: string) => text.trimEnd().split("\n").slice(1);
    expect(lines(again.stdout)).toEqual(lines(readFileSync(file, "utf8")));

    // the same answers: every account's totals through the read path of the target
    const moved = createServices(to.store, { rootKey: ROOT_KEY });
    for (const accountId of [w.account.id, w.other.accountId]) {
      const before = await h.services.query.totals({ accountId, family: "key" });
      const after = await moved.query.totals({ accountId, family: "key" });
      expect(after).toEqual(before);
      expect(after.length).toBeGreaterThan(0);
    }
  });

  it("refuses to import into a store that is not empty, writing nothing", async () => {
    const file = join(dir, "again.jsonl");
    expect((await tally(["export", "--out", file], { TALLY_DB: h.testStore.env.TALLY_DB })).code).toBe(0);
    const res = await tally(["import", file], { TALLY_DB: h.testStore.env.TALLY_DB });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("not empty");
  });
});
