import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { buildApp } from "../../src/http/app.ts";
import { RETRY_AFTER_SECONDS } from "../../src/http/errors.ts";
import { createServices } from "../../src/services.ts";
import { createHarness, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/** What the store engineer's stores raise for a lost database, a full disk or a timeout. */
const lost = () =>
  new DomainError("UNAVAILABLE", "store unavailable", [], {
    cause: new Error("connect ECONNREFUSED 127.0.0.1:5432 (secret-detail)"),
  });

/**
 * A store that cannot answer is a 503 with Retry-After on every surface, in the surface's own
 * error format; the cause is logged, never shown (DESIGN, "Bad input and faults").
 */
describe.each(storeKinds())("UNAVAILABLE on every surface ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let logLines: string[];

  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
    logLines = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    // a second app over the same services, with a logger we can read
    app = await buildApp(createServices(h.testStore.store, { rootKey: ROOT_KEY, now: h.clock.now }), {
      logger: { level: "error", stream },
    });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await app.close();
    await h.close();
  });

  const retryAfter = String(RETRY_AFTER_SECONDS);
  function expectLoggedCause() {
    const text = logLines.join("\n");
    expect(text).toContain("ECONNREFUSED");
  }

  it("native: 503 {error: {code: UNAVAILABLE}} with Retry-After", async () => {
    vi.spyOn(h.testStore.store, "getAccount").mockRejectedValue(lost());
    const res = await app.inject({
      method: "GET",
      url: `/v1/accounts/${w.account.id}`,
      headers: { authorization: `Bearer ${ROOT_KEY}` },
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toEqual({
      error: { code: "UNAVAILABLE", message: expect.any(String), request_id: res.headers["x-request-id"] },
    });
    expect(res.body).not.toContain("ECONNREFUSED");
    expectLoggedCause();
  });

  it("usage log: 503 {detail} with Retry-After", async () => {
    vi.spyOn(h.testStore.store, "listEvents").mockRejectedValue(lost());
    const res = await app.inject({ method: "GET", url: "/usage", headers: { "x-key": w.admin.key } });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toEqual({ detail: "Service Unavailable" });
    expectLoggedCause();
  });

  it("license report: 503 {detail} with Retry-After, nothing written", async () => {
    await h.request({
      method: "POST",
      url: `/v1/accounts/${w.account.id}/licenses`,
      key: ROOT_KEY,
      payload: { model_id: "flux-1-dev", starts_at: "2020-01-01T00:00:00Z" },
    });
    vi.spyOn(h.testStore.store, "appendEvents").mockRejectedValue(lost());
    const res = await app.inject({
      method: "POST",
      url: "/v1/licenses/models/flux-1-dev/usage",
      headers: { "x-key": w.admin.key },
      payload: { number_of_generations: 2 },
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toEqual({ detail: "Service Unavailable" });
    vi.restoreAllMocks();
    expect(await h.testStore.store.listEvents({ accountId: w.account.id, skip: 0, limit: 10 })).toEqual([]);
    expectLoggedCause();
  });

  it("key statistics (a4f): 503 {error: {type: server_error}} with Retry-After", async () => {
    vi.spyOn(h.testStore.store, "getAccount").mockRejectedValue(lost());
    const res = await app.inject({ method: "GET", url: "/v1/usage", headers: { "x-key": w.member.key } });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toMatchObject({
      error: { type: "server_error", request_id: res.headers["x-request-id"] },
    });
    expectLoggedCause();
  });

  it("workspace usage (fal): 503 {error: {type: server_error}} with Retry-After", async () => {
    vi.spyOn(h.testStore.store, "getAccount").mockRejectedValue(lost());
    const res = await app.inject({
      method: "GET",
      url: `/v1/models/usage?account_id=${w.account.id}`,
      headers: { authorization: `Key ${ROOT_KEY}` },
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toEqual({
      error: { type: "server_error", message: expect.any(String), request_id: res.headers["x-request-id"] },
    });
    expectLoggedCause();
  });

  it("/healthz: 503 with Retry-After while the store does not answer", async () => {
    vi.spyOn(h.testStore.store, "ping").mockRejectedValue(lost());
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe(retryAfter);
    expect(res.json()).toEqual({ status: "unavailable", store: h.testStore.store.dialect });
  });
});
