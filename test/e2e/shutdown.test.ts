import { request as httpRequest } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";

/**
 * SIGTERM drains: the listener closes, requests already in flight finish and are stored, what is
 * buffered is committed, and the process exits 0. In-flight is made certain by bodies that are
 * still being uploaded when the signal arrives.
 */

const SLOW = 4;
const EVENTS_PER_REQUEST = 50;

interface Answer {
  status: number;
  body: { accepted?: number; results?: { id: string }[] };
}

/** A POST whose body is sent in two halves; `finish()` sends the rest and resolves with the answer. */
function slowPost(url: string, path: string, key: string, body: unknown) {
  const text = JSON.stringify(body);
  const half = Math.floor(text.length / 2);
  let connected!: () => void;
  const isConnected = new Promise<void>((r) => {
    connected = r;
  });
  let resolveAnswer!: (a: Answer) => void;
  let rejectAnswer!: (e: unknown) => void;
  const answer = new Promise<Answer>((res, rej) => {
    resolveAnswer = res;
    rejectAnswer = rej;
  });
  const req = httpRequest(`${url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      authorization: `Bearer ${key}`,
    },
  });
  req.on("socket", (s) => s.on("connect", connected));
  req.on("error", rejectAnswer);
  req.on("response", (res) => {
    let data = "";
    res.on("data", (d) => {
      data += d;
    });
    res.on("end", () => resolveAnswer({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
  });
  req.write(text.slice(0, half));
  return {
    connected: isConnected,
    finish: () => {
      req.end(text.slice(half));
      return answer;
    },
  };
}

describe.each(storeKinds())("graceful shutdown of the real server ($name)", (kind) => {
  let ts: TestStore;
  let server: ServerProcess | null = null;
  beforeEach(async () => {
    ts = await kind.create();
  });
  afterEach(async () => {
    await server?.cleanup();
    server = null;
    await ts.cleanup();
  });

  const start = (adminKey?: string) => {
    const env = { TALLY_SHUTDOWN_GRACE_MS: "10000", LOG_LEVEL: "info" };
    return kind.name === "postgres"
      ? startServer({ env: { ...ts.env, ...env }, adminKey, timeoutMs: 90_000 })
      : startServer({ dbPath: ts.env.TALLY_DB, env, adminKey, timeoutMs: 90_000 });
  };

  it("finishes the requests in flight at SIGTERM, stores them, and exits 0", async () => {
    server = await start();
    const root = server.adminKey;
    const account = await call(server, "POST", "/v1/accounts", { key: root, body: { name: "Drain Co" } });
    expect(account.status).toBe(201);
    const accountId = (account.body as { id: string }).id;
    const model = await call(server, "POST", "/v1/models", {
      key: root,
      body: {
        id: "drain-model",
        unit: "request",
        kind: "other",
        unit_price: "0.01",
        effective_from: "2020-01-01T00:00:00Z",
      },
    });
    expect(model.status).toBe(201);

    const ids = (n: number) => Array.from({ length: EVENTS_PER_REQUEST }, (_, j) => `d${n}-${j}`);
    const body = (n: number) => ({
      account_id: accountId,
      events: ids(n).map((id) => ({ id, model_id: "drain-model", quantity: 1 })),
    });
    const slow = Array.from({ length: SLOW }, (_, n) => slowPost(server!.url, "/v1/events", root, body(n)));
    await Promise.all(slow.map((s) => s.connected));
    await new Promise((r) => setTimeout(r, 200)); // the server has read the headers

    const exited = new Promise<number | null>((r) => server!.child.once("exit", (code) => r(code)));
    server.child.kill("SIGTERM");
    // the listener closes: a new connection is refused
    await new Promise((r) => setTimeout(r, 300));
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();

    const answers = await Promise.all(slow.map((s) => s.finish()));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.accepted).toBe(EVENTS_PER_REQUEST);
    }
    expect(await exited).toBe(0);
    const out = server.output();
    expect(out).toContain('"msg":"shutting down: finishing in-flight requests"');
    expect(out).toContain('"msg":"stopped"');
    // every line the server wrote is one JSON object
    for (const line of out.split("\n").filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();

    // after a restart every acknowledged id is there, once: a retry of all of them is all duplicates
    await server.cleanup();
    server = await start(root);
    const all = Array.from({ length: SLOW }, (_, n) => ids(n)).flat();
    const retry = await call(server, "POST", "/v1/events", {
      key: root,
      body: {
        account_id: accountId,
        events: all.map((id) => ({ id, model_id: "drain-model", quantity: 1 })),
      },
    });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ accepted: 0, duplicates: SLOW * EVENTS_PER_REQUEST });
  }, 240_000);
});
