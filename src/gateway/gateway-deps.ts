import type { IncomingHttpHeaders } from "node:http";
import type { Quantities } from "../domain/meters.ts";

/**
 * What the gateway needs from the core. The gateway owns the wire (routes, forwarding, streams,
 * usage extraction); the core owns every decision (keys, models, prices, licenses, limits,
 * budgets) and the write of the usage event. Admission is split in two so that its order holds
 * even for a malformed body: the key first (401), then the body is read (400 naming the field),
 * then everything that needs the model.
 */
export interface GatewayDeps {
  /** The key: 401 when missing, unknown, revoked or its account disabled. */
  authenticate(request: GatewayRequest): Promise<Authenticated | GatewayRefusal>;
  /**
   * Everything after the key, in DESIGN's order: model known and routed (404 model_not_found),
   * priced (400 model_not_priced), license and plan lists (403), rate limits (429, counting this
   * request once), budget reservation (402). `headers` (the x-ratelimit-* trio) go on the answer
   * whatever happens next.
   */
  admit(ctx: AdmissionContext): Promise<Admitted | GatewayRefusal>;
  /**
   * Called exactly once for every admitted request, after its answer is complete, cut or
   * abandoned: records one usage event with id `ctx.requestId` and releases the reservation.
   * Never called for a refused request.
   */
  settle(ctx: SettleContext, settlement: Settlement): Promise<void>;
}

/** The kind of API called; `/chat` and `/audio-chat` are chat, `/tts` is speech. */
export type GatewayKind = "chat" | "embeddings" | "images" | "speech" | "transcription";

export interface GatewayRequest {
  /**
   * Tally's request id, returned as `x-request-id`: the usage event's id. Never the client's own
   * `x-request-id`, which would let a client pick an event id (and so have a retry deduplicated).
   */
  requestId: string;
  /** The path called (`/v1/chat/completions`, `/chat`, `/tts`, ...): the usage log's endpoint. */
  endpoint: string;
  kind: GatewayKind;
  headers: IncomingHttpHeaders;
}

export interface Authenticated {
  ok: true;
  /** Whatever the core needs later (principal, account, key id); passed back untouched. */
  caller: unknown;
  /**
   * The key's current x-ratelimit-* state, before admission counts the request, for an answer
   * that admission gives no headers of its own (a 400 for a bad body, a 404 for an unknown
   * model). Asked only then: an admitted request's headers come from admission's one count.
   */
  rateHeaders?: () => Promise<Record<string, string>>;
}

export interface AdmissionContext extends GatewayRequest {
  caller: unknown;
  /** The model the client asked for (Tally's model id). */
  model: string;
  stream: boolean;
  /** The request body as parsed (the form fields for a multipart body); read only. */
  body: Readonly<Record<string, unknown>>;
  /** `max_completion_tokens` or `max_tokens`; null when the request sets no bound. */
  maxOutputTokens: number | null;
  /** Quantities known exactly before forwarding (speech characters, images asked for). */
  knownQuantities: Quantities | null;
  /** A tokenizer count of the request's text, for a reservation (computed on first call). */
  countInputTokens(): Promise<number>;
}

export interface UpstreamRoute {
  /** OpenAI-style base URL including its version path, e.g. `http://127.0.0.1:8787/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`; null sends none. */
  apiKey: string | null;
  /** The model name sent upstream. */
  upstreamModel: string;
  /** No response headers (or no body bytes for this long) -> 504. */
  timeoutMs: number;
}

export interface Admitted {
  ok: true;
  route: UpstreamRoute;
  /** Headers for the answer, e.g. x-ratelimit-limit-requests. */
  headers: Record<string, string>;
  /** Anything the core wants back at settle time (a reservation handle). */
  hold?: unknown;
}

export interface GatewayRefusal {
  ok: false;
  status: number;
  /** OpenAI's `error.code`, e.g. `model_not_found`, `model_not_priced`, `rate_limit_exceeded`. */
  code: string;
  message: string;
  /** OpenAI's `error.type`; defaults from the status. */
  type?: string;
  param?: string | null;
  headers?: Record<string, string>;
}

export interface SettleContext extends AdmissionContext {
  admission: Admitted;
}

export type UsageSource = "provider" | "estimated";

export interface Settlement {
  quantities: Quantities;
  /** "provider": read from the upstream's answer or counted exactly from the request; "estimated": a tokenizer count. */
  usageSource: UsageSource;
  /** The status the client got (the upstream's, or 502/504 when Tally answered for it). */
  status: number;
  /** The event's metadata as is: usage_source, endpoint, upstream_model, stream, and on failure `error`. */
  metadata: Record<string, unknown>;
}
