import { createConnection, createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, type ServerProcess, startServer } from "../support/server-process.ts";
import { PG_URL, storeKinds, type TestStore } from "../support/stores.ts";

/**
 * A TCP relay to PostgreSQL that refuses (closes) its first `refusals` connections: PostgreSQL
 * "comes up" after that many attempts.
 */
function lateRelay(port: number, target: URL, refusals: number): Promise<Server> {
  let seen = 0;
  const server = createServer((client) => {
    if (++seen <= refusals) {
      client.destroy();
      return;
    }
    const upstream = createConnection(Number(target.port || 5432), target.hostname);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

/** a loaded CI box starts a tsx process slowly */
const STARTUP_MS = 90_000;
const postgres = storeKinds().find((k) => k.name === "postgres");

describe.runIf(PG_URL && postgres)("PostgreSQL not up yet at start", () => {
  let ts: TestStore | null = null;
  let server: ServerProcess | null = null;
  let proxy: Server | null = null;
  afterEach(async () => {
    await server?.cleanup();
    proxy?.close();
    await ts?.cleanup();
    server = null;
    proxy = null;
    ts = null;
  });

  it("retries with backoff, logging each attempt, and serves once it answers", async () => {
    ts = await postgres!.create();
    const port = await freePort();
    const url = new URL(ts.env.DATABASE_URL);
    const target = new URL(url);
    url.hostname = "127.0.0.1";
    url.port = String(port);
    proxy = await lateRelay(port, target, 3);
    server = await startServer({
      env: { DATABASE_URL: url.toString(), TALLY_STORE_WAIT_MS: "20000" },
      timeoutMs: STARTUP_MS,
    });
    const attempts = server
      .output()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; attempt?: number })
      .filter((l) => l.msg === "PostgreSQL is not reachable yet: retrying");
    expect(attempts.length, server.output()).toBeGreaterThanOrEqual(1);
    expect(attempts.length).toBeLessThanOrEqual(3);
    expect(attempts.map((a) => a.attempt)).toEqual(attempts.map((_, i) => i + 1));
  }, 180_000);

  it("gives up after TALLY_STORE_WAIT_MS, saying why, as JSON", async () => {
    const port = await freePort();
    await expect(
      startServer({
        env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x`, TALLY_STORE_WAIT_MS: "600" },
        timeoutMs: STARTUP_MS,
      }),
    ).rejects.toThrow(/"msg":"tally could not start"/);
  }, 180_000);
});
