import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, createUserWithKey, type World } from "../../support/world.ts";
import { expectUsage, getUsage, postEvents } from "./support.ts";

const flux = (quantity: number, cost: number, unit_price = 0.025) => ({
  endpoint_id: "flux-1-dev",
  unit: "image",
  quantity,
  unit_price,
  cost,
  currency: "USD",
});
const gpt = (quantity: number, cost: number) => ({
  endpoint_id: "gpt-mini",
  unit: "token",
  quantity,
  unit_price: 0.00000015,
  cost,
  currency: "USD",
});

describe.each(storeKinds())("GET /v1/models/usage ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("New York days across spring forward: start in, end out, every bucket listed, summary", async () => {
    await postEvents(h, w.account.id, [
      { id: "before", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-03-08T04:59:59.999Z" },
      { id: "at-start", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-03-08T05:00:00Z" },
      { id: "last-ms", model_id: "flux-1-dev", quantity: 3, timestamp: "2025-03-09T04:59:59.999Z" },
      { id: "short-day", model_id: "flux-1-dev", quantity: 4, timestamp: "2025-03-09T05:00:00Z" },
      // 23:59:59 EDT on the 23-hour day
      { id: "late", model_id: "gpt-mini", quantity: 1000, timestamp: "2025-03-10T03:59:59Z" },
      { id: "at-end", model_id: "flux-1-dev", quantity: 5, timestamp: "2025-03-11T04:00:00Z" },
    ]);
    const res = await getUsage(
      h,
      {
        start: "2025-03-08",
        end: "2025-03-11",
        timezone: "America/New_York",
        timeframe: "day",
        expand: "time_series,summary",
      },
      w.admin.key,
    );
    expect(expectUsage(res)).toEqual({
      time_series: [
        { bucket: "2025-03-08T00:00:00-05:00", results: [flux(5, 0.125)] },
        { bucket: "2025-03-09T00:00:00-05:00", results: [flux(4, 0.1), gpt(1000, 0.00015)] },
        { bucket: "2025-03-10T00:00:00-04:00", results: [] },
      ],
      summary: [flux(9, 0.225), gpt(1000, 0.00015)],
      next_cursor: null,
      has_more: false,
    });
    // exact digits on the wire, not float artefacts
    expect(res.body).toContain('"quantity":1000,"unit_price":0.00000015,"cost":0.00015,');
  });

  it("New York hours across fall back: 25 buckets, paged by 3 to the last page", async () => {
    // events may not be dated more than a day ahead: the clock stands after them
    h.clock.set("2025-11-10T00:00:00Z");
    await postEvents(h, w.account.id, [
      { id: "edt", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-11-02T05:30:00Z" },
      { id: "est", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-11-02T06:30:00Z" },
      { id: "last", model_id: "flux-1-dev", quantity: 4, timestamp: "2025-11-03T04:59:59Z" },
    ]);
    const query = {
      start: "2025-11-02",
      end: "2025-11-03",
      timezone: "America/New_York",
      limit: "3",
      expand: ["time_series", "summary"],
    };
    const first = expectUsage(await getUsage(h, query, w.admin.key));
    expect(first.time_series).toEqual([
      { bucket: "2025-11-02T00:00:00-04:00", results: [] },
      { bucket: "2025-11-02T01:00:00-04:00", results: [flux(1, 0.025)] },
      { bucket: "2025-11-02T01:00:00-05:00", results: [flux(2, 0.05)] },
    ]);
    expect(first.next_cursor).toBe("Mg==");
    expect(first.has_more).toBe(true);
    const summary = [flux(7, 0.175)];
    expect(first.summary).toEqual(summary);

    const labels: string[] = first.time_series.map((b: { bucket: string }) => b.bucket);
    let body = first;
    let pages = 1;
    while (body.has_more) {
      body = expectUsage(await getUsage(h, { ...query, cursor: body.next_cursor }, w.admin.key));
      pages += 1;
      expect(body.summary).toEqual(summary);
      labels.push(...body.time_series.map((b: { bucket: string }) => b.bucket));
    }
    expect(pages).toBe(9);
    expect(body.next_cursor).toBeNull();
    expect(body.time_series).toEqual([{ bucket: "2025-11-02T23:00:00-05:00", results: [flux(4, 0.1)] }]);
    expect(labels).toHaveLength(25);
    // local 01:00 twice, told apart by the offset
    expect(new Set(labels).size).toBe(25);
    expect(new Set(labels.map((l) => l.slice(0, 19))).size).toBe(24);
    expect(labels.slice(3, 5)).toEqual(["2025-11-02T02:00:00-05:00", "2025-11-02T03:00:00-05:00"]);

    // a page past the last one is empty
    const past = expectUsage(await getUsage(h, { ...query, cursor: "MTA=" }, w.admin.key));
    expect(past).toEqual({ time_series: [], summary, next_cursor: null, has_more: false });
  });

  it("days in UTC, Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45) split the same events differently", async () => {
    await postEvents(h, w.account.id, [
      { id: "a", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-01-01T18:14:59Z" },
      { id: "b", model_id: "flux-1-dev", quantity: 10, timestamp: "2025-01-01T18:15:00Z" },
      { id: "c", model_id: "flux-1-dev", quantity: 100, timestamp: "2025-01-01T18:30:00Z" },
    ]);
    const days = async (timezone: string) =>
      expectUsage(
        await getUsage(
          h,
          { start: "2025-01-01", end: "2025-01-03", timeframe: "day", timezone },
          w.admin.key,
        ),
      ).time_series;
    expect(await days("UTC")).toEqual([
      { bucket: "2025-01-01T00:00:00+00:00", results: [flux(111, 2.775)] },
      { bucket: "2025-01-02T00:00:00+00:00", results: [] },
    ]);
    expect(await days("Asia/Kolkata")).toEqual([
      { bucket: "2025-01-01T00:00:00+05:30", results: [flux(11, 0.275)] },
      { bucket: "2025-01-02T00:00:00+05:30", results: [flux(100, 2.5)] },
    ]);
    expect(await days("Asia/Kathmandu")).toEqual([
      { bucket: "2025-01-01T00:00:00+05:45", results: [flux(1, 0.025)] },
      { bucket: "2025-01-02T00:00:00+05:45", results: [flux(110, 2.75)] },
    ]);
  });

  it("bound_to_timeframe=false keeps [start, end) exact; true widens to whole hours", async () => {
    await postEvents(h, w.account.id, [
      { id: "before", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-03-09T06:29:59.999Z" },
      { id: "at-start", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-03-09T06:30:00Z" },
      { id: "inside", model_id: "flux-1-dev", quantity: 4, timestamp: "2025-03-09T08:59:59Z" },
      { id: "at-end", model_id: "flux-1-dev", quantity: 8, timestamp: "2025-03-09T09:00:00Z" },
    ]);
    const query = {
      start: "2025-03-09T01:30:00",
      end: "2025-03-09T05:00:00",
      timezone: "America/New_York",
      timeframe: "hour",
      expand: "time_series,summary",
    };
    expect(expectUsage(await getUsage(h, { ...query, bound_to_timeframe: "false" }, w.admin.key))).toEqual({
      time_series: [
        { bucket: "2025-03-09T01:30:00-05:00", results: [flux(2, 0.05)] },
        { bucket: "2025-03-09T03:00:00-04:00", results: [] },
        { bucket: "2025-03-09T04:00:00-04:00", results: [flux(4, 0.1)] },
      ],
      summary: [flux(6, 0.15)],
      next_cursor: null,
      has_more: false,
    });
    expect(expectUsage(await getUsage(h, query, w.admin.key))).toEqual({
      time_series: [
        { bucket: "2025-03-09T01:00:00-05:00", results: [flux(3, 0.075)] },
        { bucket: "2025-03-09T03:00:00-04:00", results: [] },
        { bucket: "2025-03-09T04:00:00-04:00", results: [flux(4, 0.1)] },
      ],
      summary: [flux(7, 0.175)],
      next_cursor: null,
      has_more: false,
    });
  });

  it("a price change inside the range gives separate lines, each cost = quantity x unit_price", async () => {
    const res = await h.request({
      method: "POST",
      url: "/v1/models",
      key: ROOT_KEY,
      payload: {
        id: "flux-1-dev",
        unit: "image",
        kind: "image",
        unit_price: "0.03",
        effective_from: "2025-03-09T12:00:00Z",
      },
    });
    expectStatus(res, 200);
    await postEvents(h, w.account.id, [
      { id: "old-1", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-03-09T10:00:00Z" },
      { id: "new-1", model_id: "flux-1-dev", quantity: 3, timestamp: "2025-03-09T12:00:00Z" },
      { id: "new-2", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-03-09T15:00:00Z" },
    ]);
    const body = expectUsage(
      await getUsage(
        h,
        { start: "2025-03-09", end: "2025-03-10", timeframe: "day", expand: "summary,time_series" },
        w.admin.key,
      ),
    );
    const lines = [flux(2, 0.05, 0.025), flux(4, 0.12, 0.03)];
    expect(body).toEqual({
      time_series: [{ bucket: "2025-03-09T00:00:00+00:00", results: lines }],
      summary: lines,
      next_cursor: null,
      has_more: false,
    });
  });

  it("decimal costs stay exact: 3 x 0.1 is 0.3 and 7 x 0.0000001 is 0.0000007", async () => {
    for (const m of [
      {
        id: "tenth",
        unit: "request",
        kind: "other",
        unit_price: "0.1",
        effective_from: "2020-01-01T00:00:00Z",
      },
      {
        id: "tiny",
        unit: "token",
        kind: "chat",
        unit_price: "0.0000001",
        effective_from: "2020-01-01T00:00:00Z",
      },
    ]) {
      expectStatus(await h.request({ method: "POST", url: "/v1/models", key: ROOT_KEY, payload: m }), 201);
    }
    await postEvents(h, w.account.id, [
      { id: "t1", model_id: "tenth", quantity: 1, timestamp: "2025-05-01T00:00:00Z" },
      { id: "t2", model_id: "tenth", quantity: 2, timestamp: "2025-05-01T00:00:01Z" },
      { id: "y1", model_id: "tiny", quantity: 7, timestamp: "2025-05-01T00:00:02Z" },
    ]);
    const res = await getUsage(h, { start: "2025-05-01", end: "2025-05-02", expand: "summary" }, w.admin.key);
    expectUsage(res);
    expect(res.body).toBe(
      '{"summary":[' +
        '{"endpoint_id":"tenth","unit":"request","quantity":3,"unit_price":0.1,"cost":0.3,"currency":"USD"},' +
        '{"endpoint_id":"tiny","unit":"token","quantity":7,"unit_price":0.0000001,"cost":0.0000007,"currency":"USD"}' +
        '],"next_cursor":null,"has_more":false}',
    );
  });

  it("auth_method: lines per key label, 'User token' without a key, 'Unknown' without either", async () => {
    const prod = await h.request({
      method: "POST",
      url: `/v1/users/${w.admin.id}/keys`,
      key: ROOT_KEY,
      payload: { label: "Production Key" },
    });
    expectStatus(prod, 201);
    const ts = "2025-04-01T10:00:00Z";
    await postEvents(h, w.account.id, [
      { id: "k1", model_id: "flux-1-dev", quantity: 1, timestamp: ts, key_id: w.admin.keyId },
      { id: "k2", model_id: "flux-1-dev", quantity: 2, timestamp: ts, key_id: prod.json().id },
      { id: "k3", model_id: "flux-1-dev", quantity: 4, timestamp: ts, key_id: prod.json().id },
      { id: "u1", model_id: "flux-1-dev", quantity: 8, timestamp: ts, user_id: w.member.id },
      { id: "n1", model_id: "flux-1-dev", quantity: 16, timestamp: ts },
      { id: "g1", model_id: "gpt-mini", quantity: 100, timestamp: ts, key_id: w.member.keyId },
    ]);
    const query = { start: "2025-04-01", end: "2025-04-02", timeframe: "day" };
    const body = expectUsage(
      await getUsage(h, { ...query, expand: "time_series,summary,auth_method" }, w.admin.key),
    );
    const expected = [
      { ...flux(1, 0.025), auth_method: "Key 1" },
      { ...flux(2 + 4, 0.15), auth_method: "Production Key" },
      { ...flux(16, 0.4), auth_method: "Unknown" },
      { ...flux(8, 0.2), auth_method: "User token" },
      { ...gpt(100, 0.000015), auth_method: "Key 1" },
    ];
    expect(body.summary).toEqual(expected);
    expect(body.time_series).toEqual([{ bucket: "2025-04-01T00:00:00+00:00", results: expected }]);

    // without auth_method the same usage is one line per endpoint and price, with no auth_method field
    const plain = expectUsage(await getUsage(h, { ...query, expand: "summary" }, w.admin.key));
    expect(plain).toEqual({
      summary: [flux(31, 0.775), gpt(100, 0.000015)],
      next_cursor: null,
      has_more: false,
    });
  });

  it("endpoint_id filters, comma-separated or repeated", async () => {
    const ts = "2025-04-01T10:00:00Z";
    await postEvents(h, w.account.id, [
      { id: "f", model_id: "flux-1-dev", quantity: 1, timestamp: ts },
      { id: "g", model_id: "gpt-mini", quantity: 10, timestamp: ts },
      { id: "t", model_id: "tts-1", quantity: 2.5, timestamp: ts },
    ]);
    const tts = {
      endpoint_id: "tts-1",
      unit: "second",
      quantity: 2.5,
      unit_price: 0.0005,
      cost: 0.00125,
      currency: "USD",
    };
    const query = { start: "2025-04-01", end: "2025-04-02", expand: "summary" };
    const summary = async (endpoint_id: string | string[]) =>
      expectUsage(await getUsage(h, { ...query, endpoint_id }, w.admin.key)).summary;
    expect(await summary("flux-1-dev,tts-1")).toEqual([flux(1, 0.025), tts]);
    expect(await summary(["gpt-mini", "tts-1"])).toEqual([gpt(10, 0.0000015), tts]);
    expect(await summary(["flux-1-dev,gpt-mini", "tts-1"])).toEqual([
      flux(1, 0.025),
      gpt(10, 0.0000015),
      tts,
    ]);
    expect(await summary("no-such-model")).toEqual([]);
  });

  it("defaults: the last 24 hours in UTC, hourly, time_series only, 24 buckets when now is on the hour", async () => {
    h.clock.set("2025-06-15T12:00:00Z");
    await postEvents(h, w.account.id, [
      { id: "too-old", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-06-14T11:59:59Z" },
      { id: "first", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-06-14T12:00:00Z" },
      { id: "recent", model_id: "flux-1-dev", quantity: 3, timestamp: "2025-06-15T11:30:00Z" },
    ]);
    const body = expectUsage(await getUsage(h, {}, w.admin.key));
    expect(Object.keys(body)).toEqual(["time_series", "next_cursor", "has_more"]);
    expect(body.time_series).toHaveLength(24);
    expect(body.time_series[0]).toEqual({ bucket: "2025-06-14T12:00:00+00:00", results: [flux(2, 0.05)] });
    expect(body.time_series[1]).toEqual({ bucket: "2025-06-14T13:00:00+00:00", results: [] });
    expect(body.time_series[23]).toEqual({ bucket: "2025-06-15T11:00:00+00:00", results: [flux(3, 0.075)] });
    expect(body.has_more).toBe(false);
  });

  it("weeks start on Monday and months are calendar months in the timezone", async () => {
    await postEvents(h, w.account.id, [
      // Sunday 2025-03-09 23:30 EDT and Monday 2025-03-10 00:30 EDT
      { id: "sun", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-03-10T03:30:00Z" },
      { id: "mon", model_id: "flux-1-dev", quantity: 2, timestamp: "2025-03-10T04:30:00Z" },
      // 2025-03-31 23:59 EDT is still March
      { id: "mar", model_id: "flux-1-dev", quantity: 4, timestamp: "2025-04-01T03:59:00Z" },
    ]);
    const weeks = expectUsage(
      await getUsage(
        h,
        { start: "2025-03-05", end: "2025-03-12", timeframe: "week", timezone: "America/New_York" },
        w.admin.key,
      ),
    );
    expect(weeks.time_series).toEqual([
      { bucket: "2025-03-03T00:00:00-05:00", results: [flux(1, 0.025)] },
      { bucket: "2025-03-10T00:00:00-04:00", results: [flux(2, 0.05)] },
    ]);
    const months = expectUsage(
      await getUsage(
        h,
        { start: "2025-02-10", end: "2025-04-02", timezone: "America/New_York" },
        w.admin.key,
      ),
    );
    // 51 days: auto-detected as day, and the default limit of 50 buckets leaves one for page 2
    expect(months.time_series).toHaveLength(50);
    expect(months.next_cursor).toBe("Mg==");
    const monthly = expectUsage(
      await getUsage(
        h,
        { start: "2025-02-10", end: "2025-04-02", timezone: "America/New_York", timeframe: "month" },
        w.admin.key,
      ),
    );
    expect(monthly.time_series).toEqual([
      { bucket: "2025-02-01T00:00:00-05:00", results: [] },
      { bucket: "2025-03-01T00:00:00-05:00", results: [flux(7, 0.175)] },
      { bucket: "2025-04-01T00:00:00-04:00", results: [] },
    ]);
  });

  it("accepts Authorization: Key, Authorization: Bearer and x-key", async () => {
    const query = { start: "2025-04-01", end: "2025-04-02", expand: "summary" };
    const expected = { summary: [], next_cursor: null, has_more: false };
    expect(expectUsage(await getUsage(h, query, w.admin.key))).toEqual(expected);
    const url = `/v1/models/usage?start=2025-04-01&end=2025-04-02&expand=summary`;
    expect(expectUsage(await h.request({ method: "GET", url, key: w.admin.key }))).toEqual(expected);
    expect(expectUsage(await h.request({ method: "GET", url, headers: { "x-key": w.admin.key } }))).toEqual(
      expected,
    );
  });

  it("answers with a trailing slash too; /openapi.json documents /v1/models/usage and its parameters", async () => {
    const url = "/v1/models/usage/?start=2025-04-01&end=2025-04-02&expand=summary";
    expect(expectUsage(await h.request({ method: "GET", url, key: w.admin.key }))).toEqual({
      summary: [],
      next_cursor: null,
      has_more: false,
    });
    const doc = (await h.request({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(doc.paths).filter((p) => p.startsWith("/v1/models/usage"))).toEqual([
      "/v1/models/usage",
    ]);
    expect(doc.paths["/v1/models/usage"].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      "account_id",
      "bound_to_timeframe",
      "cursor",
      "end",
      "endpoint_id",
      "expand",
      "limit",
      "start",
      "timeframe",
      "timezone",
    ]);
  });

  it("an admin created later reads the same account", async () => {
    const second = await createUserWithKey(h, w.account.id, "dora", "admin", "Ops");
    await postEvents(h, w.account.id, [
      { id: "x", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-04-01T10:00:00Z" },
    ]);
    const body = expectUsage(
      await getUsage(h, { start: "2025-04-01", end: "2025-04-02", expand: "summary" }, second.key),
    );
    expect(body.summary).toEqual([flux(1, 0.025)]);
  });
});
