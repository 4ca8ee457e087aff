import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServer } from "../support/server-process.ts";
import { RELIABILITY } from "./support/enabled.ts";
import { type PgCluster, postgresBin, startPgCluster } from "./support/stores.ts";
import {
  createModel,
  createTenant,
  EventLoad,
  MODEL_ID,
  openStoreOf,
  proved,
  proveEvents,
  START_MS,
  sleep,
  type Tenant,
  tallyVerify,
  waitFor,
} from "./support/tally.ts";

/**
 * A PostgreSQL cluster of the suite's own (initdb/pg_ctl on a free port) lost under load, twice:
 * stopped (every connection dropped, connections refused) and frozen (SIGSTOP: connections hang).
 * Meanwhile every surface answers 503 with Retry-After within a bounded time and /healthz is 503
 * naming the store; when the database is back Tally recovers by itself (no restart), and in the
 * end no acknowledged event is lost, no request is half written, and `tally verify` agrees.
 */

/** The longest any answer may take while the database is stopped (connections refused at once). */
const OUTAGE_ANSWER_MS = 6_000;
/**
 * The longest any answer may take while it is frozen, with 2 s connect and statement timeouts
 * (below): a write may wait on its statement, then on its rollback.
 */
const FROZEN_ANSWER_MS = 10_000;
/** How long Tally may take to serve again once the database is back. */
const RECOVERY_MS = 30_000;

interface Probe {
  surface: string;
  status: number | "error" | "timeout";
  retryAfter: string | null;
  ms: number;
  body: string;
}

/** One request on each surface, all at once; none may take longer than `boundMs`. */
async function probeSurfaces(
  server: ServerProcess,
  tenant: Tenant,
  userId: string,
  boundMs: number,
): Promise<Probe[]> {
  const root = server.adminKey;
  const probes: [string, string, string, Record<string, string>, unknown?][] = [
    [
      "native event",
      "POST",
      "/v1/events",
      { "x-key": tenant.key },
      { id: `probe-${Date.now()}`, model_id: MODEL_ID, quantity: 1 },
    ],
    ["native account", "GET", `/v1/accounts/${tenant.accountId}`, { authorization: `Bearer ${root}` }],
    ["limits check", "POST", "/v1/limits/check", { authorization: `Bearer ${tenant.key}` }],
    [
      "usage log create",
      "POST",
      "/usage",
      { authorization: `Bearer ${tenant.key}` },
      { api_name: MODEL_ID, endpoint: "/probe", units_used: 1, cost_usd: "0.01" },
    ],
    ["usage log list", "GET", `/usage/user/${userId}`, { authorization: `Bearer ${tenant.key}` }],
    [
      "license report",
      "POST",
      `/v1/licenses/models/${MODEL_ID}/usage`,
      { "x-key": tenant.key },
      { number_of_generations: 1 },
    ],
    ["key statistics", "GET", "/v1/usage", { authorization: `Bearer ${tenant.key}` }],
    ["workspace usage", "GET", "/v1/models/usage", { authorization: `Key ${tenant.key}` }],
  ];
  return Promise.all(
    probes.map(async ([surface, method, path, headers, body]): Promise<Probe> => {
      const started = performance.now();
      try {
        const res = await fetch(`${server.url}${path}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(boundMs),
        });
        return {
          surface,
          status: res.status,
          retryAfter: res.headers.get("retry-after"),
          ms: Math.round(performance.now() - started),
          body: (await res.text()).slice(0, 200),
        };
      } catch (err) {
        const timeout = (err as Error).name === "TimeoutError";
        return {
          surface,
          status: timeout ? "timeout" : "error",
          retryAfter: null,
          ms: Math.round(performance.now() - started),
          body: String(err),
        };
      }
    }),
  );
}

/** What a healthy outage answer looks like: 503 + Retry-After, in time. */
/** Probes a frozen (not stopped) database may answer from memory: see the frozen check. */
const MEMORY_SERVED = new Set(["native account", "limits check"]);

const outageAnswer = (p: Probe) => ({
  surface: p.surface,
  status: p.status,
  retryAfter: p.retryAfter !== null && /^\d+$/.test(p.retryAfter),
});

async function healthz(server: ServerProcess): Promise<{ status: number | "error"; body: string }> {
  try {
    const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(OUTAGE_ANSWER_MS) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: "error", body: String(err) };
  }
}

/** Every process of the cluster: the postmaster (first line of postmaster.pid) and its children. */
function clusterPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)])
    .toString()
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
  return [postmaster, ...children];
}

describe.runIf(RELIABILITY && postgresBin())(
  "PostgreSQL lost under load (a cluster of the suite's own)",
  () => {
    let cluster: PgCluster | null = null;
    let server: ServerProcess | null = null;
    afterAll(async () => {
      await server?.cleanup();
      await cluster?.destroy();
    });

    it("answers 503 with Retry-After while it is stopped or frozen, recovers by itself, loses nothing", async () => {
      cluster = await startPgCluster();
      const env = {
        DATABASE_URL: cluster.url,
        // a frozen database must not hold a request longer than this (plus a second on the client)
        TALLY_DB_CONNECT_TIMEOUT_MS: "2000",
        TALLY_DB_STATEMENT_TIMEOUT_MS: "2000",
      };
      server = await startServer({ env, timeoutMs: START_MS });
      const tally = server;
      await createModel(tally);
      const tenant = await createTenant(tally, "Outage Co");
      const userId = tenant.userId;

      const load = new EventLoad(() => [tally.url], tenant.key, "pg-outage", {
        clients: 4,
        timeoutMs: 15_000,
      });
      load.start();
      await sleep(1500);
      const ackedBeforeStop = load.acked.size;

      // 1. stopped: connections dropped and refused
      await cluster.stop();
      await sleep(500);
      const stoppedProbes = await probeSurfaces(tally, tenant, userId, OUTAGE_ANSWER_MS);
      const stoppedHealth = await healthz(tally);
      expect(
        tally.child.exitCode,
        `Tally is still running without its database\n${tally.output()}`,
      ).toBeNull();
      await sleep(1000);
      await cluster.start();
      const t0 = performance.now();
      const backAfterStop = await waitFor(async () => (await healthz(tally)).status === 200, RECOVERY_MS);
      const recoveredInMs = performance.now() - t0;
      expect(backAfterStop, `healthz 200 within ${RECOVERY_MS} ms of the restart\n${tally.output()}`).toBe(
        true,
      );
      await sleep(1000);
      const ackedAfterRestart = load.acked.size;

      // 2. frozen: every process of the cluster stopped with SIGSTOP, connections hang
      const pids = clusterPids(cluster.dataDir);
      for (const pid of pids) process.kill(pid, "SIGSTOP");
      let frozenProbes: Probe[];
      let frozenHealth: Awaited<ReturnType<typeof healthz>>;
      try {
        await sleep(300);
        frozenProbes = await probeSurfaces(tally, tenant, userId, FROZEN_ANSWER_MS);
        frozenHealth = await healthz(tally);
      } finally {
        for (const pid of pids) process.kill(pid, "SIGCONT");
      }
      const backAfterFreeze = await waitFor(async () => (await healthz(tally)).status === 200, RECOVERY_MS);
      expect(backAfterFreeze, "healthz 200 again after the freeze").toBe(true);
      await sleep(1000);
      await load.stop();

      const expected = stoppedProbes.map((p) => ({ surface: p.surface, status: 503, retryAfter: true }));
      expect(stoppedProbes.map(outageAnswer), `stopped: ${JSON.stringify(stoppedProbes)}`).toEqual(expected);
      expect([stoppedHealth.status, stoppedHealth.body.includes("postgres")], stoppedHealth.body).toEqual([
        503,
        true,
      ]);
      // A frozen server cuts no connection, so the remembered reference rows (kept while their
      // change notifications can arrive) stay valid: no write can commit anywhere meanwhile. A
      // read of an account, or a limit check (reference rows and counters only), may therefore be
      // answered from memory; every answer that needs the database is 503 + Retry-After.
      const fromMemory = (p: Probe) => MEMORY_SERVED.has(p.surface) && p.status === 200;
      const frozenFromStore = frozenProbes.filter((p) => !fromMemory(p));
      expect(frozenFromStore.length, "surfaces that need the database").toBeGreaterThanOrEqual(
        frozenProbes.length - MEMORY_SERVED.size,
      );
      expect(frozenFromStore.map(outageAnswer), `frozen: ${JSON.stringify(frozenProbes)}`).toEqual(
        frozenFromStore.map((p) => ({ surface: p.surface, status: 503, retryAfter: true })),
      );
      expect(frozenHealth.status, "healthz while frozen").toBe(503);
      expect(load.badFailures, "5xx answers other than 503 + Retry-After").toEqual([]);
      expect(load.answered(503), "the load saw the outage").toBeGreaterThan(0);
      expect(load.answered("error"), "no request cut off or left hanging").toBe(0);
      expect(ackedBeforeStop).toBeGreaterThan(0);
      expect(load.acked.size, "events acknowledged again after the restart").toBeGreaterThan(
        ackedAfterRestart,
      );

      const store = await openStoreOf(env);
      try {
        const line = await proveEvents(store, load, tenant, tally.url);
        expect(await tally.stop()).toBe(0);
        server = null;
        const verify = await tallyVerify(env);
        const slowest = Math.max(...stoppedProbes.map((p) => p.ms), ...frozenProbes.map((p) => p.ms));
        proved(
          "PostgreSQL stopped and frozen",
          `${line}; ${stoppedProbes.length} surfaces answered 503 + Retry-After while stopped, ${frozenFromStore.length} while frozen (the rest from memory) ` +
            `(slowest ${slowest} ms); healthy again ${recoveredInMs} ms after the restart, without a Tally restart; ` +
            `tally verify: ${verify}`,
        );
      } finally {
        await store.close();
      }
    });
  },
);
