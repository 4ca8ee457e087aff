import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Where a rate-limit counter lives now: Redis (shared) or this process's memory (fallback). */
export type LimiterBackend = "redis" | "memory";

/**
 * Tally's Prometheus metrics, one registry per set of services (tests build many side by side).
 * Every label takes a bounded set of values: route patterns, never raw URLs or ids.
 */
export class Metrics {
  readonly registry = new Registry();

  /** one observation per answered request: its `_count` is the request counter */
  readonly httpDuration = new Histogram({
    name: "tally_http_request_duration_seconds",
    help: "HTTP requests by method, route pattern and status, and how long they took",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** method + route pattern + status -> its histogram child; the set is bounded by the routes */
  private readonly httpChildren = new Map<string, { observe(value: number): void }>();

  /**
   * One answered request. The labelled child is looked up once per (method, route, status):
   * prom-client otherwise sorts and joins the labels into a key on every observation.
   */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let child = this.httpChildren.get(key);
    if (!child) {
      child = this.httpDuration.labels(method, route, String(status));
      this.httpChildren.set(key, child);
    }
    child.observe(seconds);
  }

  readonly events = new Counter({
    name: "tally_events_total",
    help: "Usage events by outcome: accepted (stored), duplicate (id already stored), rejected (invalid)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly commitEvents = new Histogram({
    name: "tally_group_commit_events",
    help: "Events per group-commit transaction",
    buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 20000],
    registers: [this.registry],
  });

  readonly commitSeconds = new Histogram({
    name: "tally_group_commit_seconds",
    help: "Duration of group-commit transactions (failed ones included)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly storeErrors = new Counter({
    name: "tally_store_errors_total",
    help: "Failed store operations, by where they were seen",
    labelNames: ["op"] as const,
    registers: [this.registry],
  });

  readonly limiterBackend = new Gauge({
    name: "tally_rate_limiter_backend",
    help: "1 for the backend the rate-limit counters use now, 0 for the other",
    labelNames: ["backend"] as const,
    registers: [this.registry],
  });

  readonly limiterFallbacks = new Counter({
    name: "tally_rate_limiter_fallbacks_total",
    help: "Times the rate limiter lost Redis and fell back to per-instance counters",
    registers: [this.registry],
  });

  /**
   * Requests being answered now: a plain count kept by the HTTP hooks (a gauge's inc and dec cost
   * a label lookup on every request), read by shutdown and copied into the gauge at each scrape.
   */
  inFlight = 0;

  readonly httpInFlight: Gauge = new Gauge({
    name: "tally_http_requests_in_flight",
    help: "Requests being answered now (shutdown waits for these, gateway streams included)",
    registers: [this.registry],
    collect: () => {
      this.httpInFlight.set(this.inFlight);
    },
  });

  readonly webhookAttempts = new Counter({
    name: "tally_webhook_attempts_total",
    help: "Webhook delivery attempts, by outcome (succeeded, failed)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly webhookSeconds = new Histogram({
    name: "tally_webhook_attempt_seconds",
    help: "Time a receiver took to answer a webhook delivery (or to fail)",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [this.registry],
  });

  private processMetrics = false;

  constructor() {
    this.setLimiterBackend("memory");
    for (const outcome of ["accepted", "duplicate", "rejected"]) this.events.inc({ outcome }, 0);
    this.limiterFallbacks.inc(0);
    for (const outcome of ["succeeded", "failed"]) this.webhookAttempts.inc({ outcome }, 0);
  }

  setLimiterBackend(backend: LimiterBackend): void {
    this.limiterBackend.set({ backend: "redis" }, backend === "redis" ? 1 : 0);
    this.limiterBackend.set({ backend: "memory" }, backend === "memory" ? 1 : 0);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    // Node's own metrics (memory, event-loop lag, GC) start with the first scrape: each set hooks
    // the runtime, and tests build hundreds of Services that are never scraped
    if (!this.processMetrics) {
      this.processMetrics = true;
      collectDefaultMetrics({ register: this.registry, prefix: "tally_" });
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
