import { EventEmitter } from "node:events";
import type { Agent, Dispatcher } from "undici";
import type { UpstreamRoute } from "./gateway-deps.ts";

export interface UpstreamCall {
  route: UpstreamRoute;
  /** Path under the route's base URL, e.g. `/chat/completions`. */
  path: string;
  body: Uint8Array | string;
  contentType: string;
  signal: UpstreamCancel;
}

/**
 * Cancels one upstream request (and its body) when the client leaves. undici takes an
 * EventEmitter as a request's signal; an AbortController costs ~5 µs to make on Node 20, about
 * 2 % of a gateway request's CPU, against well under a microsecond for an EventEmitter.
 */
export class UpstreamCancel extends EventEmitter {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit("abort");
  }
}

/** Why Tally answered for an upstream: 504 when it did not answer in time, 502 when unreachable. */
export interface UpstreamFailure {
  status: 502 | 504;
  code: "upstream_timeout" | "upstream_unreachable";
  message: string;
}

/**
 * One keep-alive connection pool per upstream origin (undici's Agent), shared by every request:
 * no connection setup on the hot path. undici is loaded with the first call (about 10 MB of a
 * server's memory that a Tally without upstreams never needs).
 */
export class UpstreamClient {
  private agent: Promise<Agent> | null = null;

  /** base URL -> its origin and path, parsed once */
  private readonly bases = new Map<string, { origin: string; path: string; search: string }>();

  async send(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
    this.agent ??= import("undici").then(
      ({ Agent }) => new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 }),
    );
    const agent = await this.agent;
    const base = this.baseOf(call.route.baseUrl);
    const headers: Record<string, string> = { "content-type": call.contentType, accept: "*/*" };
    if (call.route.apiKey !== null) headers.authorization = `Bearer ${call.route.apiKey}`;
    return agent.request({
      origin: base.origin,
      path: base.path + call.path + base.search,
      method: "POST",
      headers,
      body: call.body,
      signal: call.signal,
      // no response headers within the timeout -> 504; the same bound on silence between body chunks
      headersTimeout: call.route.timeoutMs,
      bodyTimeout: call.route.timeoutMs,
    });
  }

  private baseOf(baseUrl: string) {
    let base = this.bases.get(baseUrl);
    if (!base) {
      const url = new URL(baseUrl);
      const path = url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname;
      base = { origin: url.origin, path, search: url.search };
      if (this.bases.size > 1000) this.bases.clear();
      this.bases.set(baseUrl, base);
    }
    return base;
  }

  async close(): Promise<void> {
    if (this.agent) await (await this.agent).close();
  }
}

/** Classifies an error from `send` or from reading a body; null for an abort (the client left). */
export function upstreamFailure(err: unknown): UpstreamFailure | null {
  const code = errorCode(err);
  if (code === "UND_ERR_ABORTED" || (err as Error | null)?.name === "AbortError") return null;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return { status: 504, code: "upstream_timeout", message: "The upstream did not answer in time." };
  }
  return { status: 502, code: "upstream_unreachable", message: "The upstream could not be reached." };
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } } | null;
  return e?.code ?? e?.cause?.code;
}
