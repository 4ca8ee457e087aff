import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { v7 as uuidv7 } from "uuid";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Dec, ONE, parseDec } from "../../src/domain/decimal.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { bucketsBetween, DAY_MS, MINUTE_MS } from "../../src/domain/time.ts";
import { QueryService, type UsageLine } from "../../src/query/usage-query.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import type { AuditEntry, InvoiceRecord, Store, UsageEvent } from "../../src/store/store.ts";
import { usageEvent } from "../support/events.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";

/**
 * The store contract: SQLite and PostgreSQL behave the same. Every expected total here is
 * computed by the test from the events it wrote, never read back from the store.
 */

const T = Date.parse("2025-06-15T12:00:00Z");
const d = (text: string): Dec => parseDec(text);

function event(accountId: string, eventId: string, o: Partial<UsageEvent> = {}): UsageEvent {
  return usageEvent({
    accountId,
    eventId,
    ts: T,
    modelId: "flux-1-dev",
    unitPrice: d("0.025"),
    cost: d("0.025"),
    createdAt: T,
    updatedAt: T,
    ...o,
  });
}

async function newAccount(store: Store, name = "Acme"): Promise<string> {
  const id = randomUUID();
  await store.createAccount({ id, name, isEnabled: true, planId: null, createdAt: T });
  return id;
}

interface Sum {
  requests: number;
  quantity: Dec;
  cost: Dec;
  tokensPrompt: number;
  tokensCompletion: number;
}

/** The independent reference: sums of live events grouped like a usage line. */
function expectedLines(
  events: Iterable<UsageEvent>,
  family: "account" | "key" = "account",
): Map<string, Sum> {
  const out = new Map<string, Sum>();
  for (const e of events) {
    if (!e.statusActive) continue;
    const k = [
      e.modelId,
      e.unit,
      e.unitPrice,
      e.currency,
      e.kind,
      family === "key" ? (e.keyId ?? "") : "",
      family === "key" ? (e.userId ?? "") : "",
    ].join("|");
    const s = out.get(k) ?? { requests: 0, quantity: 0n, cost: 0n, tokensPrompt: 0, tokensCompletion: 0 };
    s.requests += 1;
    s.quantity += e.quantity;
    s.cost += e.cost;
    s.tokensPrompt += e.tokensPrompt;
    s.tokensCompletion += e.tokensCompletion;
    out.set(k, s);
  }
  return out;
}

function linesAsMap(lines: UsageLine[]): Map<string, Sum> {
  return new Map(
    lines.map((l) => [
      [l.modelId, l.unit, l.unitPrice, l.currency, l.kind, l.keyId, l.userId].join("|"),
      {
        requests: l.requests,
        quantity: l.quantity,
        cost: l.cost,
        tokensPrompt: l.tokensPrompt,
        tokensCompletion: l.tokensCompletion,
      },
    ]),
  );
}

describe.each(storeKinds())("store contract ($name)", (kind) => {
  let ts: TestStore;
  let store: Store;
  let query: QueryService;
  beforeEach(async () => {
    ts = await kind.create();
    store = ts.store;
    query = new QueryService(store);
  });
  afterEach(async () => ts.cleanup());

  describe("entities", () => {
    it("creates and reads accounts, and sets the plan", async () => {
      const id = await newAccount(store, "Acme");
      expect(await store.getAccount(id)).toEqual({
        id,
        name: "Acme",
        isEnabled: true,
        planId: null,
        createdAt: T,
        billingTimezone: "UTC",
        billingMode: "postpaid",
      });
      expect(await store.getAccount("missing")).toBeNull();
      await store.upsertPlan({
        id: "pro",
        requestsPerMinute: 60,
        requestsPerDay: null,
        validityDays: -999999,
        modelWhitelist: null,
        modelBlacklist: null,
        included: {},
        createdAt: T,
        updatedAt: T,
      });
      await store.setAccountPlan(id, "pro");
      expect((await store.getAccount(id))?.planId).toBe("pro");
      await store.setAccountPlan(id, null);
      expect((await store.getAccount(id))?.planId).toBeNull();
    });

    it("creates users, unique by username within an account", async () => {
      const a = await newAccount(store);
      const b = await newAccount(store);
      const user = {
        id: randomUUID(),
        accountId: a,
        username: "alice",
        role: "admin" as const,
        nodeId: "n1",
        createdAt: T,
      };
      await store.createUser(user);
      expect(await store.getUser(user.id)).toEqual(user);
      expect(await store.getUser("missing")).toBeNull();
      const dup = { ...user, id: randomUUID() };
      const err = await store.createUser(dup).catch((e: unknown) => e);
      expect(err instanceof DomainError && err.code === "CONFLICT").toBe(true);
      // the same username in another account is fine
      await store.createUser({ ...user, id: randomUUID(), accountId: b, nodeId: null, role: "member" });
    });

    it("creates, finds, lists, touches and revokes keys", async () => {
      const a = await newAccount(store);
      const userId = randomUUID();
      await store.createUser({
        id: userId,
        accountId: a,
        username: "bob",
        role: "member",
        nodeId: null,
        createdAt: T,
      });
      const key = {
        id: randomUUID(),
        userId,
        accountId: a,
        isRoot: false,
        label: "Key 1",
        prefix: "tly_abcdef",
        hash: "a".repeat(64),
        createdAt: T,
        lastUsedAt: null,
        revokedAt: null,
        previousHash: null,
        previousExpiresAt: null,
      };
      const key2 = { ...key, id: randomUUID(), label: "Key 2", hash: "b".repeat(64), createdAt: T + 1 };
      await store.createKey(key);
      await store.createKey(key2);
      expect(await store.getKey(key.id)).toEqual(key);
      expect(await store.findKeyByHash("a".repeat(64))).toEqual(key);
      expect(await store.findKeyByHash("c".repeat(64))).toBeNull();
      expect((await store.listKeys(userId)).map((k) => k.label)).toEqual(["Key 1", "Key 2"]);
      expect(await store.hasRootKey()).toBe(false);

      await store.touchKeys(new Map([[key.id, T + 5000]]));
      // last use only moves forward
      await store.touchKeys(new Map([[key.id, T + 1000]]));
      expect((await store.getKey(key.id))?.lastUsedAt).toBe(T + 5000);

      await store.revokeKey(key.id, T + 9000);
      await store.revokeKey(key.id, T + 99_000);
      expect((await store.getKey(key.id))?.revokedAt).toBe(T + 9000);
      expect((await store.getKey(key2.id))?.revokedAt).toBeNull();

      const root = {
        ...key,
        id: randomUUID(),
        userId: null,
        accountId: null,
        isRoot: true,
        hash: "d".repeat(64),
      };
      await store.createKey(root);
      expect(await store.hasRootKey()).toBe(true);
      await store.revokeKey(root.id, T);
      expect(await store.hasRootKey()).toBe(false);
    });

    it("upserts models and keeps price versions in order", async () => {
      const m = {
        id: "flux-1-dev",
        unit: "image",
        kind: "image",
        reportingEnabled: true,
        createdAt: T,
        updatedAt: T,
      };
      expect(
        await store.upsertModel(m, {
          modelId: m.id,
          effectiveFrom: T,
          unitPrice: d("0.025"),
          currency: "USD",
        }),
      ).toBe("created");
      expect(
        await store.upsertModel(
          { ...m, reportingEnabled: false, updatedAt: T + 1 },
          { modelId: m.id, effectiveFrom: T - DAY_MS, unitPrice: d("0.000000000001"), currency: "EUR" },
        ),
      ).toBe("updated");
      expect(await store.upsertModel({ ...m, unit: "megapixel", updatedAt: T + 2 }, null)).toBe("updated");
      expect(await store.getModel(m.id)).toEqual({
        ...m,
        unit: "megapixel",
        reportingEnabled: true,
        updatedAt: T + 2,
      });
      expect(await store.getModel("nope")).toBeNull();
      expect(await store.listPrices(m.id)).toEqual([
        { modelId: m.id, effectiveFrom: T - DAY_MS, unitPrice: d("0.000000000001"), currency: "EUR" },
        { modelId: m.id, effectiveFrom: T, unitPrice: d("0.025"), currency: "USD" },
      ]);
      // a version at the same instant replaces the price
      await store.upsertModel(m, {
        modelId: m.id,
        effectiveFrom: T,
        unitPrice: d("999999.999999999999"),
        currency: "USD",
      });
      expect((await store.listPrices(m.id)).map((p) => p.unitPrice)).toEqual([
        d("0.000000000001"),
        d("999999.999999999999"),
      ]);
      await store.upsertModel({ ...m, id: "a-model" }, null);
      expect((await store.listModels()).map((x) => x.id)).toEqual(["a-model", "flux-1-dev"]);
      expect(await store.listPrices("a-model")).toEqual([]);
      expect((await store.listPrices()).length).toBe(2);
    });

    it("creates licenses and lists them by account and model", async () => {
      const a = await newAccount(store);
      const b = await newAccount(store);
      for (const id of ["m1", "m2"])
        await store.upsertModel(
          { id, unit: "image", kind: "image", reportingEnabled: true, createdAt: T, updatedAt: T },
          null,
        );
      const l1 = {
        id: randomUUID(),
        accountId: a,
        modelId: "m1",
        startsAt: T,
        endsAt: T + DAY_MS,
        createdAt: T,
      };
      const l2 = {
        id: randomUUID(),
        accountId: a,
        modelId: "m2",
        startsAt: T - DAY_MS,
        endsAt: null,
        createdAt: T,
      };
      const l3 = { id: randomUUID(), accountId: b, modelId: "m1", startsAt: T, endsAt: null, createdAt: T };
      for (const l of [l1, l2, l3]) await store.createLicense(l);
      expect(await store.listLicenses(a)).toEqual([l2, l1]);
      expect(await store.listLicenses(a, "m1")).toEqual([l1]);
      expect(await store.listLicenses(b)).toEqual([l3]);
      expect(await store.listLicenses(b, "m2")).toEqual([]);
    });

    it("upserts plans with exact included quantities and lists", async () => {
      const plan = {
        id: "pro",
        requestsPerMinute: 60,
        requestsPerDay: 10_000,
        validityDays: 30,
        modelWhitelist: ["m1", "m2"],
        modelBlacklist: null,
        included: { m1: d("1000.000001"), m2: d("0") },
        createdAt: T,
        updatedAt: T,
        billing: null as string | null,
      };
      expect(await store.upsertPlan(plan)).toBe("created");
      expect(await store.getPlan("pro")).toEqual(plan);
      const changed = {
        ...plan,
        requestsPerMinute: null,
        modelWhitelist: null,
        modelBlacklist: ["m3"],
        included: {},
        createdAt: T + 5,
        updatedAt: T + 10,
        billing: '{"currency":"EUR"}',
      };
      expect(await store.upsertPlan(changed)).toBe("updated");
      // created_at stays the first one
      expect(await store.getPlan("pro")).toEqual({ ...changed, createdAt: T });
      expect(await store.getPlan("missing")).toBeNull();
    });

    it("keeps subscription history and makes the latest the account's plan", async () => {
      const a = await newAccount(store);
      for (const id of ["basic", "pro"]) {
        await store.upsertPlan({
          id,
          requestsPerMinute: null,
          requestsPerDay: null,
          validityDays: 30,
          modelWhitelist: null,
          modelBlacklist: null,
          included: {},
          createdAt: T,
          updatedAt: T,
        });
      }
      const s1 = {
        id: randomUUID(),
        accountId: a,
        planId: "basic",
        activatedAt: T,
        endsAt: null,
        createdAt: T,
      };
      const s2 = {
        id: randomUUID(),
        accountId: a,
        planId: "pro",
        activatedAt: T + DAY_MS,
        endsAt: null,
        createdAt: T + DAY_MS,
      };
      await store.createSubscription(s1);
      expect((await store.getAccount(a))?.planId).toBe("basic");
      await store.createSubscription(s2);
      expect((await store.getAccount(a))?.planId).toBe("pro");
      expect(await store.listSubscriptions(a)).toEqual([s1, s2]);
    });

    it("stores payments exactly", async () => {
      const a = await newAccount(store);
      const p1 = {
        id: randomUUID(),
        accountId: a,
        amountUsd: d("999999999.999999999999999999"),
        paidAt: T,
        reference: "wire-1",
        createdAt: T,
        refundOf: null,
      };
      const p2 = {
        id: randomUUID(),
        accountId: a,
        amountUsd: d("0.000000000000000001"),
        paidAt: T - DAY_MS,
        reference: null,
        createdAt: T,
        refundOf: null,
      };
      await store.createPayment(p1);
      await store.createPayment(p2);
      expect(await store.listPayments(a)).toEqual([p2, p1]);
      expect(await store.listPayments(await newAccount(store))).toEqual([]);
    });
  });

  describe("operator lists and changes", () => {
    const audit = (o: Partial<AuditEntry> = {}): AuditEntry => ({
      id: randomUUID(),
      accountId: "acct",
      usageId: "",
      action: "update",
      actorKeyId: null,
      actorUserId: null,
      at: T,
      before: null,
      after: null,
      ...o,
    });

    it("pages in (created_at, id) order from a cursor, with has_more, filtered by name prefix", async () => {
      const made: { id: string; name: string; createdAt: number }[] = [];
      const names = ["a%b", "a_c", "Ab", "ab", "été", "étage", "x"];
      for (let i = 0; i < 21; i++) {
        const a = { id: randomUUID(), name: names[i % names.length], createdAt: T + Math.floor(i / 4) };
        made.push(a);
        await store.createAccount({ ...a, isEnabled: true, planId: null });
      }
      const order = [...made].sort((x, y) => x.createdAt - y.createdAt || (x.id < y.id ? -1 : 1));
      const all: string[] = [];
      let after: { createdAt: number; id: string } | null = null;
      for (;;) {
        const page = await store.listAccounts({ limit: 5, after });
        all.push(...page.data.map((a) => a.id));
        if (!page.hasMore) break;
        const last = page.data.at(-1)!;
        after = { createdAt: last.createdAt, id: last.id };
      }
      expect(all).toEqual(order.map((a) => a.id));
      for (const prefix of ["a%", "a_", "ab", "A", "ét", "été", ""]) {
        const page = await store.listAccounts({ limit: 100, after: null, namePrefix: prefix });
        expect(page.data.map((a) => a.id)).toEqual(
          order.filter((a) => a.name.startsWith(prefix)).map((a) => a.id),
        );
      }
      const exact = await store.listAccounts({ limit: 21, after: null });
      expect(exact.hasMore).toBe(false);
    });

    it("lists an account's users, keys, licenses, subscriptions and payments, each its own", async () => {
      const a = await newAccount(store);
      const b2 = await newAccount(store, "Other");
      const u = {
        id: randomUUID(),
        accountId: a,
        username: "u",
        role: "admin" as const,
        nodeId: null,
        createdAt: T,
      };
      await store.createUser(u);
      await store.createUser({ ...u, id: randomUUID(), accountId: b2 });
      const key = {
        id: randomUUID(),
        userId: u.id,
        accountId: a,
        isRoot: false,
        label: "k",
        prefix: "tly_x",
        hash: "d".repeat(64),
        createdAt: T,
        lastUsedAt: null,
        revokedAt: null,
      };
      await store.createKey(key);
      const first = { limit: 10, after: null };
      expect((await store.listUsers(a, first)).data.map((x) => x.id)).toEqual([u.id]);
      expect((await store.listKeyPage({ accountId: a }, first)).data.map((x) => x.id)).toEqual([key.id]);
      expect((await store.listKeyPage({ userId: u.id }, first)).data.map((x) => x.id)).toEqual([key.id]);
      expect((await store.listKeyPage({ accountId: b2 }, first)).data).toEqual([]);
      const pay = {
        id: randomUUID(),
        accountId: a,
        amountUsd: d("10"),
        paidAt: T,
        reference: null,
        createdAt: T,
      };
      await store.createPayment(pay);
      const refund = { ...pay, id: randomUUID(), amountUsd: d("-2.5"), createdAt: T + 1, refundOf: pay.id };
      expect(
        await store.createRefund(
          refund,
          audit({ accountId: a, action: "refund", resourceType: "payment", resourceId: pay.id }),
        ),
      ).toEqual({ written: true });
      expect((await store.listPaymentPage(a, first)).data.map((x) => x.amountUsd)).toEqual([
        d("10"),
        d("-2.5"),
      ]);
      expect((await store.refundsOf(pay.id)).map((x) => x.id)).toEqual([refund.id]);
      expect((await store.getPayment(refund.id))?.refundOf).toBe(pay.id);
      expect((await store.listPaymentPage(b2, first)).data).toEqual([]);
      // more than is left (7.5) is refused and writes nothing, neither refund nor audit entry
      const tooMuch = { ...pay, id: randomUUID(), amountUsd: d("-7.6"), createdAt: T + 2, refundOf: pay.id };
      const refusedAudit = audit({
        accountId: a,
        action: "refund",
        resourceType: "payment",
        resourceId: pay.id,
      });
      expect(await store.createRefund(tooMuch, refusedAudit)).toEqual({ written: false, left: d("7.5") });
      expect((await store.refundsOf(pay.id)).map((x) => x.id)).toEqual([refund.id]);
      expect((await store.findAudit({ accountId: a, limit: 10 })).data.map((e) => e.id)).not.toContain(
        refusedAudit.id,
      );
    });

    it("concurrent refunds of one payment never exceed it together", async () => {
      const a = await newAccount(store);
      const pay = {
        id: randomUUID(),
        accountId: a,
        amountUsd: d("10"),
        paidAt: T,
        reference: null,
        createdAt: T,
      };
      await store.createPayment(pay);
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.createRefund(
            { ...pay, id: randomUUID(), amountUsd: d("-1.5"), createdAt: T + 1 + i, refundOf: pay.id },
            audit({ accountId: a, action: "refund", resourceType: "payment", resourceId: pay.id }),
          ),
        ),
      );
      // 6 x 1.5 = 9 fit in 10; a seventh would not
      expect(outcomes.filter((o) => o.written)).toHaveLength(6);
      const refunds = await store.refundsOf(pay.id);
      expect(refunds).toHaveLength(6);
      expect(refunds.reduce((s, r) => s + r.amountUsd, 0n)).toBe(d("-9"));
    });

    it("a rotated key is found by its previous digest too; each change writes its audit entry", async () => {
      const a = await newAccount(store);
      const userId = randomUUID();
      await store.createUser({
        id: userId,
        accountId: a,
        username: "u",
        role: "member",
        nodeId: null,
        createdAt: T,
      });
      const key = {
        id: randomUUID(),
        userId,
        accountId: a,
        isRoot: false,
        label: "k",
        prefix: "tly_old",
        hash: "e".repeat(64),
        createdAt: T,
        lastUsedAt: null,
        revokedAt: null,
      };
      await store.createKey(key);
      expect((await store.findKeyByHash("e".repeat(64)))?.id).toBe(key.id);
      const rotated = {
        ...key,
        prefix: "tly_new",
        hash: "f".repeat(64),
        previousHash: key.hash,
        previousExpiresAt: T + 60_000,
      };
      await store.updateKey(
        rotated,
        audit({ accountId: a, action: "rotate", resourceType: "key", resourceId: key.id }),
      );
      expect(await store.findKeyByHash("f".repeat(64))).toEqual(rotated);
      expect(await store.findKeyByHash("e".repeat(64))).toEqual(rotated);
      await store.updateKey(
        { ...rotated, previousHash: null, previousExpiresAt: null },
        audit({ accountId: a, resourceType: "key", resourceId: key.id }),
      );
      expect(await store.findKeyByHash("e".repeat(64))).toBeNull();

      const account = (await store.getAccount(a))!;
      await store.updateAccount(
        { ...account, isEnabled: false, billingTimezone: "Asia/Tokyo" },
        audit({ accountId: a, resourceType: "account", resourceId: a }),
      );
      expect(await store.getAccount(a)).toMatchObject({ isEnabled: false, billingTimezone: "Asia/Tokyo" });
      const entries = (await store.findAudit({ accountId: a, limit: 10 })).data;
      expect(entries).toHaveLength(3);
      expect((await store.findAudit({ accountId: a, resourceType: "key", limit: 10 })).data).toHaveLength(2);
      expect(
        (await store.findAudit({ accountId: a, resourceId: a, limit: 10 })).data.map((e) => e.resourceType),
      ).toEqual(["account"]);
      expect(await store.findAudit({ accountId: b(a), limit: 10 })).toEqual({ data: [], hasMore: false });
      // paged newest first, (at, id) descending: entries at one instant are ordered by id
      const walked: string[] = [];
      let before: { at: number; id: string } | null = null;
      for (;;) {
        const page = await store.findAudit({ accountId: a, limit: 1, before });
        walked.push(...page.data.map((e) => e.id));
        if (!page.hasMore) break;
        const last = page.data[0];
        before = { at: last.at, id: last.id };
      }
      expect(walked).toEqual(entries.map((e) => e.id));
      expect((await store.getAuditEntry(walked[0]))?.id).toBe(walked[0]);
      expect(await store.getAuditEntry("nope")).toBeNull();
    });
  });

  describe("gateway: upstreams, routes, budgets", () => {
    it("creates upstreams once, lists them in creation order, routes models to them", async () => {
      const dev = {
        id: "dev",
        baseUrl: "http://127.0.0.1:8790/v1",
        apiKeyEnv: "DEV_KEY",
        timeoutMs: 30_000,
        createdAt: T,
      };
      const other = {
        id: "a-other",
        baseUrl: "https://example.test/v1",
        apiKeyEnv: null,
        timeoutMs: 5,
        createdAt: T + 1,
      };
      await store.createUpstream(dev);
      await store.createUpstream(other);
      await expect(store.createUpstream({ ...dev, baseUrl: "http://x" })).rejects.toMatchObject({
        code: "CONFLICT",
      });
      expect(await store.getUpstream("dev")).toEqual(dev);
      expect(await store.getUpstream("missing")).toBeNull();
      expect(await store.listUpstreams()).toEqual([dev, other]);
      const m = {
        id: "chat",
        unit: "token",
        kind: "chat",
        reportingEnabled: true,
        createdAt: T,
        updatedAt: T,
      };
      await store.upsertModel({ ...m, upstreamId: "dev", upstreamModel: "dev-chat" }, null);
      expect(await store.getModel("chat")).toEqual({ ...m, upstreamId: "dev", upstreamModel: "dev-chat" });
      await store.upsertModel({ ...m, upstreamId: null, upstreamModel: null }, null);
      expect(await store.getModel("chat")).toEqual(m);
    });

    it("sets and clears an account's budget exactly", async () => {
      const id = await newAccount(store, "Acme");
      await store.setAccountBudget(id, { monthlyUsd: parseDec("12.000000000123456789"), mode: "soft" });
      expect((await store.getAccount(id))?.budget).toEqual({
        monthlyUsd: parseDec("12.000000000123456789"),
        mode: "soft",
      });
      await store.setAccountBudget(id, null);
      expect((await store.getAccount(id))?.budget).toBeUndefined();
    });
  });

  describe("appendEvents idempotency", () => {
    it("stores an id once within one batch; the duplicate names the stored usage_id", async () => {
      const a = await newAccount(store);
      const first = event(a, "e1", { quantity: d("2"), cost: d("0.05") });
      const again = event(a, "e1", { quantity: d("7"), cost: d("0.175") });
      const other = event(a, "e2");
      const outcomes = await store.appendEvents([first, again, other]);
      expect(outcomes).toEqual([
        { status: "inserted", usageId: first.usageId },
        { status: "duplicate", usageId: first.usageId },
        { status: "inserted", usageId: other.usageId },
      ]);
      expect(await store.getEvent(a, first.usageId)).toEqual(first);
      expect(await store.getEvent(a, again.usageId)).toBeNull();
      expect(await store.verifyRollups()).toEqual([]);
      const [line] = await query.totals({ accountId: a });
      expect(line.requests).toBe(2);
      expect(line.quantity).toBe(d("3"));
      expect(line.cost).toBe(d("0.075"));
    });

    it("stores an id once across batches, even 40 days later, and per account", async () => {
      const a = await newAccount(store);
      const b = await newAccount(store);
      const first = event(a, "retry-me");
      expect(await store.appendEvents([first])).toEqual([{ status: "inserted", usageId: first.usageId }]);
      const retry = event(a, "retry-me", { ts: T + 40 * DAY_MS });
      expect(await store.appendEvents([event(a, "new-1"), retry])).toEqual([
        { status: "inserted", usageId: expect.any(String) },
        { status: "duplicate", usageId: first.usageId },
      ]);
      // the same id in another account is another event
      const inB = event(b, "retry-me");
      expect(await store.appendEvents([inB])).toEqual([{ status: "inserted", usageId: inB.usageId }]);
      expect(
        (await store.listEvents({ accountId: a, skip: 0, limit: 100 })).map((e) => e.eventId).sort(),
      ).toEqual(["new-1", "retry-me"]);
      expect((await query.totals({ accountId: a }))[0].requests).toBe(2);
      expect((await query.totals({ accountId: b }))[0].requests).toBe(1);
      expect(await store.verifyRollups()).toEqual([]);
    });

    it("remembers ids that arrived 36 days before, after the store is reopened", async () => {
      const a = await newAccount(store);
      const first = event(a, "old", { createdAt: T, updatedAt: T });
      await store.appendEvents([first]);
      const later = T + 36 * DAY_MS;
      await store.appendEvents([event(a, "recent", { ts: later, createdAt: later, updatedAt: later })]);
      // a fresh connection rebuilds whatever it keeps in memory from the database
      const reopened: Store =
        kind.name === "postgres"
          ? new PostgresStore(ts.env.DATABASE_URL, { max: 2 })
          : new SqliteStore(ts.env.TALLY_DB);
      try {
        const retry = event(a, "old", { ts: later, createdAt: later + 1, updatedAt: later + 1 });
        expect(await reopened.appendEvents([retry])).toEqual([
          { status: "duplicate", usageId: first.usageId },
        ]);
        expect(
          (await reopened.listEvents({ accountId: a, skip: 0, limit: 10 })).map((e) => e.eventId),
        ).toEqual(["recent", "old"]);
      } finally {
        await reopened.close();
      }
    });

    it("keeps a deleted event's id, so a late retry stays a duplicate", async () => {
      const a = await newAccount(store);
      const e = event(a, "gone");
      await store.appendEvents([e]);
      const audit = {
        id: randomUUID(),
        accountId: a,
        usageId: e.usageId,
        action: "delete" as const,
        actorKeyId: null,
        actorUserId: null,
        at: T + 1,
      };
      expect(await store.deleteEvent(a, e.usageId, audit)).toBe(true);
      expect(await store.deleteEvent(a, e.usageId, { ...audit, id: randomUUID() })).toBe(false);
      expect(await store.appendEvents([event(a, "gone")])).toEqual([
        { status: "duplicate", usageId: e.usageId },
      ]);
      expect(await query.totals({ accountId: a })).toEqual([]);
      expect(await store.verifyRollups()).toEqual([]);
    });
  });

  describe("events", () => {
    it("stores text with tabs, newlines, backslashes and \\N exactly (PostgreSQL COPYs appends)", async () => {
      const a = await newAccount(store);
      const odd = "tab\there\nnew line\r\\back\\slash \\N \\. ünï©ødé 🚀";
      const e = event(a, `id\t${odd}`, {
        apiName: odd,
        endpoint: "\\N",
        metadata: { note: odd, nested: { path: "C:\\tmp\\x", empty: "" } },
        apiKeyUsed: "\\.",
      });
      const [outcome] = await store.appendEvents([e]);
      expect(outcome.status).toBe("inserted");
      expect(await store.getEvent(a, e.usageId)).toEqual(e);
      // and the same id is still a duplicate
      const [again] = await store.appendEvents([{ ...e, usageId: uuidv7() }]);
      expect(again).toEqual({ status: "duplicate", usageId: e.usageId });
      // a large batch takes PostgreSQL's other path (COPY straight into the table): the same text survives it
      const batch = Array.from({ length: 150 }, (_, i) =>
        event(a, `batch\t${i}\n${odd}`, { apiName: odd, metadata: { i, odd } }),
      );
      const outcomes = await store.appendEvents(batch);
      expect(outcomes.every((o) => o.status === "inserted")).toBe(true);
      for (const i of [0, 77, 149]) expect(await store.getEvent(a, batch[i].usageId)).toEqual(batch[i]);
      // a large batch holding stored ids (there, the COPY fails on them and the batch is inserted again,
      // skipping them): the new events go in once, the stored ones answer with their usage ids
      const more = Array.from({ length: 150 }, (_, i) => event(a, `more\t${i}\n${odd}`, { apiName: odd }));
      const mixed = await store.appendEvents([
        ...more,
        { ...e, usageId: uuidv7() },
        { ...batch[77], usageId: uuidv7() },
      ]);
      expect(mixed.filter((o) => o.status === "inserted")).toHaveLength(150);
      expect(mixed.slice(150)).toEqual([
        { status: "duplicate", usageId: e.usageId },
        { status: "duplicate", usageId: batch[77].usageId },
      ]);
      expect(await store.getEvent(a, more[149].usageId)).toEqual(more[149]);
      const [line] = await query.totals({ accountId: a });
      expect(line.requests).toBe(301);
      expect(await store.verifyRollups()).toEqual([]);
    });

    it("reads events only within their account and lists them newest first", async () => {
      const a = await newAccount(store);
      const b = await newAccount(store);
      const events = [0, 1, 2, 3, 4].map((i) =>
        event(a, `e${i}`, {
          ts: T + i * 1000,
          userId: i % 2 === 0 ? "u-even" : "u-odd",
          metadata: { i },
          tokensPrompt: i,
          tokensCompletion: 2 * i,
        }),
      );
      await store.appendEvents(events);
      expect(await store.getEvent(a, events[2].usageId)).toEqual(events[2]);
      expect(await store.getEvent(b, events[2].usageId)).toBeNull();
      expect(await store.findEventByUsageId(events[2].usageId)).toEqual(events[2]);
      expect((await store.listEvents({ accountId: a, skip: 0, limit: 2 })).map((e) => e.eventId)).toEqual([
        "e4",
        "e3",
      ]);
      expect((await store.listEvents({ accountId: a, skip: 2, limit: 10 })).map((e) => e.eventId)).toEqual([
        "e2",
        "e1",
        "e0",
      ]);
      expect(
        (await store.listEvents({ accountId: a, userId: "u-even", skip: 0, limit: 10 })).map(
          (e) => e.eventId,
        ),
      ).toEqual(["e4", "e2", "e0"]);
      expect(await store.listEvents({ accountId: b, skip: 0, limit: 10 })).toEqual([]);
    });

    it("corrects and deletes events with audit entries, moving the rollups", async () => {
      const a = await newAccount(store);
      const e = event(a, "c1", { quantity: d("4"), cost: d("0.1") });
      const keep = event(a, "c2", { ts: T + MINUTE_MS });
      await store.appendEvents([e, keep]);
      const audit = {
        id: randomUUID(),
        accountId: a,
        usageId: e.usageId,
        action: "update" as const,
        actorKeyId: "k",
        actorUserId: "u",
        at: T + 5,
      };
      const after = await store.updateEvent(a, e.usageId, { quantity: d("5"), cost: d("0.125") }, audit);
      expect(after).toEqual({ ...e, quantity: d("5"), cost: d("0.125"), updatedAt: T + 5 });
      expect(
        await store.updateEvent(
          "other-account",
          e.usageId,
          { quantity: d("1") },
          { ...audit, id: randomUUID() },
        ),
      ).toBeNull();
      let [line] = await query.totals({ accountId: a });
      expect([line.requests, line.quantity, line.cost]).toEqual([2, d("6"), d("0.15")]);

      await store.updateEvent(
        a,
        e.usageId,
        { statusActive: false },
        { ...audit, id: randomUUID(), at: T + 6 },
      );
      [line] = await query.totals({ accountId: a });
      expect([line.requests, line.quantity, line.cost]).toEqual([1, d("1"), d("0.025")]);

      const del = { ...audit, id: randomUUID(), usageId: keep.usageId, action: "delete" as const, at: T + 7 };
      expect(await store.deleteEvent(b(a), keep.usageId, del)).toBe(false);
      expect(await store.deleteEvent(a, keep.usageId, del)).toBe(true);
      expect(await query.totals({ accountId: a })).toEqual([]);
      expect(await store.getEvent(a, keep.usageId)).toBeNull();
      expect(await store.verifyRollups()).toEqual([]);

      const entries = await store.listAudit(a, { limit: 10 });
      expect(entries.map((x) => [x.action, x.at])).toEqual([
        ["delete", T + 7],
        ["update", T + 6],
        ["update", T + 5],
      ]);
      expect(entries[2].before).toMatchObject({ quantity: "4", cost: "0.1", status_active: true });
      expect(entries[2].after).toMatchObject({ quantity: "5", cost: "0.125" });
      expect(entries[0].after).toBeNull();
      expect((await store.listAudit(a, { usageId: keep.usageId, limit: 10 })).length).toBe(1);
    });
  });

  describe("invoices", () => {
    const invoice = (accountId: string, period: string, number: string | null): InvoiceRecord => ({
      id: randomUUID(),
      accountId,
      period,
      periodStart: Date.parse(`${period}-01T00:00:00Z`),
      periodEnd: Date.parse(`${period}-01T00:00:00Z`) + 30 * DAY_MS,
      timezone: "UTC",
      status: number ? "finalized" : "no_charge",
      number,
      currency: "USD",
      document: `{"period":"${period}"}`,
      pdf: Buffer.from([0x25, 0x50, 0x44, 0x46, 0, 255, 10]),
      coverage: "{}",
      issuedAt: T,
    });
    const conflict = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).code).toBe("CONFLICT");
    };

    it("keeps one invoice per account and period, and numbers gapless with the invoice", async () => {
      const a = await newAccount(store);
      const b2 = await newAccount(store);
      expect(await store.lastInvoiceNumber(2026)).toBe(0);
      const first = invoice(a, "2026-10", "TLY-2026-000001");
      await store.insertInvoice(first, { year: 2026, sequence: 1 });
      expect(await store.getInvoice(first.id)).toEqual(first);
      expect(await store.getInvoiceOfPeriod(a, "2026-10")).toEqual(first);
      expect(await store.lastInvoiceNumber(2026)).toBe(1);
      // the same period again: refused, and the number it tried to take stays free
      await conflict(
        store.insertInvoice(invoice(a, "2026-10", "TLY-2026-000002"), { year: 2026, sequence: 2 }),
      );
      expect(await store.lastInvoiceNumber(2026)).toBe(1);
      // a number another close took meanwhile: refused, nothing written
      await conflict(
        store.insertInvoice(invoice(b2, "2026-10", "TLY-2026-000001"), { year: 2026, sequence: 1 }),
      );
      expect(await store.getInvoiceOfPeriod(b2, "2026-10")).toBeNull();
      expect(await store.lastInvoiceNumber(2026)).toBe(1);
      // no number for a zero total; numbers run per year
      await store.insertInvoice(invoice(b2, "2026-10", null), null);
      await store.insertInvoice(invoice(b2, "2026-11", "TLY-2027-000001"), { year: 2027, sequence: 1 });
      expect(await store.lastInvoiceNumber(2027)).toBe(1);
      expect((await store.listInvoices(b2)).map((i) => i.period)).toEqual(["2026-10", "2026-11"]);
      expect(await store.voidInvoice(first.id)).toBe(true);
      expect(await store.voidInvoice(first.id)).toBe(false);
      expect((await store.getInvoice(first.id))?.status).toBe("void");
      expect(await store.getInvoice("missing")).toBeNull();
      expect((await store.listAccountIds()).sort()).toEqual([a, b2].sort());
    });

    it("inserts a batch of invoices with consecutive numbers all together, or none of it", async () => {
      const a = await newAccount(store);
      const b2 = await newAccount(store);
      const c = await newAccount(store);
      const item = (accountId: string, period: string, sequence: number | null) => ({
        record: invoice(accountId, period, sequence === null ? null : `TLY-2026-00000${sequence}`),
        numbered: sequence === null ? null : { year: 2026, sequence },
        messages: [],
      });
      const batch = [item(a, "2026-10", 1), item(b2, "2026-10", null), item(c, "2026-10", 2)];
      await store.insertInvoices(batch);
      expect(await store.lastInvoiceNumber(2026)).toBe(2);
      for (const i of batch) expect(await store.getInvoice(i.record.id)).toEqual(i.record);
      // the last one's period is closed already: nothing of the batch is written
      const refused = [item(a, "2026-11", 3), item(c, "2026-10", 4)];
      await conflict(store.insertInvoices(refused));
      expect(await store.getInvoiceOfPeriod(a, "2026-11")).toBeNull();
      expect(await store.lastInvoiceNumber(2026)).toBe(2);
      await store.insertInvoices([]);
    });

    it("stores the billing zone of an account", async () => {
      const a = await newAccount(store);
      await store.setBillingTimezone(a, "Asia/Kolkata");
      expect((await store.getAccount(a))?.billingTimezone).toBe("Asia/Kolkata");
    });
  });

  describe("rollups and aggregate", () => {
    it("skips token sums when asked (tokens: false) and changes nothing else", async () => {
      const a = await newAccount(store);
      await store.appendEvents(
        Array.from({ length: 30 }, (_, i) =>
          event(a, `t-${i}`, { ts: T - i * 97_000, tokensPrompt: i + 1, tokensCompletion: 2 * i }),
        ),
      );
      // an unaligned range: raw, minute, hour and day runs all contribute
      const range = { start: T - 40 * 97_000 + 13, end: T + 1 };
      const [all] = await query.totals({ accountId: a, range });
      const [lean] = await query.totals({ accountId: a, range, tokens: false });
      expect(all.tokensPrompt).toBe(465);
      expect(all.tokensCompletion).toBe(870);
      expect(lean.tokensPrompt + lean.tokensCompletion).toBeLessThan(all.tokensPrompt);
      expect({ ...lean, tokensPrompt: 0, tokensCompletion: 0 }).toEqual({
        ...all,
        tokensPrompt: 0,
        tokensCompletion: 0,
      });
    });

    it("sums 20,000 events of 0.0043 to exactly 86", async () => {
      const a = await newAccount(store);
      const price = d("0.0043");
      for (let batch = 0; batch < 4; batch++) {
        const events = Array.from({ length: 5000 }, (_, i) => {
          const n = batch * 5000 + i;
          // spread over about 17 hours, about 20 events a minute, with sub-minute offsets
          return event(a, `m-${n}`, { ts: T - n * 3_001, quantity: ONE, unitPrice: price, cost: price });
        });
        await store.appendEvents(events);
      }
      const [line] = await query.totals({ accountId: a });
      expect(line.requests).toBe(20_000);
      expect(line.quantity).toBe(20_000n * ONE);
      expect(line.cost).toBe(d("86"));
      // a range with unaligned edges: raw + minute + hour + day runs
      const start = T - 10_000 * 3_001 + 17;
      const end = T - 123;
      const [[part]] = await query.series({ accountId: a, buckets: [{ start, end }] });
      const inRange = Array.from({ length: 20_000 }, (_, n) => T - n * 3_001).filter(
        (t) => t >= start && t < end,
      ).length;
      expect(part.requests).toBe(inRange);
      expect(part.cost).toBe(BigInt(inRange) * price);
      expect(await store.verifyRollups()).toEqual([]);
    });

    it("answers sub-minute ranges from raw events exactly", async () => {
      const a = await newAccount(store);
      const base = Date.parse("2025-06-15T12:00:00Z");
      const offsets = [0, 999, 1000, 29_999, 30_000, 59_999, 60_000, 60_001, 119_999];
      await store.appendEvents(
        offsets.map((o, i) =>
          event(a, `s${i}`, {
            ts: base + o,
            quantity: BigInt(i + 1) * ONE,
            cost: BigInt(i + 1) * 10n ** 16n,
          }),
        ),
      );
      const check = async (start: number, end: number) => {
        const [[line]] = await query.series({
          accountId: a,
          buckets: [{ start: base + start, end: base + end }],
        });
        const hits = offsets
          .map((o, i) => ({ o, q: BigInt(i + 1) }))
          .filter(({ o }) => o >= start && o < end);
        if (hits.length === 0) {
          expect(line).toBeUndefined();
          return;
        }
        expect([line.requests, line.quantity]).toEqual([
          hits.length,
          hits.reduce((s, h) => s + h.q, 0n) * ONE,
        ]);
        expect(line.cost).toBe(hits.reduce((s, h) => s + h.q, 0n) * 10n ** 16n);
      };
      await check(0, 1000); // [0, 1000): offsets 0 and 999
      await check(1000, 30_000);
      await check(999, 60_001); // crosses a minute boundary with no whole minute inside
      await check(30_000, 90_000);
      await check(59_999, 60_000);
      await check(60_000, 60_000);
      await check(-5000, 0);
      await check(-1, 180_000); // whole minutes plus raw edges
    });

    it("puts late events (weeks in the past) in their own buckets", async () => {
      const a = await newAccount(store);
      const now = Date.parse("2025-06-15T12:00:00Z");
      const late = Date.parse("2025-05-20T23:50:00Z"); // 2025-05-21 05:35 in Kathmandu
      await store.appendEvents([event(a, "today", { ts: now })]);
      await store.appendEvents([event(a, "late", { ts: late, quantity: d("3"), cost: d("0.075") })]);
      const days = bucketsBetween(
        Date.parse("2025-05-19T00:00:00Z"),
        Date.parse("2025-06-16T00:00:00Z"),
        "day",
        "UTC",
      );
      const series = await query.series({ accountId: a, buckets: days });
      const nonEmpty = series
        .map((lines, i) => [new Date(days[i].start).toISOString(), lines.map((l) => l.requests)])
        .filter(([, r]) => (r as number[]).length > 0);
      expect(nonEmpty).toEqual([
        ["2025-05-20T00:00:00.000Z", [1]],
        ["2025-06-15T00:00:00.000Z", [1]],
      ]);
      // in +05:45 the late event belongs to the local 21st
      const kathmandu = bucketsBetween(
        Date.parse("2025-05-19T18:15:00Z"),
        Date.parse("2025-05-22T18:15:00Z"),
        "day",
        "Asia/Kathmandu",
      );
      const k = await query.series({ accountId: a, buckets: kathmandu });
      expect(k.map((lines) => lines.map((l) => l.quantity))).toEqual([[], [d("3")], []]);
      expect(await store.verifyRollups()).toEqual([]);
    });

    it("rollups equal raw events after random ingest and corrections (property)", async () => {
      const models = [
        { modelId: "flux-1-dev", unit: "image", kind: "image" },
        { modelId: "gpt-mini", unit: "token", kind: "chat" },
        { modelId: "tts-1", unit: "second", kind: "tts" },
      ];
      const keys = [null, { keyId: "k1", userId: "u1" }, { keyId: "k2", userId: "u2" }];
      const base = Date.parse("2025-06-01T00:00:00Z");
      const arbEvent = fc.record({
        id: fc.integer({ min: 0, max: 40 }), // a small id space: duplicates are frequent
        // up to five weeks in the past, down to the millisecond
        offset: fc.oneof(
          fc.integer({ min: -35 * DAY_MS, max: DAY_MS }),
          fc.integer({ min: -3 * MINUTE_MS, max: 3 * MINUTE_MS }),
        ),
        model: fc.nat({ max: models.length - 1 }),
        key: fc.nat({ max: keys.length - 1 }),
        quantity: fc.bigInt({ min: 0n, max: 10n ** 12n }), // micro units
        price: fc.constantFrom(0n, 1n, 25n * 10n ** 9n, 43n * 10n ** 8n, 10n ** 12n), // pico units
        cost: fc.option(fc.bigInt({ min: 0n, max: 10n ** 27n }), { nil: undefined }), // atto, when given
        tokens: fc.tuple(fc.nat({ max: 5000 }), fc.nat({ max: 5000 })),
        active: fc.boolean(),
      });
      const arbFix = fc.record({
        target: fc.nat(),
        op: fc.constantFrom("quantity", "cost", "price", "deactivate", "activate", "delete"),
        value: fc.bigInt({ min: 0n, max: 10n ** 12n }),
      });
      const arbRange = fc.tuple(
        fc.integer({ min: -36 * DAY_MS, max: 2 * DAY_MS }),
        fc.integer({ min: 0, max: 10 * DAY_MS }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(arbEvent, { maxLength: 60 }),
          fc.integer({ min: 1, max: 25 }),
          fc.array(arbFix, { maxLength: 12 }),
          fc.array(arbRange, { minLength: 1, maxLength: 4 }),
          async (inputs, batchSize, fixes, ranges) => {
            const a = await newAccount(store);
            const events = inputs.map((x) => {
              const m = models[x.model];
              const k = keys[x.key];
              const quantity = x.quantity * 10n ** 12n;
              const unitPrice = x.price * 10n ** 6n;
              return event(a, `ev-${x.id}`, {
                ts: base + x.offset,
                ...m,
                keyId: k?.keyId ?? null,
                userId: k?.userId ?? null,
                quantity,
                unitPrice,
                cost: x.cost ?? (quantity * unitPrice) / ONE,
                tokensPrompt: x.tokens[0],
                tokensCompletion: x.tokens[1],
                statusActive: x.active,
              });
            });
            // the reference: the first event of each id wins
            const live = new Map<string, UsageEvent>();
            for (let i = 0; i < events.length; i += batchSize) {
              const batch = events.slice(i, i + batchSize);
              const outcomes = await store.appendEvents(batch);
              batch.forEach((e, j) => {
                const first = live.get(e.eventId);
                expect(outcomes[j]).toEqual(
                  first
                    ? { status: "duplicate", usageId: first.usageId }
                    : { status: "inserted", usageId: e.usageId },
                );
                if (!first) live.set(e.eventId, e);
              });
            }
            const ids = [...live.keys()];
            for (const [n, f] of fixes.entries()) {
              if (ids.length === 0) break;
              const id = ids[f.target % ids.length];
              const e = live.get(id);
              const audit = {
                id: randomUUID(),
                accountId: a,
                usageId: e?.usageId ?? "none",
                action: "update" as const,
                actorKeyId: null,
                actorUserId: null,
                at: T + n,
              };
              if (!e) {
                expect(await store.deleteEvent(a, `gone-${id}`, { ...audit, action: "delete" })).toBe(false);
                continue;
              }
              if (f.op === "delete") {
                expect(await store.deleteEvent(a, e.usageId, { ...audit, action: "delete" })).toBe(true);
                live.delete(id);
                ids.splice(ids.indexOf(id), 1);
                continue;
              }
              const patch =
                f.op === "quantity"
                  ? { quantity: f.value * 10n ** 12n }
                  : f.op === "cost"
                    ? { cost: f.value * 10n ** 9n }
                    : f.op === "price"
                      ? { unitPrice: f.value * 10n ** 6n }
                      : { statusActive: f.op === "activate" };
              const after = await store.updateEvent(a, e.usageId, patch, audit);
              const expected = { ...e, ...patch, updatedAt: T + n };
              expect(after).toEqual(expected);
              live.set(id, expected);
            }
            expect(await store.verifyRollups()).toEqual([]);
            const all = [...live.values()];
            expect(linesAsMap(await query.totals({ accountId: a }))).toEqual(expectedLines(all));
            expect(linesAsMap(await query.totals({ accountId: a, family: "key" }))).toEqual(
              expectedLines(all, "key"),
            );
            expect(linesAsMap(await query.totals({ accountId: a, family: "key", keyId: "k1" }))).toEqual(
              expectedLines(
                all.filter((e) => e.keyId === "k1"),
                "key",
              ),
            );
            expect(linesAsMap(await query.totals({ accountId: a, modelIds: ["gpt-mini", "tts-1"] }))).toEqual(
              expectedLines(all.filter((e) => e.modelId !== "flux-1-dev")),
            );
            const buckets = ranges.map(([s, len]) => ({ start: base + s, end: base + s + len }));
            const series = await query.series({ accountId: a, buckets });
            buckets.forEach((b, i) => {
              expect(linesAsMap(series[i])).toEqual(
                expectedLines(all.filter((e) => e.ts >= b.start && e.ts < b.end)),
              );
            });
          },
        ),
        { numRuns: kind.name === "postgres" ? 25 : 40 },
      );
    });
  });
});

/** An account id that exists nowhere. */
const b = (a: string): string => `${a}-other`;
