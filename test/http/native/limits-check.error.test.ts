import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

describe.each(storeKinds())("POST /v1/limits/check errors ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const check = (key: string | null, payload?: unknown) =>
    h.request({ method: "POST", url: "/v1/limits/check", key, payload: payload as object });

  it("names the offending field of a bad body", async () => {
    for (const [payload, message] of [
      [{ model_id: 5 }, "model_id: must be a string of 1 to 200 characters"],
      [{ model_id: "" }, "model_id: must be a string of 1 to 200 characters"],
      [{ extra: true }, "extra: unknown field"],
      [[1], "must be an object"],
    ] as const) {
      const res = await check(w.admin.key, payload);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error).toMatchObject({ code: "VALIDATION", message });
    }
  });

  it("needs account_id with the root key, and hides other accounts", async () => {
    const root = await check(ROOT_KEY, {});
    expect(root.statusCode, root.body).toBe(400);
    expect(root.json().error.message).toBe("account_id: Field required with the root key");
    const cross = await check(w.admin.key, { account_id: w.other.accountId });
    expect(cross.statusCode, cross.body).toBe(404);
    const unknown = await check(ROOT_KEY, { account_id: "nope" });
    expect(unknown.statusCode, unknown.body).toBe(404);
  });

  it("refuses a missing or unknown key with 401", async () => {
    for (const key of [null, "tly_nope"]) {
      const res = await check(key);
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().error.code).toBe("UNAUTHORIZED");
    }
  });
});
