import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../../src/http/json.ts";
import { readEventTime } from "../../src/ingest/event-input.ts";
import { createHarness, expectStatus, type Harness } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/**
 * Hostile bodies on every surface that takes JSON: a 4xx in the surface's own format, naming the
 * field where there is one, and nothing written.
 */
describe.each(storeKinds())("hostile input ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const storedEvents = async () =>
    (await h.services.store.listEvents({ accountId: w.account.id, skip: 0, limit: 100 })).length;

  /** One raw body sent as JSON to each surface; answers status and parsed body per surface. */
  const sendRaw = async (body: Buffer | string) => {
    const headers = { "content-type": "application/json" };
    const native = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers,
      payload: body,
    });
    const usageLog = await h.request({
      method: "POST",
      url: "/usage",
      key: w.admin.key,
      headers,
      payload: body,
    });
    const license = await h.request({
      method: "POST",
      url: "/v1/licenses/models/flux-1-dev/usage",
      key: w.admin.key,
      headers,
      payload: body,
    });
    return { native, usageLog, license };
  };

  it("JSON nested 10,000 deep -> 400 / 422, not a stack overflow", async () => {
    const deep = `{"id":"deep","model_id":"flux-1-dev","quantity":1,"metadata":{"x":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`;
    const { native, usageLog, license } = await sendRaw(deep);
    expectStatus(native, 400);
    expect(native.json().error.message).toContain(`deeper than ${MAX_JSON_DEPTH}`);
    expectStatus(usageLog, 422);
    expect(usageLog.json().detail[0].loc).toEqual(["body"]);
    expectStatus(license, 422);
    expect(license.json().detail[0].loc).toEqual(["body"]);
    // nesting at the limit is still read
    const nested = `${"[".repeat(MAX_JSON_DEPTH - 3)}1${"]".repeat(MAX_JSON_DEPTH - 3)}`;
    const ok = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      body: { id: "ok", model_id: "flux-1-dev", quantity: 1, metadata: { x: JSON.parse(nested) } },
    });
    expectStatus(ok, 200);
    expect(await storedEvents()).toBe(1);
  });

  it("lone surrogates in a string or key -> refused naming the field; surrogate pairs are fine", async () => {
    for (const [text, loc] of [
      ['{"events":[{"id":"s-\\ud800x","model_id":"flux-1-dev","quantity":1}]}', ["body", "events", 0, "id"]],
      ['{"id":"s-\\udc01","model_id":"flux-1-dev","quantity":1}', ["body", "id"]],
      [
        '{"id":"k","model_id":"flux-1-dev","quantity":1,"metadata":{"\\udbff":1}}',
        ["body", "metadata", "\udbff"],
      ],
    ] as const) {
      const res = await h.request({
        method: "POST",
        url: "/v1/events",
        key: w.admin.key,
        headers: { "content-type": "application/json" },
        payload: text,
      });
      expectStatus(res, 400);
      expect(res.json().error.issues[0]).toMatchObject({ loc, msg: expect.stringContaining("Unicode") });
    }
    const usageLog = await h.request({
      method: "POST",
      url: "/usage",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: `{"user_id":"${w.admin.id}","api_name":"flux-\\ud801x","units_used":1}`,
    });
    expectStatus(usageLog, 422);
    expect(usageLog.json().detail[0].loc).toEqual(["body", "api_name"]);
    const license = await h.request({
      method: "POST",
      url: "/v1/licenses/models/flux-1-dev/usage",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: '{"number_of_generations":1,"note":"\\ud800"}',
    });
    expectStatus(license, 422);
    expect(license.json().detail[0].loc).toEqual(["body", "note"]);
    expect(await storedEvents()).toBe(0);

    const pair = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: '{"id":"emoji-\\ud83d\\ude00","model_id":"flux-1-dev","quantity":1}',
    });
    expectStatus(pair, 200);
    expect(await storedEvents()).toBe(1);
  });

  it("bytes that are not UTF-8 -> refused naming the field on every surface", async () => {
    const bad = (prefix: string, suffix: string) =>
      Buffer.concat([Buffer.from(prefix), Buffer.from([0xff, 0xfe]), Buffer.from(suffix)]);
    const native = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: bad(
        '{"events":[{"id":"ok-1","model_id":"flux-1-dev","quantity":1},{"id":"x',
        '","model_id":"flux-1-dev","quantity":1}]}',
      ),
    });
    expectStatus(native, 400);
    expect(native.json().error.issues[0]).toMatchObject({
      loc: ["body", "events", 1, "id"],
      msg: "must be valid UTF-8",
    });
    // an encoded surrogate (CESU-8) is not UTF-8 either
    const cesu = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: Buffer.concat([
        Buffer.from('{"id":"s-'),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('","model_id":"flux-1-dev","quantity":1}'),
      ]),
    });
    expectStatus(cesu, 400);
    expect(cesu.json().error.issues[0].loc).toEqual(["body", "id"]);
    const usageLog = await h.request({
      method: "POST",
      url: "/usage",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: bad(`{"user_id":"${w.admin.id}","api_name":"`, '","units_used":1}'),
    });
    expectStatus(usageLog, 422);
    expect(usageLog.json().detail[0].loc).toEqual(["body", "api_name"]);
    const license = await h.request({
      method: "POST",
      url: "/v1/licenses/models/flux-1-dev/usage",
      key: w.admin.key,
      headers: { "content-type": "application/json" },
      payload: bad('{"number_of_generations":1', "}"),
    });
    expectStatus(license, 422);
    expect(license.json().detail[0].loc).toEqual(["body"]);
    expect(await storedEvents()).toBe(0);
  });

  it("a body that is not JSON is refused, on a route that reads no body too, and changes nothing", async () => {
    const record = await h.request({
      method: "POST",
      url: "/usage",
      key: w.admin.key,
      payload: { api_name: "flux-1-dev", endpoint: "/x", units_used: 1, cost_usd: "0.1" },
    });
    expect(record.statusCode, record.body).toBeLessThan(300);
    const usageId = String(record.json().usage_id);
    // found by the route fuzzer: these DELETEs answered 204, their bodies decoded unchecked as
    // text (invalid UTF-8 into U+FFFD; JSON nested 10,000 deep) and ignored
    const notUtf8 = Buffer.concat([Buffer.from("note: "), Buffer.from([0xff, 0xfe]), Buffer.from(" end")]);
    for (const payload of [notUtf8, "[".repeat(10_000), "well-formed text"]) {
      const refused = await h.request({
        method: "DELETE",
        url: `/usage/${usageId}`,
        key: w.admin.key,
        headers: { "content-type": "text/plain" },
        payload,
      });
      // the usage log speaks FastAPI: a body that is not a JSON object is its 422
      expectStatus(refused, 422);
    }
    expect(await storedEvents()).toBe(1);
    const native = await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.admin.key,
      headers: { "content-type": "text/plain" },
      payload: JSON.stringify({ id: "as-text", model_id: "flux-1-dev", quantity: 1 }),
    });
    expectStatus(native, 400);
    expect(native.json().error.issues[0]).toMatchObject({ loc: ["body"], type: "content_type" });
    expect(await storedEvents()).toBe(1);
    expectStatus(await h.request({ method: "DELETE", url: `/usage/${usageId}`, key: w.admin.key }), 204);
  });

  it("query parameters that are not percent-encoded UTF-8 -> refused naming them on every surface", async () => {
    // an encoded lone surrogate (%ED%A0%80) and a byte that starts no UTF-8 character (%FF)
    for (const bad of ["%ED%A0%80x", "%FF"]) {
      const native = await h.request({
        method: "GET",
        url: `/v1/audit?usage_id=${bad}&limit=5`,
        key: w.admin.key,
      });
      expectStatus(native, 400);
      expect(native.json().error.issues[0]).toMatchObject({
        loc: ["query", "usage_id"],
        msg: "must be percent-encoded UTF-8",
      });
      const usageLog = await h.request({ method: "GET", url: `/usage?api_name=${bad}`, key: w.admin.key });
      expectStatus(usageLog, 422);
      expect(usageLog.json().detail[0].loc).toEqual(["query", "api_name"]);
      const stats = await h.request({ method: "GET", url: `/v1/usage?section=${bad}`, key: w.admin.key });
      expectStatus(stats, 400);
      expect(stats.json().error).toMatchObject({ param: "section" });
    }
    // well-formed encodings (a surrogate pair's character, '+' and %25) still read as before
    const fine = await h.request({
      method: "GET",
      url: "/v1/audit?usage_id=%F0%9F%98%80%25ED+x&limit=5",
      key: w.admin.key,
    });
    expectStatus(fine, 200);
  });

  it("event times before 1970 or past the future window are refused naming the field", async () => {
    const now = h.clock.now();
    for (const timestamp of [
      "1969-12-31T23:59:59Z",
      "0001-01-01T00:00:00Z",
      "9999-12-31T23:59:59Z",
      "+275760-09-13T00:00:00Z",
      new Date(now + 86_400_000 + 1000).toISOString(),
      now + 86_400_000 + 1,
    ]) {
      const res = await h.request({
        method: "POST",
        url: "/v1/events",
        key: w.admin.key,
        body: { events: [{ id: `t-${timestamp}`, model_id: "flux-1-dev", quantity: 1, timestamp }] },
      });
      // a batch reports the item as rejected, naming its timestamp
      expect(res.statusCode, `${timestamp}: ${res.body}`).toBeLessThan(500);
      const body = res.json();
      const rejected = body.rejected ?? body.error?.issues;
      expect(JSON.stringify(rejected), String(timestamp)).toContain("timestamp");
    }
    expect(await storedEvents()).toBe(0);
    // within the window: an hour ahead, and exactly its edge
    for (const timestamp of [new Date(now + 3_600_000).toISOString(), now + 86_400_000]) {
      const res = await h.request({
        method: "POST",
        url: "/v1/events",
        key: w.admin.key,
        body: { id: `ok-${timestamp}`, model_id: "flux-1-dev", quantity: 1, timestamp },
      });
      expectStatus(res, 200);
    }
    expect(await storedEvents()).toBe(2);
  });
});

describe("readEventTime", () => {
  const now = Date.parse("2025-06-15T12:00:00Z");
  it("takes 1970 on and up to the window past now; refuses the rest naming the field", () => {
    expect(readEventTime(0, ["timestamp"], now, 1000)).toBe(0);
    expect(readEventTime("1970-01-01T00:00:00Z", ["timestamp"], now, 1000)).toBe(0);
    expect(readEventTime(now + 1000, ["timestamp"], now, 1000)).toBe(now + 1000);
    expect(() => readEventTime(now + 1001, ["events", 2, "timestamp"], now, 1000)).toThrow(
      /events\.2\.timestamp: must not be more than 1000 ms in the future/,
    );
    expect(() => readEventTime("1969-12-31T23:59:59.999Z", ["timestamp"], now, 1000)).toThrow(
      /timestamp: must not be before 1970/,
    );
    // a window of 0 (TALLY_MAX_FUTURE_MS=0): nothing after now
    expect(() => readEventTime(now + 1, ["timestamp"], now, 0)).toThrow(/future/);
  });
});
