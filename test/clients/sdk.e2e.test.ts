import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventOutcome,
  readSpool,
  TallyClient,
  TallyError,
  TallyQueueFullError,
} from "../../packages/client/src/index.ts";
import { call, freePort, REPO_ROOT, type ServerProcess, startServer } from "../support/server-process.ts";
import { createWorld, faultProxy, storedUsage } from "./support.ts";

/** The SDK against a real server process, with a misbehaving proxy in front where a test needs one. */

const fastRetry = { baseDelayMs: 10, maxDelayMs: 100 };
const CHILD = join(REPO_ROOT, "test/clients/fixtures/sdk-child.ts");

describe("@tally/client against a real server", { timeout: 240_000 }, () => {
  let server: ServerProcess;
  let dir: string;
  beforeAll(async () => {
    server = await startServer({ timeoutMs: 120_000 });
    dir = mkdtempSync(join(tmpdir(), "tally-sdk-"));
  }, 150_000);
  afterAll(async () => {
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("500, 500, then a pass: the event is stored once, sent three times with the same id", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n < 2 ? { kind: "answer", status: 500, body: { error: { message: "boom" } } } : { kind: "pass" },
    );
    try {
      const client = new TallyClient({ url: proxy.url, key: world.key, retry: fastRetry });
      const id = client.record({ model_id: world.modelId, quantity: 3 });
      const outcomes = await client.flush();
      expect(outcomes).toEqual([{ id, status: "accepted", usageId: expect.any(String) }]);
      expect(proxy.bodies.length).toBe(3);
      const sentIds = proxy.bodies.map((b) => (JSON.parse(b) as { events: { id: string }[] }).events[0].id);
      expect(sentIds).toEqual([id, id, id]);
      // the timestamp was fixed when recorded, not per attempt
      const stamps = new Set(proxy.bodies.map((b) => JSON.parse(b).events[0].timestamp));
      expect(stamps.size).toBe(1);
      expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 1, quantity: 3 });
    } finally {
      await proxy.close();
    }
  });

  it("the connection drops after the server committed: the retry is a duplicate, not a second event", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n === 0 ? { kind: "drop-after-commit" } : { kind: "pass" },
    );
    try {
      const client = new TallyClient({ url: proxy.url, key: world.key, retry: fastRetry });
      const a = client.record({ model_id: world.modelId, quantity: 2 });
      const b = client.record({ model_id: world.modelId, quantity: 5 });
      const outcomes = await client.flush();
      expect(outcomes.map((o) => [o.id, o.status])).toEqual([
        [a, "duplicate"],
        [b, "duplicate"],
      ]);
      expect(proxy.upstreamStatuses).toEqual([200, 200]);
      expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 2, quantity: 7 });
    } finally {
      await proxy.close();
    }
  });

  it("reportGenerations keeps its Idempotency-Key across 500s and a dropped connection: counted once", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n < 2
        ? { kind: "answer", status: 500, body: { detail: "Failed to process usage." } }
        : n === 2
          ? { kind: "drop-after-commit" }
          : { kind: "pass" },
    );
    try {
      const client = new TallyClient({ url: proxy.url, key: world.key, retry: fastRetry });
      const result = await client.reportGenerations(world.modelId, 4);
      expect(result.message).toBe("Usage recorded successfully");
      expect(proxy.idempotencyKeys.length).toBe(4);
      expect(new Set(proxy.idempotencyKeys)).toEqual(new Set([result.idempotencyKey]));
      expect(proxy.upstreamStatuses).toEqual([200, 200]);
      expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 1, quantity: 4 });
      // a refusal is thrown with the server's message, and not retried
      await expect(client.reportGenerations("no-such-model", 1)).rejects.toMatchObject({
        name: "TallyError",
        status: 400,
        message: "Model slug no-such-model is not supported for usage reporting",
      });
    } finally {
      await proxy.close();
    }
  });

  it("a 429 with Retry-After: 1 waits at least a second before the retry", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n === 0 ? { kind: "answer", status: 429, headers: { "retry-after": "1" } } : { kind: "pass" },
    );
    try {
      const client = new TallyClient({ url: proxy.url, key: world.key, retry: fastRetry });
      client.record({ model_id: world.modelId, quantity: 1 });
      const started = performance.now();
      const [outcome] = await client.flush();
      // a 1 s wait measured on the monotonic clock, allowing for timer rounding
      expect(performance.now() - started).toBeGreaterThanOrEqual(995);
      expect(outcome.status).toBe("accepted");
      expect(proxy.bodies.length).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it("flush() names each event's outcome: accepted, duplicate, rejected with the server's reason", async () => {
    const world = await createWorld(server);
    const seen: EventOutcome[] = [];
    const client = new TallyClient({
      url: server.url,
      key: world.key,
      batchSize: 2,
      onOutcomes: (o) => seen.push(...o),
    });
    const first = client.record({ model_id: world.modelId, quantity: 1, id: "fixed-1" });
    await client.flush();
    const again = client.record({ model_id: world.modelId, quantity: 1, id: "fixed-1" });
    const bad = client.record({ model_id: "no-such-model", quantity: 1 });
    const negative = client.record({ model_id: world.modelId, quantity: -1 });
    const fine = client.record({ model_id: world.modelId, quantity: "0.5" });
    const outcomes = await client.flush();
    expect(first).toBe("fixed-1");
    expect(outcomes.map((o) => [o.id, o.status])).toEqual([
      [again, "duplicate"],
      [bad, "rejected"],
      [negative, "rejected"],
      [fine, "accepted"],
    ]);
    const reasons = outcomes.filter((o) => o.status === "rejected").map((o) => o.error);
    expect(reasons[0]).toContain("unknown model no-such-model");
    expect(reasons[1]).toMatch(/quantity/);
    expect(seen.length).toBe(5);
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 2, quantity: 1.5 });
  });

  it("typed reads: key statistics, workspace usage, the usage log, invoices", async () => {
    const world = await createWorld(server);
    const client = new TallyClient({ url: server.url, key: world.key });
    client.record({ model_id: world.modelId, quantity: 10, timestamp: "2026-01-15T10:00:00Z" });
    await client.flush();
    const stats = await client.keyStatistics(["model_specific_usage", "account_information"]);
    expect(stats.account_information?.username).toBe("inference");
    expect(stats.model_specific_usage?.[world.modelId]).toMatchObject({ requests: 1, quantity: 10 });
    const usage = await client.workspaceUsage({
      start: "2026-01-15",
      end: "2026-01-16",
      timezone: "UTC",
      timeframe: "day",
      expand: ["time_series", "summary"],
    });
    expect(usage.summary).toEqual([
      {
        endpoint_id: world.modelId,
        unit: "image",
        quantity: 10,
        unit_price: 0.0043,
        cost: 0.043,
        currency: "USD",
      },
    ]);
    expect(usage.time_series?.map((b) => b.bucket)).toEqual(["2026-01-15T00:00:00+00:00"]);
    const log = await client.usageLog({ limit: 5 });
    expect(log.map((r) => [r.api_name, r.units_used])).toEqual([[world.modelId, 10]]);
    await expect(client.keyStatistics(["nope" as never])).rejects.toBeInstanceOf(TallyError);

    // invoices: January 2026 closed by the operator, read with the account's admin key
    const closed = await call(server, "POST", "/v1/invoices/close", {
      key: server.adminKey,
      body: { period: "2026-01", account_id: world.accountId },
    });
    expect(closed.status, closed.text).toBe(200);
    const [listed] = await client.invoices(world.accountId);
    expect(listed).toMatchObject({ status: "finalized", currency: "USD", total: 0.04, subtotal: 0.043 });
    expect(listed.lines.map((l) => [l.model_id, l.quantity, l.amount, l.events])).toEqual([
      [world.modelId, 10, 0.043, 1],
    ]);
    expect(await client.invoice(listed.id)).toEqual(listed);
    const csv = await client.invoiceCsv(listed.id);
    expect(csv).toBe(
      (await call(server, "GET", `/v1/invoices/${listed.id}.csv`, { key: server.adminKey })).text,
    );
    expect((await client.upcomingInvoice(world.accountId)).status).toBe("draft");
    await expect(client.invoice("no-such-invoice")).rejects.toBeInstanceOf(TallyError);
  });

  it("the queue is bounded: record() refuses the event past maxQueueSize, and keeps the rest", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const client = new TallyClient({ url: closed, key: "k", maxQueueSize: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) client.record({ model_id: "m", quantity: 1 });
    expect(() => client.record({ model_id: "m", quantity: 1 })).toThrow(TallyQueueFullError);
    expect(client.pending).toBe(3);
    const result = await client.shutdown({ timeoutMs: 200 });
    expect(result.undelivered.length).toBe(3);
    expect(() => client.record({ model_id: "m", quantity: 1 })).toThrow(/shut down/);
  });

  it("timers do not keep a process alive: a process with events queued for a dead server exits by itself", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    // were a timer ref'd, the child would retry forever and execFile would kill it at the timeout
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--import",
        "tsx",
        CHILD,
        closed,
        "k",
        join(dir, "unused.jsonl"),
        join(dir, "ids-exit.json"),
        "5",
        "exit",
      ],
      { cwd: REPO_ROOT, timeout: 120_000 },
    );
    expect(stdout.trim()).toBe("ready");
  });

  it("SIGTERM with 1,000 events queued and the server gone: each is delivered or spooled; the next start sends the spool once", async () => {
    const world = await createWorld(server);
    // the server takes the first two batches, then is "down" (503 to everything)
    const proxy = await faultProxy(server.url, (n) =>
      n < 2 ? { kind: "pass" } : { kind: "answer", status: 503, body: { error: { message: "down" } } },
    );
    const spool = join(dir, "spool.jsonl");
    const idsFile = join(dir, "ids.json");
    try {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", CHILD, proxy.url, world.key, spool, idsFile, "1000", "sigterm"],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      while (!out.includes("ready")) await new Promise((r) => setTimeout(r, 50));
      // let the first batches through and the rest fail a few times
      while (proxy.bodies.length < 4) await new Promise((r) => setTimeout(r, 20));
      child.kill("SIGTERM");
      expect(await exited, out).toBe(0);
    } finally {
      await proxy.close();
    }

    const recorded = JSON.parse(readFileSync(idsFile, "utf8")) as string[];
    expect(new Set(recorded).size).toBe(1000);
    const spooled = readSpool(spool).map((e) => e.id);
    expect(new Set(spooled).size).toBe(spooled.length);
    for (const id of spooled) expect(recorded).toContain(id);
    const delivered = (await storedUsage(server, world.key, world.modelId)).requests;
    expect(delivered).toBe(200);
    expect(delivered + spooled.length).toBe(1000);

    // the next start sends the spool, and removes it once every event has its answer
    const next = new TallyClient({ url: server.url, key: world.key, spoolPath: spool });
    expect(next.pending).toBe(800);
    const outcomes = await next.flush();
    expect(outcomes.filter((o) => o.status === "accepted").length).toBe(800);
    expect((await storedUsage(server, world.key, world.modelId)).requests).toBe(1000);
    expect(existsSync(spool)).toBe(false);
    await next.shutdown();

    // and a start after that has nothing left to send
    const third = new TallyClient({ url: server.url, key: world.key, spoolPath: spool });
    expect(third.pending).toBe(0);
    await third.shutdown();
    expect((await storedUsage(server, world.key, world.modelId)).requests).toBe(1000);
  });
});
