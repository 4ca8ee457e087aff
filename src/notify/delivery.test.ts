import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryOutbox } from "../../test/support/memory-outbox.ts";
import { DeliveryWorker } from "./delivery.ts";
import { buildMessage } from "./messages.ts";
import { DISABLE_AFTER_FAILING_MS, RETRY_DELAYS_MS } from "./retry-policy.ts";
import { httpWebhookSender, type WebhookSender } from "./send-webhook.ts";
import { generateSecret } from "./signing.ts";

/**
 * The worker against a real HTTP receiver on loopback, which checks every signature with the
 * standardwebhooks package. Only Date is faked: the worker's clock and standardwebhooks' tolerance
 * check move together, while sockets and timeouts run on real timers.
 */

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  verified: boolean;
}

let server: Server;
let baseUrl: string;
let received: Received[] = [];
/** answers per request, in order; the last one repeats; "hang" never answers */
let script: (number | "hang")[] = [200];
let receiverSecret = "";
let sender: WebhookSender;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      let verified = false;
      try {
        new Webhook(receiverSecret).verify(body, req.headers as Record<string, string>);
        verified = true;
      } catch {
        verified = false;
      }
      received.push({ at: Date.now(), headers: req.headers, body, verified });
      const answer = script[Math.min(received.length - 1, script.length - 1)];
      if (answer === "hang") return;
      res.writeHead(answer, { "content-type": "text/plain" });
      res.end(`answer ${answer} to attempt ${received.length}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sender = httpWebhookSender("allow");
});

afterAll(async () => {
  await sender.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
  received = [];
  receiverSecret = generateSecret();
});

afterEach(() => {
  vi.useRealTimers();
});

function world(options: { timeoutMs?: number; leaseMs?: number } = {}) {
  const outbox = new MemoryOutbox();
  const endpoint = outbox.addEndpoint({
    id: "ep_1",
    url: `${baseUrl}/hooks/tally`,
    secrets: { current: receiverSecret, previous: null, previousExpiresAt: null },
  });
  const message = buildMessage("webhook.test", { account_id: "acc_1", endpoint_id: endpoint.id }, Date.now());
  outbox.enqueue({ id: message.id, endpointId: endpoint.id, body: message.body }, Date.now());
  const worker = new DeliveryWorker({ outbox, send: sender.send, ...options });
  return { outbox, endpoint, message, worker };
}

const at = (offsetMs: number) => vi.setSystemTime(T0 + offsetMs);

describe("delivery worker with a real receiver", () => {
  it("500 three times then 200: exactly 4 attempts, on the schedule, each signed and verified", async () => {
    script = [500, 500, 500, 200];
    const { outbox, message, worker } = world();
    const due = [0, RETRY_DELAYS_MS[0], RETRY_DELAYS_MS[0] + RETRY_DELAYS_MS[1]];
    due.push(due[2] + RETRY_DELAYS_MS[2]);

    for (const [i, t] of due.entries()) {
      at(t - 1);
      if (i > 0) expect(await worker.runOnce(), `nothing due just before attempt ${i + 1}`).toBe(0);
      at(t);
      expect(await worker.runOnce(), `attempt ${i + 1} at +${t} ms`).toBe(1);
    }
    at(48 * 3_600_000);
    expect(await worker.runOnce()).toBe(0);

    expect(received.map((r) => r.at - T0)).toEqual(due);
    expect(received.every((r) => r.verified)).toBe(true);
    // the same id and the very bytes of the outbox on every attempt; a fresh timestamp each time
    expect(new Set(received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([message.id]));
    expect(received.every((r) => r.body.equals(Buffer.from(message.body)))).toBe(true);
    expect(received.map((r) => Number(r.headers["webhook-timestamp"]))).toEqual(
      due.map((t) => Math.floor((T0 + t) / 1000)),
    );
    expect(JSON.parse(received[0].body.toString())).toEqual({
      type: "webhook.test",
      timestamp: new Date(T0).toISOString(),
      data: { account_id: "acc_1", endpoint_id: "ep_1" },
    });

    const log = outbox.attemptsOf(message.id);
    expect(log.map((a) => [a.attemptNumber, a.statusCode, a.succeeded])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 500, false],
      [4, 200, true],
    ]);
    expect(log[3].responseExcerpt).toBe("answer 200 to attempt 4");
    expect(log.every((a) => a.latencyMs >= 0 && a.error === null)).toBe(true);
    expect(outbox.messages.get(message.id)?.status).toBe("succeeded");
    expect(outbox.endpoints.get("ep_1")?.failingSince).toBeNull();
  });

  it("an exhausted message is failed after 8 attempts, and a manual retry delivers it", async () => {
    script = [503];
    const { outbox, message, worker } = world();
    let t = 0;
    const times = [0];
    for (const delay of RETRY_DELAYS_MS) {
      t += delay;
      times.push(t);
    }
    for (const time of times) {
      at(time);
      expect(await worker.runOnce()).toBe(1);
    }
    expect(received).toHaveLength(8);
    expect(received.map((r) => r.at - T0)).toEqual(times);
    expect(outbox.messages.get(message.id)?.status).toBe("failed");
    at(t + 30 * 24 * 3_600_000);
    expect(await worker.runOnce()).toBe(0);

    // by hand: one more attempt; if it fails the message is failed again, not rescheduled
    const later = t + 30 * 24 * 3_600_000;
    expect(await outbox.retryMessage(message.id, later)).toMatchObject({
      status: "pending",
      nextAttemptAt: later,
    });
    expect(await worker.runOnce()).toBe(1);
    expect(outbox.messages.get(message.id)?.status).toBe("failed");

    script = [200];
    received = [];
    await outbox.retryMessage(message.id, later);
    expect(await worker.runOnce()).toBe(1);
    expect(received).toHaveLength(1);
    expect(received[0].verified).toBe(true);
    expect(outbox.messages.get(message.id)?.status).toBe("succeeded");
    expect(outbox.attemptsOf(message.id).map((a) => a.attemptNumber)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);

    // a delivered message can be sent again by hand, still under its own id
    await outbox.retryMessage(message.id, later);
    expect(await worker.runOnce()).toBe(1);
    expect(received.map((r) => r.headers["webhook-id"])).toEqual([message.id, message.id]);
  });

  it("a 410 disables the endpoint: the message fails and the endpoint's other messages wait", async () => {
    script = [410, 200];
    const { outbox, message, worker } = world();
    const second = buildMessage("webhook.test", { account_id: "acc_1", endpoint_id: "ep_1" }, Date.now());
    outbox.enqueue({ id: second.id, endpointId: "ep_1", body: second.body }, Date.now() + 1);

    at(0);
    expect(await worker.runOnce()).toBe(1);
    expect(outbox.messages.get(message.id)?.status).toBe("failed");
    expect(outbox.endpoints.get("ep_1")).toMatchObject({ disabledAt: T0, disabledReason: /410/ });
    at(10 * 3_600_000);
    expect(await worker.runOnce()).toBe(0);
    expect(received).toHaveLength(1);

    // retrying by hand re-enables the endpoint, and its waiting messages go out too
    await outbox.retryMessage(message.id, Date.now());
    expect(await worker.runOnce()).toBe(2);
    expect(received).toHaveLength(3);
    expect([...outbox.messages.values()].map((m) => m.status)).toEqual(["succeeded", "succeeded"]);
  });

  it("a receiver that does not answer within the timeout is a failed attempt, retried on schedule", async () => {
    script = ["hang"];
    const { outbox, message, worker } = world({ timeoutMs: 300, leaseMs: 60_000 });
    const started = performance.now();
    expect(await worker.runOnce()).toBe(1);
    expect(performance.now() - started).toBeLessThan(5_000);
    const [attempt] = outbox.attemptsOf(message.id);
    expect(attempt).toMatchObject({ statusCode: null, error: "timeout", succeeded: false });
    expect(attempt.latencyMs).toBeGreaterThanOrEqual(250);
    expect(outbox.messages.get(message.id)).toMatchObject({
      status: "pending",
      scheduleStep: 1,
      nextAttemptAt: T0 + RETRY_DELAYS_MS[0],
    });
  });

  it("an endpoint failing for 5 days is disabled", async () => {
    script = [500];
    const { outbox, message, worker } = world();
    outbox.endpoints.get("ep_1")!.failingSince = T0 - DISABLE_AFTER_FAILING_MS + 1000;
    expect(await worker.runOnce()).toBe(1);
    expect(outbox.messages.get(message.id)?.status).toBe("pending"); // 4 days 23:59:59 so far
    at(RETRY_DELAYS_MS[0]);
    expect(await worker.runOnce()).toBe(1);
    expect(outbox.messages.get(message.id)?.status).toBe("failed");
    expect(outbox.endpoints.get("ep_1")).toMatchObject({ disabledAt: T0 + 5000, disabledReason: /5 days/ });
  });

  it("a connection refused is a failed attempt with its error", async () => {
    const { outbox, message, worker } = world();
    outbox.endpoints.get("ep_1")!.url = "http://127.0.0.1:1/nothing-listens";
    expect(await worker.runOnce()).toBe(1);
    expect(outbox.attemptsOf(message.id)[0]).toMatchObject({ statusCode: null, error: /ECONNREFUSED/ });
  });

  it("TALLY_WEBHOOK_PRIVATE=deny refuses loopback at send time, by name and by literal", async () => {
    const denying = httpWebhookSender("deny");
    try {
      const { outbox, message } = world();
      const strict = new DeliveryWorker({ outbox, send: denying.send });
      const port = new URL(baseUrl).port;
      for (const url of [`http://localhost:${port}/h`, `http://127.0.0.1:${port}/h`]) {
        outbox.endpoints.get("ep_1")!.url = url;
        await outbox.retryMessage(message.id, Date.now());
        expect(await strict.runOnce()).toBe(1);
      }
      expect(received).toHaveLength(0);
      expect(outbox.attemptsOf(message.id).map((a) => a.error)).toEqual([
        expect.stringMatching(/private or loopback/),
        expect.stringMatching(/private or loopback/),
      ]);
      // the default policy reaches the same receiver by name
      await outbox.retryMessage(message.id, Date.now());
      outbox.endpoints.get("ep_1")!.url = `http://localhost:${port}/h`;
      expect(await new DeliveryWorker({ outbox, send: sender.send }).runOnce()).toBe(1);
      expect(received).toHaveLength(1);
      expect(received[0].verified).toBe(true);
    } finally {
      await denying.close();
    }
  });
});

describe("several workers, crashes", () => {
  it("two workers claiming at once send each message once", async () => {
    script = [200];
    const { outbox, worker } = world();
    for (let i = 0; i < 9; i++) {
      const m = buildMessage("webhook.test", { account_id: "acc_1", endpoint_id: "ep_1" }, Date.now());
      outbox.enqueue({ id: m.id, endpointId: "ep_1", body: m.body }, Date.now());
    }
    const other = new DeliveryWorker({ outbox, send: sender.send, batchSize: 3 });
    const counts = await Promise.all([worker.runOnce(), other.runOnce(), other.runOnce()]);
    expect(counts.reduce((a, b) => a + b)).toBe(10);
    expect(received).toHaveLength(10);
    expect(new Set(received.map((r) => r.headers["webhook-id"])).size).toBe(10);
  });

  it("a worker that dies holding a lease loses nothing: the message goes out once the lease runs out", async () => {
    script = [200];
    const { outbox, message, worker } = world();
    // the dead instance claimed and never completed
    const orphan = await outbox.claimDue(Date.now(), 10, 60_000);
    expect(orphan).toHaveLength(1);
    expect(await worker.runOnce()).toBe(0);
    at(59_999);
    expect(await worker.runOnce()).toBe(0);
    at(60_000);
    expect(await worker.runOnce()).toBe(1);
    expect(received).toHaveLength(1);
    expect(outbox.messages.get(message.id)?.status).toBe("succeeded");
    // the dead claim's late completion cannot overwrite the newer state
    const stale = await outbox.completeAttempt(orphan[0], {
      attempt: { ...outbox.attemptsOf(message.id)[0], statusCode: 500, succeeded: false },
      message: { status: "pending", nextAttemptAt: 0, scheduleStep: 1 },
      endpoint: { kind: "failed", at: 0 },
    });
    expect(stale).toBe(false);
    expect(outbox.messages.get(message.id)?.status).toBe("succeeded");
  });

  it("start/stop polls and drains", async () => {
    script = [200];
    const { outbox, message, worker } = world();
    worker.start(20);
    for (let i = 0; i < 100 && outbox.messages.get(message.id)?.status !== "succeeded"; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();
    expect(outbox.messages.get(message.id)?.status).toBe("succeeded");
    expect(received).toHaveLength(1);
  });

  it("a message that cannot be signed is reported and does not hold up the others", async () => {
    script = [200];
    const { outbox } = world();
    const broken = outbox.addEndpoint({
      id: "ep_broken",
      url: `${baseUrl}/broken`,
      secrets: { current: "not-a-secret", previous: null, previousExpiresAt: null },
    });
    const m = buildMessage("webhook.test", { account_id: "acc_1", endpoint_id: broken.id }, Date.now());
    outbox.enqueue({ id: m.id, endpointId: broken.id, body: m.body }, Date.now());
    const errors: unknown[] = [];
    const worker = new DeliveryWorker({ outbox, send: sender.send, onError: (e) => errors.push(e) });
    expect(await worker.runOnce()).toBe(2);
    expect(received).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/secret/);
    expect(outbox.messages.get(m.id)?.status).toBe("pending");
  });

  it("refuses a lease shorter than twice the timeout", () => {
    expect(
      () => new DeliveryWorker({ outbox: new MemoryOutbox(), send: sender.send, leaseMs: 20_000 }),
    ).toThrow(/leaseMs/);
  });
});
