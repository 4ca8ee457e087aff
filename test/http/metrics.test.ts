import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { parsePromText, type Sample, sampleValue } from "../support/prom-text.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

describe.each(storeKinds())("GET /metrics ($name)", (kind) => {
  let h: Harness;
  let w: World;
  beforeEach(async () => {
    h = await createHarness(kind);
    w = await buildWorld(h);
  });
  afterEach(async () => h.close());

  const scrapeOver = async (url: string): Promise<Sample[]> => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${ROOT_KEY}` } });
    expect(res.status).toBe(200);
    return parsePromText(await res.text());
  };

  const scrape = async (key: string = ROOT_KEY): Promise<Sample[]> => {
    const res = await h.request({ method: "GET", url: "/metrics", key });
    expectStatus(res, 200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePromText(res.body);
  };

  it("is for the root key (or the metrics token) only", async () => {
    for (const key of [null, w.member.key, w.admin.key, "nope"]) {
      const res = await h.request({ method: "GET", url: "/metrics", key });
      expectStatus(res, 401);
      expect(res.body).not.toContain("tally_");
    }
    const app = await buildApp(h.services, { metricsToken: "scrape-token-0123456789" });
    try {
      const res = await app.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: "Bearer scrape-token-0123456789" },
      });
      expectStatus(res, 200);
      expect(res.body).toContain("tally_events_total");
    } finally {
      await app.close();
    }
  });

  it("counts requests by route pattern and status, events by outcome, and group commits", async () => {
    const before = await scrape();
    const post = (body: Record<string, unknown>) =>
      h.request({ method: "POST", url: "/v1/events", key: w.admin.key, body });
    expectStatus(await post({ id: "m-1", model_id: "flux-1-dev", quantity: 1 }), 200);
    expectStatus(await post({ id: "m-1", model_id: "flux-1-dev", quantity: 1 }), 200);
    const batch = await post({
      events: [
        { id: "m-2", model_id: "flux-1-dev", quantity: 1 },
        { id: "m-3", model_id: "flux-1-dev", quantity: -1 },
      ],
    });
    expectStatus(batch, 200);
    const account = await h.request({ method: "GET", url: `/v1/accounts/${w.account.id}`, key: ROOT_KEY });
    expectStatus(account, 200);
    await h.services.committer.idle();
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta("tally_events_total", { outcome: "accepted" })).toBe(2);
    expect(delta("tally_events_total", { outcome: "duplicate" })).toBe(1);
    expect(delta("tally_events_total", { outcome: "rejected" })).toBe(1);
    const events = { method: "POST", route: "/v1/events", status: "200" };
    expect(delta("tally_http_request_duration_seconds_count", events)).toBe(3);
    expect(delta("tally_http_request_duration_seconds_bucket", { ...events, le: "+Inf" })).toBe(3);
    // the pattern, never the id: labels stay bounded
    expect(
      delta("tally_http_request_duration_seconds_count", {
        method: "GET",
        route: "/v1/accounts/:id",
        status: "200",
      }),
    ).toBe(1);
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes(w.account.id)))).toBe(false);
    expect(delta("tally_group_commit_events_count")).toBe(3);
    expect(delta("tally_group_commit_events_sum")).toBe(3);
    expect(delta("tally_group_commit_seconds_count")).toBe(3);
    // the in-memory limiter, and the Node process
    expect(sampleValue(after, "tally_rate_limiter_backend", { backend: "memory" })).toBe(1);
    expect(sampleValue(after, "tally_rate_limiter_fallbacks_total")).toBe(0);
    expect(sampleValue(after, "tally_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(after.some((s) => s.name === "tally_nodejs_eventloop_lag_seconds")).toBe(true);
  });

  it("counts requests in flight until each one's answer is out or its client gone", async () => {
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = h.app.server.address() as AddressInfo;
    const url = (path: string) => `http://127.0.0.1:${port}${path}`;
    const inFlight = async () =>
      sampleValue(await scrapeOver(url("/metrics")), "tally_http_requests_in_flight");
    for (let i = 0; i < 5; i++) {
      const res = await fetch(url(`/v1/accounts/${w.account.id}`), {
        headers: { authorization: `Bearer ${ROOT_KEY}` },
      });
      await res.text();
    }
    expect(await inFlight()).toBe(1); // the scrape itself
    // a request whose client leaves before its body is complete: counted, then let go
    const held = connect(port, "127.0.0.1");
    await new Promise((r) => held.once("connect", r));
    held.write(
      `POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${w.admin.key}\r\n` +
        "content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    );
    await expect.poll(inFlight).toBe(2);
    held.destroy();
    await expect.poll(inFlight).toBe(1);
  });

  it("labels unknown routes as one value", async () => {
    await h.request({ method: "GET", url: "/nope/123", key: ROOT_KEY });
    await h.request({ method: "GET", url: "/nope/456", key: ROOT_KEY });
    const samples = await scrape();
    expect(
      sampleValue(samples, "tally_http_request_duration_seconds_count", {
        method: "GET",
        route: "unmatched",
        status: "404",
      }),
    ).toBe(2);
  });
});
