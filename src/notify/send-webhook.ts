import { performance } from "node:perf_hooks";
import { Agent, request } from "undici";
import type { WebhookHeaders } from "./signing.ts";
import { guardedLookup, type PrivateAddressPolicy, refusedLiteralHost } from "./url-policy.ts";

/** How much of a response is kept for the delivery log. */
export const EXCERPT_BYTES = 1024;
/** DESIGN.md: a receiver has 15 s to answer, body included. */
export const SEND_TIMEOUT_MS = 15_000;

export interface SendRequest {
  url: string;
  headers: WebhookHeaders;
  body: Uint8Array;
  timeoutMs: number;
}

export interface SendResult {
  /** null when no response arrived */
  statusCode: number | null;
  latencyMs: number;
  responseExcerpt: string;
  /** "timeout", or the connection error's message; null when a response arrived */
  error: string | null;
}

/** One POST of one attempt; never throws (a failure is a result). */
export type SendWebhook = (req: SendRequest) => Promise<SendResult>;

export interface WebhookSender {
  send: SendWebhook;
  close(): Promise<void>;
}

/**
 * The real sender: undici with its own connection pool, whose sockets resolve names through
 * `guardedLookup` (the send-time TALLY_WEBHOOK_PRIVATE check, see url-policy.ts). Redirects are not
 * followed: a 3xx is a failed attempt.
 */
export function httpWebhookSender(policy: PrivateAddressPolicy): WebhookSender {
  const agent = new Agent({
    connect: { lookup: guardedLookup(policy) as never },
    // one delivery at a time per connection; keep-alive across deliveries to one receiver
    pipelining: 1,
    keepAliveTimeout: 10_000,
  });

  async function send(req: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const refused = refusedLiteralHost(new URL(req.url), policy);
    if (refused) return { statusCode: null, latencyMs: 0, responseExcerpt: "", error: refused };
    // one signal bounds the whole exchange: connect, headers and the excerpt of the body
    const signal = AbortSignal.timeout(req.timeoutMs);
    try {
      const res = await request(req.url, {
        method: "POST",
        dispatcher: agent,
        signal,
        headers: {
          "content-type": "application/json",
          "user-agent": "Tally-Webhooks/1",
          ...req.headers,
        },
        body: Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength),
      });
      const chunks: Buffer[] = [];
      let kept = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        chunks.push(buf.subarray(0, EXCERPT_BYTES - kept));
        kept += Math.min(buf.length, EXCERPT_BYTES - kept);
        if (kept >= EXCERPT_BYTES) break; // leaving the loop destroys the rest of the body
      }
      return {
        statusCode: res.statusCode,
        latencyMs: elapsed(),
        responseExcerpt: Buffer.concat(chunks).toString("utf8"),
        error: null,
      };
    } catch (err) {
      const error = signal.aborted ? "timeout" : errorText(err);
      return { statusCode: null, latencyMs: elapsed(), responseExcerpt: "", error };
    }
  }

  return { send, close: () => agent.close() };
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const code = (err as { code?: unknown }).code ?? (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error && cause.message ? cause.message : err.message;
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}
