import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DeliveryWorker } from "../../../src/notify/delivery.ts";
import { RETRY_DELAYS_MS } from "../../../src/notify/retry-policy.ts";
import { httpWebhookSender, type WebhookSender } from "../../../src/notify/send-webhook.ts";
import { StoreOutbox } from "../../../src/notify/store-outbox.ts";
import { createServices } from "../../../src/services.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { storeKinds } from "../../support/stores.ts";
import { buildWorld, type World } from "../../support/world.ts";

/**
 * Webhooks and alerts end to end: routes -> the outbox written with its cause -> the delivery
 * worker over the store's tables -> a real HTTP receiver that verifies every signature with the
 * standardwebhooks package (an independent implementation). Only Date is faked, so the worker's
 * schedule and the receiver's timestamp tolerance move together while sockets run on real timers.
 */

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let hookUrl: string;
let received: Received[] = [];
/** answers per request, in order; the last one repeats */
let script: number[] = [200];
let sender: WebhookSender;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(script[Math.min(received.length - 1, script.length - 1)]);
      res.end("thanks");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  sender = httpWebhookSender("allow");
});

afterAll(async () => {
  await sender.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);

/** Verifies a delivery with `secret` as a receiver would; the parsed body, or throws. */
function verify(r: Received, secret: string): { type: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as {
    type: string;
    data: Record<string, unknown>;
  };
}

const typesOf = (rs: Received[]) => rs.map((r) => (JSON.parse(r.body) as { type: string }).type);

for (const kind of storeKinds()) {
  describe(`webhooks and alerts (${kind.name})`, () => {
    let h: Harness;
    let w: World;
    let worker: DeliveryWorker;

    beforeEach(async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(T0);
      received = [];
      script = [200];
      h = await createHarness(kind, { realClock: true });
      w = await buildWorld(h);
      worker = new DeliveryWorker({ outbox: new StoreOutbox(h.services.store, null), send: sender.send });
    });

    afterEach(async () => {
      vi.useRealTimers();
      await h.close();
    });

    const post = (url: string, payload: unknown, key = ROOT_KEY) =>
      h.request({ method: "POST", url, payload: payload as object, key });

    async function endpoint(events: string[], accountId: string | null = w.account.id, key = ROOT_KEY) {
      const res = await post("/v1/webhooks", { url: hookUrl, events, account_id: accountId }, key);
      expectStatus(res, 201);
      return res.json() as { id: string; secret: string };
    }

    /** Sends what is due now and waits until the receiver has it all. */
    async function deliver(): Promise<number> {
      let n = 0;
      for (let sent = await worker.runOnce(); sent > 0; sent = await worker.runOnce()) n += sent;
      return n;
    }

    async function events(key: string, list: object[]) {
      const res = await post("/v1/events", { events: list }, key);
      expectStatus(res, 200);
      await h.services.committer.idle();
      await h.services.alerts.evaluatePending();
    }

    it("creates an endpoint with its secret once; a key created and revoked are delivered, signed, verified", async () => {
      const ep = await endpoint(["key.created", "key.revoked"]);
      expect(ep.secret).toMatch(/^whsec_/);
      const read = await h.request({ method: "GET", url: `/v1/webhooks/${ep.id}`, key: ROOT_KEY });
      expectStatus(read, 200);
      expect(read.json()).not.toHaveProperty("secret");
      expect(read.body).not.toContain(ep.secret.slice(6));

      const key = await post(`/v1/users/${w.member.id}/keys`, { label: "ci" });
      expectStatus(key, 201);
      const revoke = () => h.request({ method: "DELETE", url: `/v1/keys/${key.json().id}`, key: ROOT_KEY });
      expectStatus(await revoke(), 204);
      // revoking again changes nothing and says nothing
      await revoke();

      expect(await deliver()).toBe(2);
      expect(typesOf(received).sort()).toEqual(["key.created", "key.revoked"]);
      const [createdAt, revokedAt] = ["key.created", "key.revoked"].map(
        (t) => received.find((r) => typesOf([r])[0] === t)!,
      );
      const created = verify(createdAt, ep.secret);
      expect(created.data).toMatchObject({
        account_id: w.account.id,
        user_id: w.member.id,
        key_id: key.json().id,
        label: "ci",
        revoked_at: null,
      });
      expect(createdAt.body).not.toContain(key.json().key);
      expect(verify(revokedAt, ep.secret).data.revoked_at).toBe(new Date(T0).toISOString());
      // another account's keys are not this endpoint's business
      await post(`/v1/users/${w.other.admin.id}/keys`, {});
      expect(await deliver()).toBe(0);
    });

    it("rotation: both secrets verify for 24 hours, then only the new one", async () => {
      const ep = await endpoint(["webhook.test"]);
      const rotated = await post(`/v1/webhooks/${ep.id}/rotate`, {});
      expectStatus(rotated, 200);
      const next = rotated.json().secret as string;
      expect(next).not.toBe(ep.secret);

      expectStatus(await post(`/v1/webhooks/${ep.id}/test`, {}), 202);
      await deliver();
      expect(verify(received[0], ep.secret).type).toBe("webhook.test");
      expect(verify(received[0], next).type).toBe("webhook.test");

      vi.setSystemTime(T0 + 24 * 3_600_000 + 1000);
      expectStatus(await post(`/v1/webhooks/${ep.id}/test`, {}), 202);
      await deliver();
      expect(verify(received[1], next).type).toBe("webhook.test");
      expect(() => verify(received[1], ep.secret)).toThrow();
    });

    it("a receiver answering 500 three times then 200 gets 4 attempts on the schedule; the log shows them", async () => {
      script = [500, 500, 500, 200];
      const ep = await endpoint(["webhook.test"]);
      const test = await post(`/v1/webhooks/${ep.id}/test`, {});
      const due = [0, RETRY_DELAYS_MS[0], RETRY_DELAYS_MS[0] + RETRY_DELAYS_MS[1]];
      due.push(due[2] + RETRY_DELAYS_MS[2]);
      for (const t of due) {
        vi.setSystemTime(T0 + t - 1);
        if (t > 0) expect(await deliver()).toBe(0);
        vi.setSystemTime(T0 + t);
        expect(await deliver()).toBe(1);
      }
      expect(received.map((r) => r.at - T0)).toEqual(due);
      expect(new Set(received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([test.json().id]));

      const log = await h.request({ method: "GET", url: `/v1/webhooks/${ep.id}/deliveries`, key: ROOT_KEY });
      expectStatus(log, 200);
      const [delivery] = log.json().data;
      expect(delivery).toMatchObject({ id: test.json().id, status: "succeeded", attempt_count: 4 });
      expect(delivery.attempts.map((a: { status_code: number }) => a.status_code)).toEqual([
        500, 500, 500, 200,
      ]);
      expect(delivery.attempts[3]).toMatchObject({ succeeded: true, response_excerpt: "thanks" });
    });

    it("an exhausted delivery is failed and is sent again by a manual retry", async () => {
      script = [503];
      const ep = await endpoint(["webhook.test"]);
      const id = (await post(`/v1/webhooks/${ep.id}/test`, {})).json().id as string;
      let t = 0;
      await deliver();
      for (const delay of RETRY_DELAYS_MS) {
        t += delay;
        vi.setSystemTime(T0 + t + 60_000);
        await deliver();
      }
      expect(received).toHaveLength(8);
      const failed = await h.request({
        method: "GET",
        url: `/v1/webhooks/${ep.id}/deliveries`,
        key: ROOT_KEY,
      });
      expect(failed.json().data[0].status).toBe("failed");

      script = [200];
      const retry = await post(`/v1/webhooks/deliveries/${id}/retry`, {});
      expectStatus(retry, 202);
      expect(retry.json().status).toBe("pending");
      expect(await deliver()).toBe(1);
      expect(received[8].headers["webhook-id"]).toBe(id);
      const done = await h.request({ method: "GET", url: `/v1/webhooks/${ep.id}/deliveries`, key: ROOT_KEY });
      expect(done.json().data[0]).toMatchObject({ status: "succeeded", attempt_count: 9 });
    });

    it("a restart between the cause and the delivery loses nothing and sends nothing twice", async () => {
      const ep = await endpoint(["key.created"]);
      expectStatus(await post(`/v1/users/${w.member.id}/keys`, {}), 201);
      // this instance stops before its worker ran; another instance on the same store takes over
      const second = createServices(h.testStore.store, { rootKey: ROOT_KEY });
      const other = new DeliveryWorker({ outbox: new StoreOutbox(second.store, null), send: sender.send });
      expect(await other.runOnce()).toBe(1);
      expect(await other.runOnce()).toBe(0);
      expect(await deliver()).toBe(0);
      expect(received).toHaveLength(1);
      expect(verify(received[0], ep.secret).type).toBe("key.created");
    });

    it("alert thresholds: absolute and percentage-of-included fire once per period, by live traffic and by a backfill", async () => {
      const ep = await endpoint(["usage.threshold_crossed"]);
      expectStatus(
        await post("/v1/plans", {
          id: "pro",
          requests_per_minute: null,
          requests_per_day: null,
          validity_days: -999999,
          included: { "flux-1-dev": 100 },
        }),
        201,
      );
      expectStatus(await post(`/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "pro" }), 201);
      const absolute = await post(`/v1/accounts/${w.account.id}/alerts`, {
        metric: "quantity",
        model_id: "flux-1-dev",
        period: "month",
        thresholds: [50, 100],
        basis: "absolute",
        value: 10,
      });
      expectStatus(absolute, 201);
      const included = await post(
        `/v1/accounts/${w.account.id}/alerts`,
        { metric: "quantity", model_id: "flux-1-dev", period: "month", thresholds: [80], basis: "included" },
        w.admin.key,
      );
      expectStatus(included, 201);

      const ev = (id: string, quantity: number, timestamp = new Date(T0).toISOString()) => ({
        id,
        model_id: "flux-1-dev",
        quantity,
        timestamp,
      });
      await events(w.member.key, [ev("a", 4)]);
      expect(await deliver()).toBe(0);
      await events(w.member.key, [ev("b", 2)]); // 6 of 10: 50 % of the absolute rule
      await events(w.member.key, [ev("c", 1), ev("a", 4)]); // the retried "a" counts once: 7
      await deliver();
      expect(received.map((r) => verify(r, ep.secret).data.threshold)).toEqual([50]);
      await events(w.member.key, [ev("d", 80)]); // 87: 100 % absolute, 80 % of the 100 included
      await deliver();
      const fired = received.map((r) => verify(r, ep.secret).data);
      expect(fired.map((d) => [d.rule_id, d.threshold])).toEqual(
        expect.arrayContaining([
          [absolute.json().id, 50],
          [absolute.json().id, 100],
          [included.json().id, 80],
        ]),
      );
      expect(fired).toHaveLength(3);
      expect(fired.find((d) => d.rule_id === included.json().id)).toMatchObject({ value: 87, limit: 100 });

      // the sweep finds nothing new; the same totals never fire twice
      await h.services.alerts.sweep();
      expect(await deliver()).toBe(0);

      // a backfill into last month crosses last month's thresholds there, once
      await events(w.member.key, [ev("oct", 12, "2026-10-15T08:00:00Z")]);
      await deliver();
      const october = received.slice(3).map((r) => verify(r, ep.secret).data);
      expect(october.map((d) => [d.threshold, (d.period as { start: string }).start])).toEqual(
        expect.arrayContaining([
          [50, "2026-10-01T00:00:00+00:00"],
          [100, "2026-10-01T00:00:00+00:00"],
        ]),
      );
      expect(october.filter((d) => d.rule_id === absolute.json().id)).toHaveLength(2);

      const list = await h.request({
        method: "GET",
        url: `/v1/accounts/${w.account.id}/alerts`,
        key: w.admin.key,
      });
      expectStatus(list, 200);
      const rule = list.json().data.find((r: { id: string }) => r.id === included.json().id);
      expect(rule).toMatchObject({ total: 87, limit: 100, outlook: [{ threshold: 80, status: "crossed" }] });
    });

    it("a cost rule on the monthly budget sends budget.threshold_crossed at its percentage", async () => {
      const ep = await endpoint(["budget.threshold_crossed", "usage.threshold_crossed"]);
      const budget = await h.request({
        method: "PUT",
        url: `/v1/accounts/${w.account.id}/budget`,
        payload: JSON.stringify({ monthly_usd: "1", mode: "soft" }),
        headers: { "content-type": "application/json" },
        key: ROOT_KEY,
      });
      expect(budget.statusCode, budget.body).toBeLessThan(300);
      expectStatus(
        await post(`/v1/accounts/${w.account.id}/alerts`, {
          metric: "cost",
          period: "month",
          thresholds: [50, 90],
          basis: "budget",
        }),
        201,
      );
      // 24 images at 0.025 = 0.60 of a 1.00 budget: 50 % crossed, 90 % not
      await events(w.member.key, [{ id: "img", model_id: "flux-1-dev", quantity: 24 }]);
      await deliver();
      expect(received.map((r) => verify(r, ep.secret))).toEqual([
        expect.objectContaining({
          type: "budget.threshold_crossed",
          data: expect.objectContaining({ metric: "cost", threshold: 50, value: 0.6, limit: 1 }),
        }),
      ]);
    });

    it("a correction that takes the total back below does not fire the threshold again", async () => {
      const ep = await endpoint(["usage.threshold_crossed"]);
      expectStatus(
        await post(`/v1/accounts/${w.account.id}/alerts`, {
          metric: "requests",
          period: "day",
          thresholds: [100],
          basis: "absolute",
          value: 2,
        }),
        201,
      );
      const sent = await post(
        "/v1/events",
        {
          events: [
            { id: "r1", model_id: "flux-1-dev", quantity: 1 },
            { id: "r2", model_id: "flux-1-dev", quantity: 1 },
          ],
        },
        w.member.key,
      );
      expectStatus(sent, 200);
      await h.services.committer.idle();
      await h.services.alerts.evaluatePending();
      await deliver();
      expect(received).toHaveLength(1);
      // an admin deletes one record (2 -> 1 request), then a new request brings it back to 2
      const removed = await h.request({
        method: "DELETE",
        url: `/usage/${sent.json().results[1].usage_id}`,
        key: w.admin.key,
      });
      expect(removed.statusCode).toBeLessThan(300);
      await events(w.member.key, [{ id: "r3", model_id: "flux-1-dev", quantity: 1 }]);
      await h.services.alerts.sweep();
      expect(await deliver()).toBe(0);
      expect(verify(received[0], ep.secret).data).toMatchObject({
        metric: "requests",
        threshold: 100,
        limit: 2,
      });
    });

    it("forecast: a week's trend that reaches thresholds within 3 days sends usage.threshold_forecast once each", async () => {
      const ep = await endpoint(["usage.threshold_forecast", "usage.threshold_crossed"]);
      const rule = await post(`/v1/accounts/${w.account.id}/alerts`, {
        metric: "quantity",
        model_id: "flux-1-dev",
        period: "month",
        thresholds: [80, 100, 150],
        basis: "absolute",
        value: 100,
      });
      expectStatus(rule, 201);
      // 10 images on each of the 7 days before today (Nov 13-19): 70 so far, 10 a day
      const history = Array.from({ length: 7 }, (_, i) => ({
        id: `day-${i}`,
        model_id: "flux-1-dev",
        quantity: 10,
        timestamp: new Date(Date.UTC(2026, 10, 13 + i, 9)).toISOString(),
      }));
      await events(w.member.key, history);
      await h.services.alerts.sweep();
      await h.services.alerts.sweep();
      await deliver();
      const sent = received.map((r) => verify(r, ep.secret));
      expect(sent.map((m) => m.type)).toEqual(["usage.threshold_forecast", "usage.threshold_forecast"]);
      // 80 is 10 images away (one day at 10 a day), 100 three days; 150 is 8 days out: not yet
      expect(sent.map((m) => [m.data.threshold, m.data.forecast_at]).sort()).toEqual([
        [100, "2026-11-23T12:00:00.000Z"],
        [80, "2026-11-21T12:00:00.000Z"],
      ]);
      const list = await h.request({
        method: "GET",
        url: `/v1/accounts/${w.account.id}/alerts`,
        key: ROOT_KEY,
      });
      expect(list.json().data[0].outlook).toEqual([
        { threshold: 80, status: "projected", forecast_at: "2026-11-21T12:00:00.000Z" },
        { threshold: 100, status: "projected", forecast_at: "2026-11-23T12:00:00.000Z" },
        { threshold: 150, status: "projected", forecast_at: "2026-11-28T12:00:00.000Z" },
      ]);
    });

    it("closing a month announces invoice.finalized; voiding announces invoice.voided, once", async () => {
      const ep = await endpoint(["invoice.finalized", "invoice.voided"]);
      await events(w.member.key, [
        { id: "oct", model_id: "flux-1-dev", quantity: 3, timestamp: "2026-10-10T10:00:00Z" },
      ]);
      const closed = await post("/v1/invoices/close", { period: "2026-10", account_id: w.account.id });
      expectStatus(closed, 200);
      const invoice = closed.json().invoices[0];
      expectStatus(await post("/v1/invoices/close", { period: "2026-10", account_id: w.account.id }), 200);
      expectStatus(await post(`/v1/invoices/${invoice.id}/void`, {}), 200);
      expectStatus(await post(`/v1/invoices/${invoice.id}/void`, {}), 200);
      await deliver();
      // one message each (a second close or void announces nothing); receivers get no order promise
      expect(typesOf(received).sort()).toEqual(["invoice.finalized", "invoice.voided"]);
      const byType = (t: string) => received.find((r) => typesOf([r])[0] === t)!;
      expect(verify(byType("invoice.finalized"), ep.secret).data).toMatchObject({
        account_id: w.account.id,
        invoice_id: invoice.id,
        number: invoice.number,
        status: "finalized",
        total: 0.08,
      });
      expect(verify(byType("invoice.voided"), ep.secret).data).toMatchObject({
        invoice_id: invoice.id,
        status: "void",
      });
    });

    it("roles: an admin manages its own account's endpoints, a member none, another account's are not found", async () => {
      const mine = await endpoint(["webhook.test"], w.account.id, w.admin.key);
      expectStatus(await post("/v1/webhooks", { url: hookUrl, events: ["webhook.test"] }, w.member.key), 403);
      // an admin's endpoint is its own account's, whatever it asks; never another account's
      const implied = await post(
        "/v1/webhooks",
        { url: hookUrl, events: ["webhook.test"], account_id: null },
        w.admin.key,
      );
      expect(implied.json().account_id).toBe(w.account.id);
      expectStatus(
        await h.request({ method: "DELETE", url: `/v1/webhooks/${implied.json().id}`, key: w.admin.key }),
        204,
      );
      expectStatus(
        await post(
          "/v1/webhooks",
          { url: hookUrl, events: ["webhook.test"], account_id: w.other.accountId },
          w.admin.key,
        ),
        404,
      );
      for (const url of [`/v1/webhooks/${mine.id}`, `/v1/webhooks/${mine.id}/deliveries`]) {
        expectStatus(await h.request({ method: "GET", url, key: w.other.admin.key }), 404);
      }
      expectStatus(await post(`/v1/webhooks/${mine.id}/rotate`, {}, w.other.admin.key), 404);
      expectStatus(
        await h.request({ method: "DELETE", url: `/v1/webhooks/${mine.id}`, key: w.other.admin.key }),
        404,
      );
      const root = await endpoint(["webhook.test"], null);
      const adminList = await h.request({ method: "GET", url: "/v1/webhooks", key: w.admin.key });
      expect(adminList.json().data.map((e: { id: string }) => e.id)).toEqual([mine.id]);
      const rootList = await h.request({ method: "GET", url: "/v1/webhooks?limit=1", key: ROOT_KEY });
      expect(rootList.json()).toMatchObject({ data: [{ id: mine.id }], has_more: true });
      const page2 = await h.request({
        method: "GET",
        url: `/v1/webhooks?limit=1&starting_after=${mine.id}`,
        key: ROOT_KEY,
      });
      expect(page2.json()).toMatchObject({ data: [{ id: root.id }], has_more: false });
      expectStatus(
        await h.request({ method: "DELETE", url: `/v1/webhooks/${mine.id}`, key: w.admin.key }),
        204,
      );
      expectStatus(await h.request({ method: "GET", url: `/v1/webhooks/${mine.id}`, key: w.admin.key }), 404);
      expectStatus(
        await post(
          `/v1/accounts/${w.account.id}/alerts`,
          { metric: "cost", period: "month", thresholds: [80], basis: "budget" },
          w.member.key,
        ),
        403,
      );
    });

    it("bad input names its field and writes nothing", async () => {
      const cases: [object, string][] = [
        [{ url: "ftp://example.com/x", events: ["webhook.test"] }, "url"],
        [{ url: "https://user:pw@example.com/x", events: ["webhook.test"] }, "url"],
        [{ url: hookUrl, events: ["invoice.paid"] }, "events"],
        [{ url: hookUrl, events: [] }, "events"],
      ];
      for (const [body, field] of cases) {
        const res = await post("/v1/webhooks", body);
        expectStatus(res, 400);
        expect(res.body).toContain(field);
      }
      const rule = await post(`/v1/accounts/${w.account.id}/alerts`, {
        metric: "tokens",
        period: "month",
        thresholds: [80],
        basis: "absolute",
        value: 1,
      });
      expectStatus(rule, 400);
      expect(rule.body).toContain("metric");
      const list = await h.request({ method: "GET", url: "/v1/webhooks", key: ROOT_KEY });
      expect(list.json().data).toEqual([]);
    });
  });
}
