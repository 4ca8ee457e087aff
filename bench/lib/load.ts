import autocannon from "autocannon";

export interface LoadOptions {
  url: string;
  path: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  /** a fixed body, or one made per request (unique idempotency keys) */
  body?: string | (() => string);
  connections: number;
  /** seconds; or a fixed number of requests with `amount` */
  duration?: number;
  amount?: number;
  /** called with each response's status and body */
  onResponse?: (status: number, body: string) => void;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Loads a server with autocannon over loopback (no pipelining). Latency percentiles come from
 * every response's own float duration (autocannon's histogram has 1 ms resolution).
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const body = o.body;
  const request: autocannon.Request = {
    method: o.method,
    path: o.path,
    headers: { "content-type": "application/json", ...o.headers },
  };
  if (typeof body === "string") request.body = body;
  if (typeof body === "function") {
    request.setupRequest = (req) => ({ ...req, body: body() });
  }
  if (o.onResponse) {
    const cb = o.onResponse;
    (request as { onResponse?: unknown }).onResponse = (status: number, resBody: string) =>
      cb(status, resBody);
  }
  const t0 = performance.now();
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? 5 }),
    timeout: 30,
    requests: [request],
  }) as unknown as autocannon.Instance & Promise<autocannon.Result>;
  let last = t0;
  instance.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
    last = performance.now();
  });
  const result = await instance;
  // up to the last response: autocannon resolves on its next 1-second tick, which would add up to
  // a second to a fixed-amount run (a 3 s run read as 33k/s whatever the server did)
  const seconds = ((o.amount ? last : performance.now()) - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    seconds,
    reqPerSec: latencies.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)];
}
