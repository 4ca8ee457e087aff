import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

const VALID =
  "account_information, subscription_details, billing_information, rate_limits_and_restrictions, usage_statistics, model_specific_usage";

describe.each(storeKinds())("GET /v1/usage errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("answers an unknown section with 400 naming the valid ones", async () => {
    const res = await h.request({
      method: "GET",
      url: "/v1/usage?section=account_information,bogus,nope",
      key: w.admin.key,
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toEqual({
      error: {
        message: `query.section: unknown section bogus, nope; valid sections are: ${VALID}`,
        type: "invalid_request_error",
        param: "section",
        request_id: res.headers["x-request-id"],
      },
    });
  });

  it("answers unknown routes under the prefix with 404 in the surface's format", async () => {
    for (const [method, url] of [
      ["GET", "/v1/usage/extra"],
      ["POST", "/v1/usage"],
      ["DELETE", "/v1/usage/x/y"],
    ] as const) {
      const res = await h.request({ method, url, key: w.admin.key });
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json()).toEqual({
        error: {
          message: `Route ${method} ${url} not found`,
          type: "not_found_error",
          param: null,
          request_id: res.headers["x-request-id"],
        },
      });
    }
  });
});
