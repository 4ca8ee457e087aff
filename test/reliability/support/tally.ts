import { spawn } from "node:child_process";
import { expect } from "vitest";
import { ONE } from "../../../src/domain/decimal.ts";
import { QueryService } from "../../../src/query/usage-query.ts";
import { openStore } from "../../../src/store/open-store.ts";
import type { Store } from "../../../src/store/store.ts";
import { call, REPO_ROOT, type ServerProcess } from "../../support/server-process.ts";

/**
 * What every reliability check shares: an account set up over HTTP, a load of usage events from
 * several concurrent clients that remembers what was acknowledged, the store-side proof (every
 * acknowledged id stored once, no request half written, totals and rollups exact) and the
 * `tally verify` command at the end.
 */

export const MODEL_ID = "rel-model";

export interface Tenant {
  accountId: string;
  /** the account's admin user */
  userId: string;
  /** that admin's key */
  key: string;
}

async function ok(res: Promise<{ status: number; body: unknown; text: string }>, what: string) {
  const r = await res;
  expect(r.status, `${what}: ${r.status} ${r.text}`).toBeLessThan(300);
  return r.body as Record<string, unknown>;
}

/** The model the loads report (idempotent upsert), once per store. */
export async function createModel(server: ServerProcess): Promise<void> {
  await ok(
    call(server, "POST", "/v1/models", {
      key: server.adminKey,
      body: {
        id: MODEL_ID,
        unit: "request",
        kind: "other",
        unit_price: "0.0043",
        effective_from: "2020-01-01T00:00:00Z",
      },
    }),
    "create model",
  );
}

/** A new account with an admin key; with `plan`, subscribed to it. */
export async function createTenant(
  server: ServerProcess,
  name: string,
  plan?: { requests_per_minute: number | null; requests_per_day: number | null },
): Promise<Tenant> {
  const root = server.adminKey;
  const account = await ok(call(server, "POST", "/v1/accounts", { key: root, body: { name } }), "account");
  const accountId = String(account.id);
  const user = await ok(
    call(server, "POST", `/v1/accounts/${accountId}/users`, {
      key: root,
      body: { username: `ops-${accountId.slice(0, 8)}`, role: "admin" },
    }),
    "user",
  );
  const key = await ok(call(server, "POST", `/v1/users/${user.id}/keys`, { key: root, body: {} }), "key");
  if (plan) {
    const planId = `rel-plan-${accountId.slice(0, 8)}`;
    await ok(
      call(server, "POST", "/v1/plans", { key: root, body: { id: planId, validity_days: 30, ...plan } }),
      "plan",
    );
    await ok(
      call(server, "POST", `/v1/accounts/${accountId}/subscriptions`, {
        key: root,
        body: { plan_id: planId, activated_at: "2020-01-01T00:00:00Z" },
      }),
      "subscription",
    );
  }
  return { accountId, userId: String(user.id), key: String(key.key) };
}

export interface EventsAnswer {
  accepted: number;
  duplicates: number;
  rejected: unknown[];
  results: { id: string; usage_id: string; status: string }[];
}

/** POST /v1/events with a deadline; the answer's status, Retry-After and JSON (when 2xx). */
export async function postEvents(
  url: string,
  key: string,
  body: unknown,
  timeoutMs = 10_000,
): Promise<{ status: number; retryAfter: string | null; json: EventsAnswer | null; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-key": key },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const json = res.status < 300 ? (JSON.parse(text) as EventsAnswer) : null;
  return {
    status: res.status,
    retryAfter: res.headers.get("retry-after"),
    json,
    ms: performance.now() - started,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Concurrent clients reporting events, single and in batches of 25, each id used by one request
 * only (a request that is not acknowledged is never sent again by the load itself); every fifth
 * request replays an acknowledged one, which must come back as duplicates naming the same
 * usage ids. `targets()` is read on every request, so a test can swap or add servers.
 */
export class EventLoad {
  /** id -> usage_id, for every id some 2xx answer acknowledged */
  readonly acked = new Map<string, string>();
  /** every id sent in any request */
  readonly sent = new Set<string>();
  /** the ids of each request that got no 2xx (error status, cut connection or timeout) */
  readonly unacknowledged: string[][] = [];
  /** answers by status, and `error` for requests with no answer */
  readonly statuses = new Map<string, number>();
  /** 503s without a Retry-After, and other 5xx answers: both fail the check */
  readonly badFailures: string[] = [];
  requests = 0;
  duplicatesAnswered = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly replays: { body: unknown; ids: string[] }[] = [];

  constructor(
    private readonly targets: () => string[],
    private readonly key: string,
    private readonly prefix: string,
    private readonly options: {
      clients?: number;
      timeoutMs?: number;
      maxRequests?: number;
      maxMs?: number;
    } = {},
  ) {}

  /** The most events this load can have sent and not yet had answered at one moment. */
  get mostEventsInFlight(): number {
    const clients = this.options.clients ?? 6;
    return Array.from({ length: clients }, (_, n) => this.batchSize(n)).reduce((a, b) => a + b, 0);
  }

  /** Events per request of client n: the even clients send one, the odd ones a batch of 25. */
  private batchSize(n: number): number {
    return n % 2 === 0 ? 1 : 25;
  }

  start(): void {
    const clients = this.options.clients ?? 6;
    this.loops = Array.from({ length: clients }, (_, n) => this.loop(n));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private count(status: string): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  /** Runs until stop(), or maxRequests per client or maxMs (the bounds when a failing test never stops it). */
  private async loop(n: number): Promise<void> {
    const max = this.options.maxRequests ?? 20_000;
    const deadline = Date.now() + (this.options.maxMs ?? 120_000);
    for (let i = 0; i < max && !this.stopping && Date.now() < deadline; i++) {
      const targets = this.targets();
      const url = targets[(n + i) % targets.length];
      const replay = i % 5 === 4 && this.replays.length > 0;
      let ids: string[];
      let body: unknown;
      if (replay) {
        const r = this.replays[(n * 7 + i) % this.replays.length];
        ({ ids, body } = r);
      } else {
        const size = this.batchSize(n);
        ids =
          size === 1
            ? [`${this.prefix}-${n}-${i}`]
            : Array.from({ length: size }, (_, j) => `${this.prefix}-${n}-${i}-${j}`);
        for (const id of ids) this.sent.add(id);
        const events = ids.map((id) => ({ id, model_id: MODEL_ID, quantity: 1 }));
        body = events.length === 1 ? events[0] : { events };
      }
      this.requests += 1;
      try {
        const res = await postEvents(url, this.key, body, this.options.timeoutMs ?? 10_000);
        this.count(String(res.status));
        if (res.json) {
          expect(res.json.rejected, "no event of the load is invalid").toEqual([]);
          expect(res.json.results.map((r) => r.id)).toEqual(ids);
          for (const r of res.json.results) {
            const before = this.acked.get(r.id);
            if (before !== undefined)
              expect(r.usage_id, `a retry of ${r.id} names its stored event`).toBe(before);
            this.acked.set(r.id, r.usage_id);
          }
          if (replay) {
            expect([res.json.accepted, res.json.duplicates]).toEqual([0, ids.length]);
            this.duplicatesAnswered += res.json.duplicates;
          } else {
            this.replays.push({ body, ids });
          }
        } else {
          if (!replay) this.unacknowledged.push(ids);
          if (res.status === 503 && !res.retryAfter) this.badFailures.push("503 without Retry-After");
          else if (res.status >= 500 && res.status !== 503) this.badFailures.push(`answered ${res.status}`);
          await sleep(50);
        }
      } catch {
        this.count("error");
        if (!replay) this.unacknowledged.push(ids);
        await sleep(50);
      }
    }
  }

  /** The requests answered with this status so far. */
  answered(status: number | "error"): number {
    return this.statuses.get(String(status)) ?? 0;
  }

  summary(): string {
    const statuses = [...this.statuses.entries()]
      .sort()
      .map(([s, n]) => `${s}:${n}`)
      .join(" ");
    return `${this.requests} requests (${statuses}), ${this.sent.size} event ids sent, ${this.acked.size} acknowledged, ${this.duplicatesAnswered} replays answered duplicate`;
  }
}

/** The store a server used, opened by the test (DATABASE_URL or TALLY_DB from the same env). */
export function openStoreOf(env: { DATABASE_URL?: string; TALLY_DB?: string }): Promise<Store> {
  return openStore({ databaseUrl: env.DATABASE_URL ?? null, sqlitePath: env.TALLY_DB ?? "" });
}

/**
 * After the load: the unacknowledged requests are each all-or-nothing in the store, then sent
 * again until acknowledged; every id the load sent is then stored exactly once, under the usage
 * id its acknowledgement named, and the account's totals equal its events. Returns the line the
 * test prints.
 */
export async function proveEvents(
  store: Store,
  load: EventLoad,
  tenant: Tenant,
  url: string,
): Promise<string> {
  const storedIds = async () => {
    const events = await store.listEvents({ accountId: tenant.accountId, skip: 0, limit: 1_000_000 });
    return events;
  };
  const before = new Set((await storedIds()).map((e) => e.eventId));
  let whole = 0;
  let absent = 0;
  const half: string[][] = [];
  for (const ids of load.unacknowledged) {
    const present = ids.filter((id) => before.has(id)).length;
    if (present === ids.length) whole += 1;
    else if (present === 0) absent += 1;
    else half.push(ids);
  }
  expect(half, "requests half written (some of their events stored, some not)").toEqual([]);
  const lost = [...load.acked.keys()].filter((id) => !before.has(id));
  expect(lost, "acknowledged events missing from the store").toEqual([]);

  // the client's retry of every unacknowledged request: stored ones are duplicates, the rest land
  const retry = async (ids: string[]) => {
    const events = ids.map((id) => ({ id, model_id: MODEL_ID, quantity: 1 }));
    let res: Awaited<ReturnType<typeof postEvents>> | null = null;
    for (let attempt = 0; attempt < 20 && !res?.json; attempt++) {
      if (attempt > 0) await sleep(250);
      res = await postEvents(url, tenant.key, events.length === 1 ? events[0] : { events }).catch(() => null);
    }
    expect(res?.json, `retry of ${ids[0]} acknowledged`).toBeTruthy();
    const json = res!.json!;
    const stored = ids.every((id) => before.has(id));
    expect([json.accepted, json.duplicates]).toEqual(stored ? [0, ids.length] : [ids.length, 0]);
    for (const r of json.results) {
      const known = load.acked.get(r.id);
      if (known !== undefined) expect(r.usage_id).toBe(known);
      load.acked.set(r.id, r.usage_id);
    }
  };
  const pending = [...load.unacknowledged];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let ids = pending.shift(); ids; ids = pending.shift()) await retry(ids);
    }),
  );
  const retried = load.unacknowledged.length;

  const events = await storedIds();
  const count = new Map<string, number>();
  for (const e of events) count.set(e.eventId, (count.get(e.eventId) ?? 0) + 1);
  expect(
    [...count.entries()].filter(([, n]) => n !== 1),
    "ids stored more than once",
  ).toEqual([]);
  expect(
    events.filter((e) => !load.sent.has(e.eventId)).map((e) => e.eventId),
    "stored ids nobody sent",
  ).toEqual([]);
  expect(
    [...load.sent].filter((id) => !count.has(id)),
    "sent ids missing after the retries",
  ).toEqual([]);
  for (const e of events) expect(e.usageId, `usage id of ${e.eventId}`).toBe(load.acked.get(e.eventId));
  expect(await store.verifyRollups(), "rollups equal the raw events").toEqual([]);
  const [line] = await new QueryService(store).totals({ accountId: tenant.accountId });
  expect([line?.requests, line?.quantity]).toEqual([events.length, BigInt(events.length) * ONE]);
  return (
    `${load.summary()}; unacknowledged requests ${load.unacknowledged.length} ` +
    `(${whole} wholly stored, ${absent} not at all, 0 half), retried ${retried}; ` +
    `stored ${events.length} = sent ${load.sent.size}, each once; totals and rollups exact`
  );
}

/** `tally verify` on the store of `env`, as an operator runs it; fails the test unless it exits 0. */
export async function tallyVerify(env: { DATABASE_URL?: string; TALLY_DB?: string }): Promise<string> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== "DATABASE_URL" && k !== "TALLY_DB") childEnv[k] = v;
  }
  if (env.DATABASE_URL) childEnv.DATABASE_URL = env.DATABASE_URL;
  if (env.TALLY_DB) childEnv.TALLY_DB = env.TALLY_DB;
  const child = spawn(process.execPath, ["bin/tally.mjs", "verify"], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  clearTimeout(timer);
  expect(code, `tally verify exited ${code}:\n${out}`).toBe(0);
  return out.trim();
}

/** Prints what a check proved, in one recognisable line per check. */
export function proved(check: string, what: string): void {
  console.log(`[reliability] ${check}: ${what}`);
}

/** Polls until `ok` or the deadline; false when the deadline passed. */
export async function waitFor(ok: () => Promise<boolean>, ms: number, every = 200): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return true;
    await sleep(every);
  }
  return false;
}

export { sleep };

/** How long a Tally process may take to answer /healthz after its start (tsx compiles at start). */
export const START_MS = 60_000;
