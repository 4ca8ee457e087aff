/**
 * One HTTP exchange with Tally, and the retry policy every client call shares: full-jitter
 * exponential backoff on network errors, 5xx and 429, honouring `Retry-After`.
 */

export interface RetryPolicy {
  /** attempts in all, the first included (default 8) */
  maxAttempts: number;
  /** first backoff ceiling in ms (default 100) */
  baseDelayMs: number;
  /** largest backoff ceiling in ms (default 10,000) */
  maxDelayMs: number;
  /** a `Retry-After` longer than this is cut to it (default 60,000) */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export interface HttpOptions {
  /** e.g. `http://127.0.0.1:8787`; a trailing slash is ignored */
  url: string;
  /** sent as `Authorization: Bearer <key>` */
  key: string;
  /** per attempt (default 30,000 ms) */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** defaults to the global fetch */
  fetch?: typeof fetch;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** the parsed body, or the text when it is not JSON */
  body: unknown;
}

export interface RequestOptions {
  body?: unknown;
  /** an already serialized JSON body (sent as is, so exact decimals stay exact) */
  rawBody?: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | readonly string[] | undefined>;
  /** retry on network errors, 5xx and 429; only for requests that are safe to repeat */
  retry?: boolean;
  /**
   * Nobody awaits this request (a batch the client sends by itself): its waits between retries
   * never keep the process alive. An awaited request's waits do, so a process cannot end in the
   * middle of a call it is waiting on (a CLI read answered 429 exited with code 13 and no word).
   */
  background?: boolean;
  signal?: AbortSignal;
}

/** A refusal by the server (a 4xx, or a 5xx after the last retry), with its message. */
export class TallyError extends Error {
  override readonly name = "TallyError";
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The server could not be reached (after the last retry). */
export class TallyNetworkError extends Error {
  override readonly name = "TallyNetworkError";
}

/** Aborted by the caller (shutdown past its deadline). */
export class TallyAbortError extends Error {
  override readonly name = "TallyAbortError";
}

/** The message in any of Tally's error formats: `{detail}`, `{error: {message}}`, or the text. */
export function errorMessage(status: number, body: unknown): string {
  if (body && typeof body === "object") {
    const b = body as { detail?: unknown; error?: unknown; message?: unknown };
    if (typeof b.detail === "string") return b.detail;
    if (Array.isArray(b.detail)) {
      return b.detail
        .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).join(".")}: ${d.msg ?? ""}`)
        .join("; ");
    }
    if (b.error && typeof b.error === "object") {
      const e = b.error as { message?: unknown; code?: unknown; type?: unknown; issues?: unknown };
      if (typeof e.message === "string") return e.message;
    }
    if (typeof b.error === "string") return b.error;
    if (typeof b.message === "string") return b.message;
  }
  if (typeof body === "string" && body.trim() !== "") return `HTTP ${status}: ${body.slice(0, 200)}`;
  return `HTTP ${status}`;
}

/** Whether an answer is worth another attempt. */
export function isRetryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/** `Retry-After` in ms: delta seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Full jitter: a uniform delay in [0, min(max, base x 2^attempt)) (attempt counts from 0). */
export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** A timer (keeping the process alive only if `keepAlive`); rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, keepAlive = false): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new TallyAbortError("aborted"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new TallyAbortError("aborted"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (!keepAlive) timer.unref?.();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function parseBody(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Tally over HTTP: one base URL, one key, one retry policy. */
export class TallyHttp {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  private readonly key: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: HttpOptions) {
    if (!options.url) throw new TypeError("url is required");
    if (!options.key) throw new TypeError("key is required");
    this.baseUrl = options.url.replace(/\/+$/, "");
    this.key = options.key;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.fetchImpl = options.fetch ?? fetch;
  }

  url(path: string, query?: RequestOptions["query"]): string {
    const u = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) u.searchParams.append(name, v);
      else u.searchParams.set(name, String(value));
    }
    return u.toString();
  }

  /** One attempt; network failures throw TallyNetworkError, every HTTP answer resolves. */
  async once(method: string, path: string, options: RequestOptions = {}): Promise<HttpAnswer> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(this.url(path, options.query), {
        method,
        headers: {
          authorization: `Bearer ${this.key}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...options.headers,
        },
        body,
        signal,
      });
      text = await res.text();
    } catch (err) {
      if (options.signal?.aborted) throw new TallyAbortError("aborted");
      const cause = err as Error & { cause?: { code?: string; message?: string } };
      const detail = cause.cause?.code ?? cause.cause?.message ?? cause.message;
      throw new TallyNetworkError(`${method} ${path}: ${detail}`, { cause: err });
    }
    return { status: res.status, headers: res.headers, text, body: parseBody(text) };
  }

  /**
   * A request, retried (when `retry` is set) on network errors, 5xx and 429 with full-jitter
   * backoff, waiting at least `Retry-After` when the server names it. Resolves with the last
   * answer, whatever its status; throws TallyNetworkError when the last attempt could not connect.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<HttpAnswer> {
    const attempts = options.retry ? Math.max(1, this.retry.maxAttempts) : 1;
    for (let attempt = 0; ; attempt++) {
      let delay: number;
      try {
        const answer = await this.once(method, path, options);
        if (!isRetryable(answer.status) || attempt + 1 >= attempts) return answer;
        const after = retryAfterMs(answer.headers.get("retry-after"));
        delay =
          after === null
            ? backoffDelay(this.retry, attempt)
            : Math.min(this.retry.maxRetryAfterMs, Math.max(after, backoffDelay(this.retry, attempt)));
      } catch (err) {
        if (!(err instanceof TallyNetworkError) || attempt + 1 >= attempts) throw err;
        delay = backoffDelay(this.retry, attempt);
      }
      await sleep(delay, options.signal, !options.background);
    }
  }

  /** A request whose non-2xx answer is thrown as a TallyError. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const answer = await this.request(method, path, options);
    if (answer.status >= 300) {
      throw new TallyError(answer.status, errorMessage(answer.status, answer.body), answer.body);
    }
    return answer.body as T;
  }
}
