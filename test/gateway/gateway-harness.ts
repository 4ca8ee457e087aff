import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import Fastify from "fastify";
import OpenAI from "openai";
import { formatDec } from "../../src/domain/decimal.ts";
import type { Quantities } from "../../src/domain/meters.ts";
import { type DevUpstream, startDevUpstream } from "../../src/gateway/dev-upstream.ts";
import type {
  AdmissionContext,
  GatewayDeps,
  GatewayRefusal,
  SettleContext,
  Settlement,
  UpstreamRoute,
} from "../../src/gateway/gateway-deps.ts";
import type { OpenAiErrorBody } from "../../src/gateway/openai-error.ts";
import { registerGateway } from "../../src/gateway/register-gateway.ts";

export const CLIENT_KEY = "tk-test-client";
export const UPSTREAM_KEY = "up-secret";
export const RATE_HEADERS = {
  "x-ratelimit-limit-requests": "60",
  "x-ratelimit-remaining-requests": "59",
  "x-ratelimit-reset-requests": "1",
};

export interface Settled {
  ctx: SettleContext;
  settlement: Settlement;
}

/**
 * A gateway in front of the dev upstream, with a fake core: a fixed client key, a model table,
 * an optional refusal, and every admission and settlement recorded for the test to read.
 */
export interface GatewayWorld {
  url: string;
  upstream: DevUpstream;
  client: OpenAI;
  admitted: AdmissionContext[];
  settled: Settled[];
  /** Refuses admission when it returns a refusal. */
  refuse: ((ctx: AdmissionContext) => GatewayRefusal | null) | null;
  /** How long admission takes (a slow store, a busy Redis). */
  admitDelayMs: number;
  waitForSettled(requestId: string): Promise<Settled>;
  waitFor<T>(probe: () => T | undefined | null | false, what: string): Promise<T>;
  close(): Promise<void>;
}

export async function startGatewayWorld(): Promise<GatewayWorld> {
  const upstream = await startDevUpstream({ apiKey: UPSTREAM_KEY });
  const deadPort = await closedPort();
  const route = (
    upstreamModel: string,
    timeoutMs = 5_000,
    baseUrl = `${upstream.url}/v1`,
  ): UpstreamRoute => ({
    baseUrl,
    apiKey: UPSTREAM_KEY,
    upstreamModel,
    timeoutMs,
  });
  const models: Record<string, UpstreamRoute> = {
    chat: route("dev-chat"),
    "chat-details": route("dev-chat:cached=3,reasoning=5"),
    "chat-slow": route("dev-chat:chunk_delay=40,words=30"),
    "chat-cut": route("dev-chat:cut=4,words=20"),
    "chat-fail": route("dev-chat:fail=500"),
    "chat-hang": route("dev-chat:hang", 300),
    "chat-unreachable": route("dev-chat", 5_000, `http://127.0.0.1:${deadPort}/v1`),
    embed: route("dev-embedding"),
    image: route("dev-image"),
    tts: route("dev-tts"),
    whisper: route("dev-transcribe"),
    "dev-transcribe": route("dev-transcribe"),
  };

  const world: GatewayWorld = {
    url: "",
    upstream,
    client: null as unknown as OpenAI,
    admitted: [],
    settled: [],
    refuse: null,
    admitDelayMs: 0,
    waitForSettled: (id) =>
      world.waitFor(() => world.settled.find((s) => s.ctx.requestId === id), `settle ${id}`),
    waitFor: async (probe, what) => {
      const until = Date.now() + 20_000; // generous: the first estimate loads the tokenizer, slow on a busy machine
      for (;;) {
        const value = probe();
        if (value) return value;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: async () => {
      await app.close();
      await upstream.close();
    },
  };

  const deps: GatewayDeps = {
    authenticate: async (request) =>
      request.headers.authorization === `Bearer ${CLIENT_KEY}`
        ? { ok: true, caller: { key: "test" }, rateHeaders: async () => RATE_HEADERS }
        : { ok: false, status: 401, code: "invalid_api_key", message: "Incorrect API key provided." },
    admit: async (ctx) => {
      world.admitted.push(ctx);
      if (world.admitDelayMs) await new Promise((r) => setTimeout(r, world.admitDelayMs));
      const target = models[ctx.model];
      if (!target) {
        return {
          ok: false,
          status: 404,
          code: "model_not_found",
          message: `The model ${ctx.model} does not exist.`,
          param: "model",
        };
      }
      const refusal = world.refuse?.(ctx);
      if (refusal) return refusal;
      return { ok: true, route: target, headers: RATE_HEADERS };
    },
    settle: async (ctx, settlement) => {
      world.settled.push({ ctx, settlement });
    },
  };

  // as the app does (src/http/app.ts): a client's x-request-id becomes the request's log id
  const app = Fastify({ requestIdHeader: "x-request-id", genReqId: () => randomUUID() });
  await registerGateway(app, deps);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  world.url = `http://127.0.0.1:${port}`;
  world.client = new OpenAI({
    apiKey: CLIENT_KEY,
    baseURL: `${world.url}/v1`,
    maxRetries: 0,
    timeout: 10_000,
  });
  return world;
}

/** Quantities as text, for readable comparisons. */
export function quantitiesText(q: Quantities): Record<string, string> {
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, formatDec(v as bigint)]));
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The `error` object of an OpenAI-shaped error answer. */
export async function errorOf(res: Response): Promise<OpenAiErrorBody["error"]> {
  return ((await res.json()) as OpenAiErrorBody).error;
}
