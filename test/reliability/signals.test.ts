import { afterEach, describe, expect, it } from "vitest";
import { type ServerProcess, startServer } from "../support/server-process.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";
import { RELIABILITY } from "./support/enabled.ts";
import {
  createModel,
  createTenant,
  EventLoad,
  proved,
  proveEvents,
  START_MS,
  sleep,
  tallyVerify,
} from "./support/tally.ts";

/**
 * SIGKILL and SIGTERM while concurrent clients report events, on each store: after a restart on
 * the same database every acknowledged event is there exactly once, no request is half written,
 * and `tally verify` agrees. SIGTERM is a drain: the process exits 0 by itself; on the way out it
 * may refuse new requests with 503, never with another 5xx, and what it acknowledged is committed.
 */

const LOAD_BEFORE_MS = 1500;

const cases = storeKinds().flatMap((kind) =>
  (["SIGKILL", "SIGTERM"] as const).map((signal) => ({ kind, signal, name: `${signal} on ${kind.name}` })),
);

describe.runIf(RELIABILITY).each(cases)("$name during load", ({ kind, signal }) => {
  let ts: TestStore | null = null;
  let server: ServerProcess | null = null;
  afterEach(async () => {
    await server?.cleanup();
    server = null;
    await ts?.cleanup();
    ts = null;
  });

  const start = (t: TestStore, adminKey?: string) =>
    kind.name === "postgres"
      ? startServer({ env: t.env, adminKey, timeoutMs: START_MS })
      : startServer({ dbPath: t.env.TALLY_DB, adminKey, timeoutMs: START_MS });

  it("keeps every acknowledged event exactly once, and tally verify agrees", async () => {
    ts = await kind.create();
    server = await start(ts);
    await createModel(server);
    const tenant = await createTenant(server, `${signal} Co`);
    const first = server;
    const load = new EventLoad(() => [first.url], tenant.key, `${signal.toLowerCase()}-${kind.name}`, {
      clients: 6,
    });
    load.start();
    await sleep(LOAD_BEFORE_MS);
    const ackedBefore = load.acked.size;
    let exit: number | null = null;
    if (signal === "SIGKILL") await first.kill();
    else exit = await first.stop(20_000);
    await sleep(300);
    await load.stop();

    expect(ackedBefore, "events were acknowledged before the signal").toBeGreaterThan(50);
    // a draining server may refuse new requests with 503 (Fastify does, on kept-alive connections)
    const bad = load.badFailures.filter((f) => !(signal === "SIGTERM" && f === "503 without Retry-After"));
    expect(bad, "5xx answers other than 503").toEqual([]);
    if (signal === "SIGTERM") {
      expect(exit, `exit code after SIGTERM\n${first.output()}`).toBe(0);
      expect(load.answered(500), "no 500 while draining").toBe(0);
    }

    server = await start(ts, first.adminKey);
    const line = await proveEvents(ts.store, load, tenant, server.url);
    expect(await server.stop(), "a clean stop after the checks").toBe(0);
    server = null;
    const verify = await tallyVerify(ts.env);
    proved(`${signal} on ${kind.name}`, `${line}; exit ${exit ?? "killed"}; tally verify: ${verify}`);
  });
});
