import pg from "pg";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SqliteStore } from "../../../src/store/sqlite/sqlite-store.ts";
import { createHarness, expectStatus, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import {
  accountTotals,
  exact,
  grantLicense,
  NOT_LICENSED_TEXT,
  report,
  SLUG,
  SUCCESS,
  storedEvents,
  subscribeToPlan,
  units,
  upsertModel,
} from "./license-world.ts";

const field = (msg: string, type: string) => ({
  detail: [{ loc: ["body", "number_of_generations"], msg, type }],
});
const wholeBody = (msg: string, type: string) => ({ detail: [{ loc: ["body"], msg, type }] });
const NOT_INT = field("Input should be a valid integer", "int_type");
const NOT_POSITIVE = field("Input should be greater than 0", "greater_than");
const FRACTIONAL = field(
  "Input should be a valid integer, got a number with a fractional part",
  "int_from_float",
);
const TOO_MANY = field("Input should be less than or equal to 1000000", "less_than_equal");
const MISSING = wholeBody("Field required", "missing");
const NOT_JSON = wholeBody("JSON decode error", "json_invalid");
const NOT_OBJECT = wholeBody(
  "Input should be a valid dictionary or object to extract fields from",
  "model_attributes_type",
);
const PLAN_BLOCKED = { detail: "Your current plan does not allow usage reporting for model flux-1-dev." };

describe.each(storeKinds())("POST /v1/licenses/models/{model_slug}/usage: errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    await grantLicense(h, w.account.id);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await h.close();
  });

  const badValues: [string, unknown, object][] = [
    ["zero", 0, NOT_POSITIVE],
    ["negative", -3, NOT_POSITIVE],
    ["fractional", 1.5, FRACTIONAL],
    ["tiny fraction", 0.5, FRACTIONAL],
    ["numeric string", "5", NOT_INT],
    ["boolean true", true, NOT_INT],
    ["boolean false", false, NOT_INT],
    ["null", null, NOT_INT],
    ["array", [1], NOT_INT],
    ["object", { n: 1 }, NOT_INT],
    ["one over the maximum", 1_000_001, TOO_MANY],
    ["absurdly large", 1e20, TOO_MANY],
    ["larger than any integer", 1e308, TOO_MANY],
  ];
  it.each(badValues)("number_of_generations %s -> 422, nothing written", async (_name, value, body) => {
    const res = await report(h, w.admin.key, { body: { number_of_generations: value } });
    expectStatus(res, 422);
    expect(res.json()).toEqual(body);
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  const badBodies: [string, { raw?: string; headers?: Record<string, string> }, object][] = [
    ["no body at all", {}, MISSING],
    [
      "an empty body with a JSON content type",
      { raw: "", headers: { "content-type": "application/json" } },
      MISSING,
    ],
    ["a JSON null", { raw: "null", headers: { "content-type": "application/json" } }, MISSING],
    ["a JSON array", { raw: "[1]", headers: { "content-type": "application/json" } }, NOT_OBJECT],
    ["a JSON number", { raw: "5", headers: { "content-type": "application/json" } }, NOT_OBJECT],
    ["a JSON string", { raw: '"5"', headers: { "content-type": "application/json" } }, NOT_OBJECT],
    [
      "broken JSON",
      { raw: '{"number_of_generations": ', headers: { "content-type": "application/json" } },
      NOT_JSON,
    ],
    ["broken JSON without a content type", { raw: "{nope" }, NOT_JSON],
    ["a JSON null without a content type", { raw: "null" }, MISSING],
    ["plain text", { raw: "five please", headers: { "content-type": "text/plain" } }, NOT_OBJECT],
    [
      "JSON text sent as text/plain",
      { raw: '{"number_of_generations": 1}', headers: { "content-type": "text/plain" } },
      NOT_OBJECT,
    ],
    [
      "a form",
      { raw: "number_of_generations=1", headers: { "content-type": "application/x-www-form-urlencoded" } },
      NOT_OBJECT,
    ],
    ["bytes", { raw: "\u0000\u0001", headers: { "content-type": "application/octet-stream" } }, NOT_OBJECT],
  ];
  it.each(badBodies)("%s -> 422, nothing written", async (_name, opts, body) => {
    const res = await report(h, w.admin.key, opts);
    expectStatus(res, 422);
    expect(res.json()).toEqual(body);
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it("a body over 1 MiB -> 413 {detail}", async () => {
    const res = await report(h, w.admin.key, {
      raw: JSON.stringify({ number_of_generations: 1, pad: "x".repeat(1024 * 1024) }),
      headers: { "content-type": "application/json" },
    });
    expectStatus(res, 413);
    expect(res.json()).toEqual({ detail: "Request body is too large" });
  });

  it("an empty or overlong Idempotency-Key -> 422 naming the header", async () => {
    const empty = await report(h, w.admin.key, { body: {}, headers: { "idempotency-key": " " } });
    expectStatus(empty, 422);
    expect(empty.json()).toEqual({
      detail: [
        {
          loc: ["header", "idempotency-key"],
          msg: "String should have at least 1 character",
          type: "string_too_short",
        },
      ],
    });
    const long = await report(h, w.admin.key, { body: {}, headers: { "idempotency-key": "k".repeat(201) } });
    expectStatus(long, 422);
    expect(long.json()).toEqual({
      detail: [
        {
          loc: ["header", "idempotency-key"],
          msg: "String should have at most 200 characters",
          type: "string_too_long",
        },
      ],
    });
    expectStatus(
      await report(h, w.admin.key, { body: {}, headers: { "idempotency-key": "k".repeat(200) } }),
      200,
    );
  });

  it("an unknown slug -> 400 with the seed's text", async () => {
    const res = await report(h, w.admin.key, { slug: "example-model", body: { number_of_generations: 1 } });
    expectStatus(res, 400);
    expect(res.json()).toEqual({ detail: "Model slug example-model is not supported for usage reporting" });
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it("a model with reporting disabled -> 400, even when licensed", async () => {
    await upsertModel(h, {
      id: "gpt-mini",
      unit: "token",
      kind: "chat",
      unit_price: "0.00000015",
      reporting_enabled: false,
    });
    await grantLicense(h, w.account.id, "gpt-mini");
    const res = await report(h, w.admin.key, { slug: "gpt-mini", body: {} });
    expectStatus(res, 400);
    expect(res.json()).toEqual({ detail: "Model slug gpt-mini is not supported for usage reporting" });
  });

  it("checks the body before the slug, and the slug before the license", async () => {
    const badBodyBadSlug = await report(h, w.admin.key, { slug: "nope", body: { number_of_generations: 0 } });
    expectStatus(badBodyBadSlug, 422);
    expect(badBodyBadSlug.json()).toEqual(NOT_POSITIVE);
    // the other account holds no license: the unknown slug still answers 400
    const badSlugNoLicense = await report(h, w.other.admin.key, { slug: "nope", body: {} });
    expectStatus(badSlugNoLicense, 400);
    expect(badSlugNoLicense.json()).toEqual({
      detail: "Model slug nope is not supported for usage reporting",
    });
    const missingBodyNoLicense = await report(h, w.other.admin.key, {});
    expectStatus(missingBodyNoLicense, 422);
    expect(missingBodyNoLicense.json()).toEqual(MISSING);
  });

  it("no license for the model -> 403 with the seed's text", async () => {
    const res = await report(h, w.other.admin.key, { body: { number_of_generations: 1 } });
    expectStatus(res, 403);
    expect(res.json()).toEqual({ detail: NOT_LICENSED_TEXT });
    expect(await storedEvents(h, w.other.accountId)).toEqual([]);
  });

  it("a license for another model does not cover this one -> 403", async () => {
    await upsertModel(h, { id: "flux-tools", unit: "image", kind: "image", unit_price: "0.01" });
    const res = await report(h, w.admin.key, { slug: "flux-tools", body: {} });
    expectStatus(res, 403);
    expect(res.json()).toEqual({ detail: NOT_LICENSED_TEXT });
  });

  it("a license that starts later -> 403 until it starts", async () => {
    await grantLicense(h, w.other.accountId, SLUG, { starts_at: "2025-06-15T12:00:01Z" });
    expectStatus(await report(h, w.other.admin.key, { body: {} }), 403);
    h.clock.advance(1000);
    expectStatus(await report(h, w.other.admin.key, { body: {} }), 200);
  });

  it("a plan whose block list names the model -> 403 with the plan text", async () => {
    await subscribeToPlan(h, w.account.id, { id: "no-flux", model_blacklist: [SLUG] });
    const res = await report(h, w.admin.key, { body: {} });
    expectStatus(res, 403);
    expect(res.json()).toEqual(PLAN_BLOCKED);
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it("a plan whose allow list leaves the model out -> 403 with the plan text", async () => {
    await subscribeToPlan(h, w.account.id, { id: "chat-only", model_whitelist: ["gpt-mini"] });
    const res = await report(h, w.admin.key, { body: {} });
    expectStatus(res, 403);
    expect(res.json()).toEqual(PLAN_BLOCKED);
  });

  it("no license and a blocking plan -> the license text (the license is checked first)", async () => {
    await subscribeToPlan(h, w.other.accountId, { id: "no-flux", model_blacklist: [SLUG] });
    const res = await report(h, w.other.admin.key, { body: {} });
    expectStatus(res, 403);
    expect(res.json()).toEqual({ detail: NOT_LICENSED_TEXT });
  });

  it("a change of plan takes effect on the next report", async () => {
    await subscribeToPlan(h, w.account.id, { id: "no-flux", model_blacklist: [SLUG] });
    expectStatus(await report(h, w.admin.key, { body: {} }), 403);
    await subscribeToPlan(h, w.account.id, { id: "all", model_blacklist: null });
    expectStatus(await report(h, w.admin.key, { body: {} }), 200);
  });

  it("a storage failure -> 500 'Failed to process usage.' with nothing written; the retry counts once", async () => {
    const spy = vi.spyOn(h.services.store, "appendEvents").mockRejectedValueOnce(new Error("disk I/O error"));
    const headers = { "idempotency-key": "after-a-crash" };
    const res = await report(h, w.admin.key, { body: { number_of_generations: 9 }, headers });
    expectStatus(res, 500);
    expect(res.json()).toEqual({ detail: "Failed to process usage." });
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await storedEvents(h, w.account.id)).toEqual([]);
    expect(await accountTotals(h, w.account.id)).toEqual([]);

    const retry = await report(h, w.admin.key, { body: { number_of_generations: 9 }, headers });
    expectStatus(retry, 200);
    expect(retry.json()).toEqual(SUCCESS);
    expectStatus(await report(h, w.admin.key, { body: { number_of_generations: 9 }, headers }), 200);
    expect(await accountTotals(h, w.account.id)).toEqual([
      { modelId: SLUG, kind: "image", unit: "image", requests: 1, quantity: units(9), cost: exact("0.225") },
    ]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("a failure inside the event's write rolls it back: no event, no rollup", async () => {
    // the database refuses the rollup rows, after the event row went in: the insert must be undone
    await refuseRollupWrites(h);
    const res = await report(h, w.admin.key, { body: { number_of_generations: 2 } });
    expectStatus(res, 500);
    expect(res.json()).toEqual({ detail: "Failed to process usage." });
    expect(await storedEvents(h, w.account.id)).toEqual([]);
    expect(await accountTotals(h, w.account.id)).toEqual([]);
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });

  it("a reportable model with no price in force -> 500 'Failed to process usage.', nothing written", async () => {
    await upsertModel(h, {
      id: "flux-future",
      unit: "image",
      kind: "image",
      unit_price: "0.02",
      effective_from: "2030-01-01T00:00:00Z",
    });
    await grantLicense(h, w.account.id, "flux-future");
    const res = await report(h, w.admin.key, { slug: "flux-future", body: {} });
    expectStatus(res, 500);
    expect(res.json()).toEqual({ detail: "Failed to process usage." });
    expect(await storedEvents(h, w.account.id)).toEqual([]);
  });

  it("unknown routes under /v1/licenses -> 404 {detail: 'Not Found'}", async () => {
    for (const [method, url] of [
      ["GET", "/v1/licenses"],
      ["GET", "/v1/licenses/"],
      ["GET", "/v1/licenses/models"],
      ["POST", "/v1/licenses/models/flux-1-dev"],
      ["POST", "/v1/licenses/models/flux-1-dev/usage/extra"],
      ["GET", "/v1/licenses/models/flux-1-dev/usage"],
      ["DELETE", "/v1/licenses/models/flux-1-dev/usage"],
    ] as const) {
      const res = await h.request({ method, url, key: w.admin.key });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404);
      expect(res.json()).toEqual({ detail: "Not Found" });
    }
  });
});

/** A trigger that fails every insert into usage_rollups, in the harness's own database. */
async function refuseRollupWrites(h: Harness): Promise<void> {
  if (h.services.store.dialect === "sqlite") {
    (h.services.store as unknown as SqliteStore).db.exec(
      "CREATE TRIGGER refuse_rollups BEFORE INSERT ON usage_rollups BEGIN SELECT RAISE(ABORT, 'rollup write failed'); END",
    );
    return;
  }
  const c = new pg.Client({ connectionString: h.testStore.env.DATABASE_URL });
  await c.connect();
  try {
    await c.query(`CREATE FUNCTION refuse_rollups() RETURNS trigger LANGUAGE plpgsql
      AS $$ BEGIN RAISE EXCEPTION 'rollup write failed'; END $$`);
    await c.query(
      "CREATE TRIGGER refuse_rollups BEFORE INSERT ON usage_rollups FOR EACH ROW EXECUTE FUNCTION refuse_rollups()",
    );
  } finally {
    await c.end();
  }
}
