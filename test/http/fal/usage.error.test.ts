import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";
import { expectSeedError, expectUsage, getUsage, postEvents, type Query } from "./support.ts";

const fiftyOne = Array.from({ length: 51 }, (_, i) => `m${i}`);

/** Every 400 of the route, each with the message that names the parameter. */
const BAD: [string, Query, string][] = [
  ["unknown timezone", { timezone: "Mars/Olympus" }, "query.timezone: unknown IANA timezone 'Mars/Olympus'"],
  [
    "unknown timeframe",
    { timeframe: "year" },
    "query.timeframe: must be one of minute, hour, day, week, month",
  ],
  [
    "bound_to_timeframe not true/false",
    { bound_to_timeframe: "1" },
    "query.bound_to_timeframe: must be 'true' or 'false'",
  ],
  [
    "bad start",
    { start: "last week" },
    "query.start: must be a date (2025-01-01) or an ISO 8601 date-time (2025-01-01T00:00:00Z)",
  ],
  [
    "impossible end",
    { end: "2025-02-30" },
    "query.end: must be a date (2025-01-01) or an ISO 8601 date-time (2025-01-01T00:00:00Z)",
  ],
  [
    "start equal to end",
    { start: "2025-01-01", end: "2025-01-01" },
    "query.start: must be before end (start defaults to 24 hours ago, end to now)",
  ],
  [
    "start after end",
    { start: "2025-01-02T00:00:00Z", end: "2025-01-01T23:59:59Z" },
    "query.start: must be before end (start defaults to 24 hours ago, end to now)",
  ],
  ["empty endpoint_id", { endpoint_id: "" }, "query.endpoint_id: must name at least one endpoint id"],
  [
    "51 endpoint ids, comma-separated",
    { endpoint_id: fiftyOne.join(",") },
    "query.endpoint_id: must name at most 50 endpoint ids",
  ],
  [
    "51 endpoint ids, repeated",
    { endpoint_id: fiftyOne },
    "query.endpoint_id: must name at most 50 endpoint ids",
  ],
  [
    "unknown expand",
    { expand: "time_series,graph" },
    "query.expand: unknown value 'graph'; valid values: time_series, summary, auth_method",
  ],
  [
    "expand of auth_method alone",
    { expand: "auth_method" },
    "query.expand: must include time_series or summary",
  ],
  ["limit 0", { limit: "0" }, "query.limit: must be at least 1"],
  ["limit over 1000", { limit: "1001" }, "query.limit: must be at most 1000"],
  ["limit not an integer", { limit: "2.5" }, "query.limit: must be an integer"],
  ["limit twice", { limit: ["10", "20"] }, "query.limit: must be given at most once"],
  [
    "cursor not base64 of a page",
    { cursor: "bm9wZQ==" },
    "query.cursor: is not a cursor from a previous response (base64 of a page number)",
  ],
  [
    "cursor of page 0",
    { cursor: "MA==" },
    "query.cursor: is not a cursor from a previous response (base64 of a page number)",
  ],
  [
    "a minute timeframe over a year",
    { start: "2024-01-01", end: "2025-01-01", timeframe: "minute" },
    "query.timeframe: the range spans more than 10000 minute buckets: choose a larger timeframe or a shorter range",
  ],
  ["account_id twice", { account_id: ["a", "b"] }, "query.account_id: must be one account id"],
];

describe.each(storeKinds())("GET /v1/models/usage errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it.each(BAD)("400 validation_error: %s", async (_name, query, message) => {
    const res = await getUsage(h, query, w.admin.key);
    expect(expectSeedError(res, 400, "validation_error")).toBe(message);
  });

  it("reads an unencoded '+' offset (decoded to a space) as '+'", async () => {
    await postEvents(h, w.account.id, [
      { id: "e", model_id: "flux-1-dev", quantity: 1, timestamp: "2025-01-15T04:30:00Z" },
    ]);
    const res = await h.request({
      method: "GET",
      url: "/v1/models/usage?start=2025-01-15T10:00:00+05:30&end=2025-01-15T11:00:00+05:30&expand=summary",
      headers: { authorization: `Key ${w.admin.key}` },
    });
    expect(expectUsage(res).summary).toEqual([
      {
        endpoint_id: "flux-1-dev",
        unit: "image",
        quantity: 1,
        unit_price: 0.025,
        cost: 0.025,
        currency: "USD",
      },
    ]);
  });

  it("404 not_found for unknown routes and methods under the prefix, with or without a key", async () => {
    for (const [method, url, key] of [
      ["GET", "/v1/models/usage/daily", w.admin.key],
      ["GET", "/v1/models/usage/a/b?limit=1", null],
      ["POST", "/v1/models/usage", w.admin.key],
      ["DELETE", "/v1/models/usage", null],
    ] as const) {
      const res = await h.request({
        method,
        url,
        headers: key ? { authorization: `Key ${key}` } : {},
      });
      const path = url.split("?")[0];
      expect(expectSeedError(res, 404, "not_found")).toBe(`Route ${method} ${path} not found`);
    }
  });

  it("the native routes beside the prefix keep their own format", async () => {
    const res = await h.request({ method: "GET", url: "/v1/models", key: w.admin.key });
    expect(res.statusCode).toBe(200);
    const other = await h.request({ method: "GET", url: "/v1/models/other", key: w.admin.key });
    expect(other.statusCode).toBe(404);
    expect(other.json().error.code).toBe("NOT_FOUND");
  });

  it("500 server_error when the store fails, with a generic message", async () => {
    h.services.store.aggregate = async () => {
      throw new Error("disk on fire: /var/lib/secret-path");
    };
    const res = await getUsage(h, { start: "2025-01-01", end: "2025-01-02" }, w.admin.key);
    expect(expectSeedError(res, 500, "server_error")).toBe("Internal server error");
    expect(res.body).not.toContain("secret-path");
  });
});
