import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import { call, type ServerProcess } from "../support/server-process.ts";

/** An account with an admin user and its key, a priced image model licensed to it. */
export interface ClientWorld {
  accountId: string;
  userId: string;
  key: string;
  modelId: string;
}

export async function createWorld(server: ServerProcess, modelId = "flux-1-dev"): Promise<ClientWorld> {
  const root = async (path: string, body: unknown) => {
    const res = await call(server, "POST", path, { key: server.adminKey, body });
    expect(res.status, `${path}: ${res.text}`).toBeLessThan(300);
    return res.body as { id: string; key?: string };
  };
  const account = await root("/v1/accounts", { name: `Client test ${Math.random()}` });
  const user = await root(`/v1/accounts/${account.id}/users`, { username: "inference", role: "admin" });
  const key = await root(`/v1/users/${user.id}/keys`, { label: "SDK" });
  await root("/v1/models", {
    id: modelId,
    unit: "image",
    kind: "image",
    unit_price: "0.0043",
    effective_from: "2020-01-01T00:00:00Z",
  });
  await root(`/v1/accounts/${account.id}/licenses`, { model_id: modelId, starts_at: "2020-01-01T00:00:00Z" });
  return { accountId: account.id, userId: user.id, key: key.key!, modelId };
}

/** Requests and quantity the server holds for one model of the key's account (all time, seed 003). */
export async function storedUsage(
  server: ServerProcess,
  key: string,
  modelId: string,
): Promise<{ requests: number; quantity: number }> {
  const res = await call(server, "GET", "/v1/usage?section=model_specific_usage", { key });
  expect(res.status, res.text).toBe(200);
  const m = (res.body as { model_specific_usage: Record<string, { requests: number; quantity: number }> })
    .model_specific_usage[modelId];
  return { requests: m?.requests ?? 0, quantity: m?.quantity ?? 0 };
}

/** What the proxy does with the n-th request (from 0). */
export type ProxyAction =
  | { kind: "answer"; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: "pass" }
  /** forward, let the server commit and answer, then cut the client's connection without a reply */
  | { kind: "drop-after-commit" };

export interface FaultProxy {
  url: string;
  /** bodies of every request received, in order */
  bodies: string[];
  /** their Idempotency-Key headers */
  idempotencyKeys: (string | undefined)[];
  /** server answers of the requests that were forwarded, in order */
  upstreamStatuses: number[];
  close(): Promise<void>;
}

/** A local proxy in front of a real server that misbehaves as `plan` says. */
export async function faultProxy(target: string, plan: (n: number) => ProxyAction): Promise<FaultProxy> {
  const bodies: string[] = [];
  const idempotencyKeys: (string | undefined)[] = [];
  const upstreamStatuses: number[] = [];
  const upstream = new URL(target);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const n = bodies.length;
      bodies.push(body.toString("utf8"));
      idempotencyKeys.push(req.headers["idempotency-key"] as string | undefined);
      const action = plan(n);
      if (action.kind === "answer") {
        res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
        res.end(JSON.stringify(action.body ?? { detail: "injected failure" }));
        return;
      }
      const headers = { ...req.headers, host: upstream.host, "content-length": String(body.length) };
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
        (up) => {
          const parts: Buffer[] = [];
          up.on("data", (c: Buffer) => parts.push(c));
          up.on("end", () => {
            upstreamStatuses.push(up.statusCode ?? 0);
            if (action.kind === "drop-after-commit") {
              req.socket.destroy();
              return;
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on("error", () => req.socket.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    idempotencyKeys,
    upstreamStatuses,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
