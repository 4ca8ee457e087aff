import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

describe.each(storeKinds())("GET /v1/usage security ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  it("refuses a missing, unknown or revoked key with 401", async () => {
    const revoke = await h.request({ method: "DELETE", url: `/v1/keys/${w.member.keyId}`, key: ROOT_KEY });
    expect(revoke.statusCode).toBe(204);
    for (const key of [null, "tly_notakey", w.member.key]) {
      const res = await h.request({ method: "GET", url: "/v1/usage", key });
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().error.type).toBe("authentication_error");
      expect(res.body).not.toContain(w.member.key);
    }
  });

  it("refuses the root key, which has no account, with 403", async () => {
    const res = await h.request({ method: "GET", url: "/v1/usage", key: ROOT_KEY });
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json().error.type).toBe("permission_error");
  });

  it("shows only the key's own account", async () => {
    await h.request({
      method: "POST",
      url: "/v1/events",
      key: w.other.admin.key,
      payload: { id: "x", model_id: "flux-1-dev", quantity: 9 },
    });
    const res = await h.request({ method: "GET", url: "/v1/usage", key: w.member.key });
    const body = res.json();
    expect(body.usage_statistics.overall_request_counts.total).toBe(0);
    expect(body.model_specific_usage).toEqual({});
    expect(body.billing_information.cumulative_cost_usd).toBe(0);
    expect(body.account_information.api_key).toBe(w.member.key);
    expect(res.body).not.toContain(w.other.admin.key);
  });
});
