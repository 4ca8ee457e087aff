import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Dispatcher } from "undici";
import { type Quantities, quantitiesFromUsage } from "../domain/meters.ts";
import { type Metered, meterAbandoned, meterAnswer, zeroQuantities } from "./answer-usage.ts";
import { ChatStreamWatcher } from "./chat-stream.ts";
import type {
  AdmissionContext,
  Admitted,
  Authenticated,
  GatewayDeps,
  GatewayKind,
  GatewayRefusal,
  SettleContext,
  UsageSource,
} from "./gateway-deps.ts";
import {
  type GatewayCall,
  RawBody,
  readGatewayCall,
  UPSTREAM_PATHS,
  upstreamBody,
  wantsPlainText,
} from "./gateway-request.ts";
import { openAiError, sendOpenAiError } from "./openai-error.ts";
import { countTokens, requestText } from "./token-estimate.ts";
import { UpstreamCancel, UpstreamClient, upstreamFailure } from "./upstream-client.ts";

/** The gateway's routes (DESIGN "Gateway"): the path called is the usage log's endpoint. */
export const GATEWAY_ROUTES: readonly { path: string; kind: GatewayKind }[] = [
  { path: "/v1/chat/completions", kind: "chat" },
  { path: "/v1/embeddings", kind: "embeddings" },
  { path: "/v1/images/generations", kind: "images" },
  { path: "/v1/audio/speech", kind: "speech" },
  { path: "/v1/audio/transcriptions", kind: "transcription" },
  { path: "/chat", kind: "chat" },
  { path: "/audio-chat", kind: "chat" },
  { path: "/tts", kind: "speech" },
];

export interface GatewayOptions {
  /** Largest JSON body (default 1 MiB). */
  bodyLimit?: number;
  /** Largest transcription upload (default 25 MiB, OpenAI's own limit). */
  uploadLimit?: number;
}

/** HTTP status recorded for a request whose client left before its answer was complete (nginx's). */
const CLIENT_CLOSED = 499;

/**
 * Mounts the OpenAI-compatible gateway on `app`, in its own encapsulated context (its body
 * parsers and error format stay inside). Every admitted request is settled exactly once, after its
 * answer; `app.close()` waits for pending settlements.
 */
export async function registerGateway(
  app: FastifyInstance,
  deps: GatewayDeps,
  options: GatewayOptions = {},
): Promise<void> {
  await app.register(async (scope) => {
    const upstream = new UpstreamClient();
    const pending = new Set<Promise<void>>();
    scope.addHook("onClose", async () => {
      await Promise.allSettled([...pending]);
      await upstream.close();
    });

    // the route reads its body itself: forward the original bytes, parse a copy
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ["application/json", "multipart/form-data"],
      { parseAs: "buffer" },
      (request, bytes, done) =>
        done(null, new RawBody(bytes as Buffer, request.headers["content-type"] ?? "")),
    );
    scope.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) request.log.error({ err }, "gateway request failed");
      const message = status === 500 ? "Internal error." : err.message;
      return sendOpenAiError(
        reply,
        status,
        openAiError(status, message, status === 500 ? "internal_error" : null),
      );
    });

    const gateway = new Gateway(deps, upstream, pending);
    for (const { path, kind } of GATEWAY_ROUTES) {
      const bodyLimit =
        kind === "transcription" ? (options.uploadLimit ?? 25 * 1024 * 1024) : options.bodyLimit;
      scope.post(path, { bodyLimit, schema: { hide: true } }, (request, reply) =>
        gateway.handle(request, reply, path, kind),
      );
    }
  });
}

/** One admitted request on its way through. */
interface Exchange {
  call: GatewayCall;
  ctx: SettleContext;
  reply: FastifyReply;
  abort: UpstreamCancel;
  /** the client went away before its answer was complete */
  clientGone: boolean;
  /** Tally ended the client's connection because the upstream broke the stream */
  brokenByUpstream: boolean;
  settled: boolean;
}

class Gateway {
  constructor(
    private readonly deps: GatewayDeps,
    private readonly upstream: UpstreamClient,
    private readonly pending: Set<Promise<void>>,
  ) {}

  async handle(request: FastifyRequest, reply: FastifyReply, endpoint: string, kind: GatewayKind) {
    // the event's id: Tally's own, even where the app adopts a client's x-request-id for its logs
    const requestId = request.headers["x-request-id"] === request.id ? randomUUID() : request.id;
    reply.header("x-request-id", requestId);
    const base = { requestId, endpoint, kind, headers: request.headers };
    const auth = await this.deps.authenticate(base);
    if (!auth.ok) return refuse(reply, auth);
    const call = await readGatewayCall(kind, request.body);
    if ("ok" in call) return refuse(reply, call, auth);

    // each field written out, and the exchange's copy below made by Object.assign: on Node 20 an
    // object that starts with a spread takes V8's slow path for every field after it (decision
    // 0021, "Spreads")
    const ctx: AdmissionContext = {
      requestId,
      endpoint,
      kind,
      headers: request.headers,
      caller: auth.caller,
      model: call.model,
      stream: call.stream,
      body: call.body,
      maxOutputTokens: call.maxOutputTokens,
      knownQuantities: call.knownQuantities,
      countInputTokens: inputTokenCounter(call.body),
    };
    let admission: Admitted | GatewayRefusal;
    try {
      admission = await this.deps.admit(ctx);
    } catch (err) {
      // admission itself failed (a lost store: 503): the answer still carries the key's state
      const headers = await keyRateHeaders(auth);
      if (headers) reply.headers(headers);
      throw err;
    }
    if (!admission.ok) return refuse(reply, admission, auth);
    reply.headers(admission.headers);

    const exchange: Exchange = {
      call,
      ctx: Object.assign({}, ctx, { admission }),
      reply,
      abort: new UpstreamCancel(),
      clientGone: false,
      brokenByUpstream: false,
      settled: false,
    };
    reply.raw.once("close", () => {
      if (reply.raw.writableFinished || exchange.brokenByUpstream) return;
      exchange.clientGone = true;
      exchange.abort.abort();
    });
    if (request.raw.socket?.destroyed) {
      // gone during admission: nothing was forwarded, nothing is billed
      this.settle(exchange, zeroQuantities(kind), "provider", CLIENT_CLOSED, { error: "client_closed" });
      return reply.hijack();
    }
    try {
      return await this.forward(exchange, admission);
    } catch (err) {
      // a fault of Tally's own: the request still settles (and so releases its reservation)
      this.settle(exchange, zeroQuantities(kind), "estimated", 500, { error: "gateway_error" });
      throw err;
    }
  }

  private async forward(exchange: Exchange, admission: Admitted) {
    const { call, reply } = exchange;
    const route = admission.route;
    // ask for the usage chunk when the client did not; it is then hidden from the client
    const addUsage =
      call.kind === "chat" &&
      call.stream &&
      (call.body.stream_options as Record<string, unknown> | undefined)?.include_usage !== true;
    const out = await upstreamBody(call, route.upstreamModel, addUsage);

    let response: Dispatcher.ResponseData;
    try {
      response = await this.upstream.send({
        route,
        path: UPSTREAM_PATHS[call.kind],
        body: out.body,
        contentType: out.contentType,
        signal: exchange.abort,
      });
    } catch (err) {
      return this.failBeforeAnswer(exchange, err);
    }

    const status = response.statusCode;
    const contentType = String(response.headers["content-type"] ?? "");
    if (status < 400 && call.kind === "chat" && contentType.startsWith("text/event-stream")) {
      return this.relayChatStream(exchange, response, addUsage);
    }
    if (status < 400 && call.kind === "speech") return this.relayAudio(exchange, response);

    let bytes: Buffer;
    try {
      bytes = await readAll(response.body);
    } catch (err) {
      return this.failBeforeAnswer(exchange, err);
    }
    reply.code(status);
    if (contentType) reply.header("content-type", contentType);
    if (status >= 400) {
      // an upstream error before the first byte: passed through, and it costs nothing
      reply.send(bytes);
      this.settle(exchange, zeroQuantities(call.kind), "provider", status, { error: "upstream_error" });
      return reply;
    }
    const answer = contentType.includes("json") ? parseCopy(bytes) : null;
    const text = (answer as { text?: unknown } | null)?.text;
    if (wantsPlainText(call) && typeof text === "string") {
      reply.type("text/plain; charset=utf-8").send(text);
    } else {
      reply.send(bytes);
    }
    const metered = await meterAnswer(call, answer);
    this.settle(exchange, metered.quantities, metered.usageSource, status, {});
    return reply;
  }

  /** No answer came: the client left (billed on what was sent), or the upstream failed (502/504, free). */
  private async failBeforeAnswer(exchange: Exchange, err: unknown) {
    const { call, reply } = exchange;
    const failure = upstreamFailure(err);
    if (exchange.clientGone || failure === null) {
      const metered = await meterAbandoned(call, "");
      this.settle(exchange, metered.quantities, metered.usageSource, CLIENT_CLOSED, {
        error: "client_closed",
      });
      reply.hijack();
      if (!reply.raw.destroyed) reply.raw.destroy();
      return reply;
    }
    this.settle(exchange, zeroQuantities(call.kind), "provider", failure.status, { error: failure.code });
    return sendOpenAiError(reply, failure.status, openAiError(failure.status, failure.message, failure.code));
  }

  /** Chat SSE: each chunk goes to the client as it arrives; usage is read on the way. */
  private async relayChatStream(exchange: Exchange, response: Dispatcher.ResponseData, hideUsage: boolean) {
    const { call, reply } = exchange;
    const watcher = new ChatStreamWatcher(hideUsage);
    const raw = startRaw(reply, response, { "cache-control": "no-cache", "x-accel-buffering": "no" });
    const error = await pipeTo(exchange, raw, response, (chunk) => watcher.push(chunk));
    const reported = watcher.usage ? quantitiesFromUsage(watcher.usage) : null;
    const metered: Metered = reported
      ? { quantities: reported, usageSource: "provider" }
      : await meterAbandoned(call, watcher.generatedText());
    this.settleRelayed(exchange, response.statusCode, metered, error);
    return reply;
  }

  /** Speech audio: bytes pass through as they arrive; billed on the input's characters. */
  private async relayAudio(exchange: Exchange, response: Dispatcher.ResponseData) {
    const raw = startRaw(exchange.reply, response, {});
    const error = await pipeTo(exchange, raw, response, (chunk) => chunk);
    const metered = await meterAnswer(exchange.call, null);
    this.settleRelayed(exchange, response.statusCode, metered, error);
    return exchange.reply;
  }

  private settleRelayed(exchange: Exchange, status: number, metered: Metered, error: unknown) {
    if (exchange.clientGone) {
      this.settle(exchange, metered.quantities, metered.usageSource, CLIENT_CLOSED, {
        error: "client_closed",
      });
    } else if (error !== undefined) {
      const failure = upstreamFailure(error);
      const code = failure?.code === "upstream_timeout" ? "upstream_timeout" : "upstream_cut";
      this.settle(exchange, metered.quantities, metered.usageSource, status, { error: code });
    } else {
      this.settle(exchange, metered.quantities, metered.usageSource, status, {});
    }
  }

  /** Exactly one settlement per admitted request; it runs after the answer and never fails the request. */
  private settle(
    exchange: Exchange,
    quantities: Quantities,
    usageSource: UsageSource,
    status: number,
    extra: Record<string, unknown>,
  ): void {
    if (exchange.settled) return;
    exchange.settled = true;
    const { ctx } = exchange;
    // only the logger is kept for the settlement's lifetime, not the request and reply
    const log = exchange.reply.log;
    const metadata = {
      usage_source: usageSource,
      endpoint: ctx.endpoint,
      upstream_model: ctx.admission.route.upstreamModel,
      stream: ctx.stream,
      status,
      ...extra,
    };
    const done = this.deps
      .settle(ctx, { quantities, usageSource, status, metadata })
      .catch((err: unknown) => log.error({ err, request_id: ctx.requestId }, "settle failed"))
      .finally(() => this.pending.delete(done));
    this.pending.add(done);
  }
}

/** The request's input tokens, counted once and only if asked (a budget's reservation). */
function inputTokenCounter(body: Record<string, unknown>): () => Promise<number> {
  let counted: Promise<number> | null = null;
  return () => {
    counted ??= countTokens(requestText(body));
    return counted;
  };
}

/**
 * The key's rate-limit state before admission, for an answer admission gave no headers to; none
 * if it cannot be read (the answer is then about that failure, and goes out without them).
 */
async function keyRateHeaders(auth: Authenticated): Promise<Record<string, string> | undefined> {
  return auth.rateHeaders?.().catch(() => undefined);
}

/** A refusal's answer, with its own rate-limit headers or else the key's state before admission. */
async function refuse(
  reply: FastifyReply,
  refusal: GatewayRefusal,
  auth?: Authenticated,
): Promise<FastifyReply> {
  const headers = refusal.headers ?? (auth ? await keyRateHeaders(auth) : undefined);
  return sendOpenAiError(
    reply,
    refusal.status,
    openAiError(refusal.status, refusal.message, refusal.code, refusal.param ?? null, refusal.type),
    headers,
  );
}

/** Takes the response over from Fastify to write a stream straight to the socket. */
function startRaw(
  reply: FastifyReply,
  response: Dispatcher.ResponseData,
  extra: Record<string, string>,
): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
  const headers: Record<string, string | string[] | number> = {};
  for (const [name, value] of Object.entries(reply.getHeaders()))
    if (value !== undefined) headers[name] = value;
  const contentType = response.headers["content-type"];
  if (contentType) headers["content-type"] = contentType;
  raw.writeHead(response.statusCode, { ...headers, ...extra });
  raw.flushHeaders();
  return raw;
}

/**
 * Copies the upstream body to the client chunk by chunk, waiting when the client is slow
 * (backpressure, so 1,000 open streams hold little memory). Returns the upstream's error, if the
 * stream broke; a stream that broke ends the client's connection instead of pretending it finished.
 */
async function pipeTo(
  exchange: Exchange,
  raw: ServerResponse,
  response: Dispatcher.ResponseData,
  transform: (chunk: Uint8Array) => Uint8Array | string,
): Promise<unknown> {
  try {
    for await (const chunk of response.body) {
      const out = transform(chunk as Uint8Array);
      if (out.length > 0 && !raw.destroyed && !raw.write(out)) await drained(raw);
    }
    raw.end();
    return undefined;
  } catch (err) {
    if (!exchange.clientGone) exchange.brokenByUpstream = true;
    if (!raw.destroyed) raw.destroy();
    return err;
  }
}

function drained(raw: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      raw.off("drain", done);
      raw.off("close", done);
      resolve();
    };
    raw.on("drain", done);
    raw.on("close", done);
  });
}

async function readAll(body: Dispatcher.ResponseData["body"]): Promise<Buffer> {
  return Buffer.from(await body.arrayBuffer());
}

function parseCopy(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return null;
  }
}
