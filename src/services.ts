import { Authenticator, KeyUseRecorder } from "./auth/authenticator.ts";
import { type InvoiceOperator, InvoiceService } from "./billing/invoice-service.ts";
import { RollupPeriodUsage } from "./billing/rollup-period-usage.ts";
import type { BudgetReserver } from "./budget/budget-reserver.ts";
import { BudgetService } from "./budget/budget-service.ts";
import { MemoryBudgetReserver } from "./budget/memory-budget-reserver.ts";
import { QuerySpendReader } from "./budget/query-spend-reader.ts";
import { type SessionStore, StoreSessionStore } from "./dashboard/session-store.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { IngestService } from "./ingest/ingest-service.ts";
import { ModelCatalog } from "./ingest/model-catalog.ts";
import { UsageLogService } from "./ingest/usage-log-service.ts";
import { FallbackRateLimiter } from "./limits/fallback-rate-limiter.ts";
import { LimitService } from "./limits/limit-service.ts";
import { MemoryRateLimiter } from "./limits/memory-rate-limiter.ts";
import type { RateLimiter } from "./limits/rate-limiter.ts";
import type { RedisRateLimiter } from "./limits/redis-rate-limiter.ts";
import { storeCounts } from "./limits/store-counts.ts";
import { ManageService } from "./manage/manage-service.ts";
import { OperatorService } from "./manage/operator-service.ts";
import { PortalService } from "./manage/portal-service.ts";
import { UpstreamService } from "./manage/upstream-service.ts";
import { AlertService } from "./notify/alert-service.ts";
import type { PrivateAddressPolicy, ResolveHost } from "./notify/url-policy.ts";
import { WebhookService } from "./notify/webhook-service.ts";
import { type Log, SILENT_LOG } from "./ops/log.ts";
import { Metrics } from "./ops/metrics.ts";
import { UsageLogQuery } from "./query/usage-log-query.ts";
import { QueryService } from "./query/usage-query.ts";
import { WorkspaceUsageService } from "./query/workspace-usage.ts";
import type { Store } from "./store/store.ts";

export interface ServiceOptions {
  rootKey?: string | null;
  /** injectable clock for tests: epoch milliseconds */
  now?: () => number;
  /** shared rate-limit counters (RedisRateLimiter when REDIS_URL is set); default: in memory. Closed by close(). */
  rateLimiter?: RateLimiter;
  /** shared counters in Redis (REDIS_URL), with per-instance counters whenever Redis is out */
  redis?: RedisRateLimiter;
  /** budget holds shared by every instance (Redis when REDIS_URL is set); default: in memory. Closed by close(). */
  budgetReserver?: BudgetReserver;
  /** where the core logs what no request answers for (default: nowhere) */
  log?: Log;
  metrics?: Metrics;
  /** how far into the future an event's timestamp may lie (TALLY_MAX_FUTURE_MS) */
  maxFutureMs?: number;
  /** who issues invoices (printed on their PDF); default "Tally" */
  invoiceOperator?: InvoiceOperator;
  /** seals webhook signing secrets at rest (TALLY_SECRETS_KEY); default none: stored marked plain */
  secretsKey?: Buffer | null;
  /** webhook URLs resolving to private addresses (TALLY_WEBHOOK_PRIVATE); default allow */
  webhookPrivate?: PrivateAddressPolicy;
  /** how webhook hosts are resolved when checked (tests) */
  resolveHost?: ResolveHost;
}

export interface Health {
  ok: boolean;
  store: Store["dialect"];
}

/** The core, built once over a store; every API surface, the CLI and the dashboard use it. */
export interface Services {
  store: Store;
  now: () => number;
  auth: Authenticator;
  keyUses: KeyUseRecorder;
  catalog: ModelCatalog;
  committer: GroupCommitter;
  manage: ManageService;
  /** the operator API: lists, reads by id, changes with their audit entries */
  operator: OperatorService;
  /** the gateway's upstream servers */
  upstreams: UpstreamService;
  ingest: IngestService;
  query: QueryService;
  /** per-account request counters, fed by every committed event */
  limiter: RateLimiter;
  limits: LimitService;
  /** monthly budgets and prepaid credit: reserve before forwarding, settle after (the gateway) */
  budget: BudgetService;
  /** the usage log (seed 001): write verbs, read verbs */
  usageLog: UsageLogService;
  usageLogQuery: UsageLogQuery;
  /** the workspace usage API (seed 004) */
  workspaceUsage: WorkspaceUsageService;
  /** monthly invoices: upcoming, close, void, list, read */
  invoices: InvoiceService;
  /** webhook endpoints, their delivery log, and the outbox rows of events */
  webhooks: WebhookService;
  /** alert rules, their evaluation after commits and in a periodic sweep */
  alerts: AlertService;
  /** dashboard sessions, kept in the store (they survive restarts and span instances) */
  sessions: SessionStore;
  /** one-time dashboard sign-in links for an operator's own site */
  portal: PortalService;
  /** `/healthz`: whether the store answers, and which one it is */
  health(): Promise<Health>;
  log: Log;
  metrics: Metrics;
  close(): Promise<void>;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const log = options.log ?? SILENT_LOG;
  const metrics = options.metrics ?? new Metrics();
  const keyUses = new KeyUseRecorder(store);
  const catalog = new ModelCatalog(store);
  const committer = new GroupCommitter(store);
  const auth = new Authenticator(store, keyUses, now, options.rootKey ?? null);
  const ingest = new IngestService(store, catalog, committer, now, {
    maxFutureMs: options.maxFutureMs,
    onRejected: (n) => metrics.events.inc({ outcome: "rejected" }, n),
  });
  const query = new QueryService(store);
  // requests already recorded in the current windows: a restarted process forgets none
  const counts = storeCounts(query);
  const limiter =
    options.rateLimiter ??
    (options.redis
      ? new FallbackRateLimiter(options.redis, counts, now, log, {
          onBackend: (backend) => metrics.setLimiterBackend(backend),
          onFallback: () => metrics.limiterFallbacks.inc(),
        })
      : new MemoryRateLimiter(now, counts));
  // every recorded event is one request in the windows of its own timestamp
  // (unless an allowed limits check already counted it: one request never counts twice); the
  // events are committed already, so a counter that fails is logged and never fails anything
  committer.onCommitted((inserted) => {
    limiter.record(inserted.filter((e) => !e.admitted)).catch((err: unknown) => {
      metrics.storeErrors.inc({ op: "rate_limit_count" });
      log.error({ err }, "rate limiter: counting committed events failed");
    });
  });
  committer.onStats((s) => {
    metrics.commitEvents.observe(s.events);
    metrics.commitSeconds.observe(s.seconds);
    if (s.failed) metrics.storeErrors.inc({ op: "append" });
    else {
      metrics.events.inc({ outcome: "accepted" }, s.inserted);
      metrics.events.inc({ outcome: "duplicate" }, s.events - s.inserted);
    }
  });
  const webhooks = new WebhookService(store, now, {
    secretsKey: options.secretsKey ?? null,
    privateAddresses: options.webhookPrivate ?? "allow",
    resolve: options.resolveHost,
  });
  const alerts = new AlertService(store, query, webhooks, now, log);
  committer.onCommitted(alerts.committed);
  const budgetReserver = options.budgetReserver ?? new MemoryBudgetReserver(now);
  const budget = new BudgetService(budgetReserver, new QuerySpendReader(query, store), now, {
    onError: (err) => log.error({ err }, "budget: settling or releasing a hold failed"),
  });
  const limits = new LimitService(store, catalog, limiter, now, budget);
  const services: Services = {
    store,
    now,
    keyUses,
    catalog,
    committer,
    auth,
    manage: new ManageService(store, catalog, now, webhooks.announce),
    operator: new OperatorService(store, now),
    upstreams: new UpstreamService(store, now),
    ingest,
    query,
    limiter,
    limits,
    budget,
    usageLog: new UsageLogService(store, ingest, auth, now),
    usageLogQuery: new UsageLogQuery(store),
    workspaceUsage: new WorkspaceUsageService(store, query, limits, now),
    invoices: new InvoiceService(
      store,
      new RollupPeriodUsage(query, async (id) => (await catalog.get(id))?.model.unit ?? null),
      now,
      options.invoiceOperator ?? { name: "Tally", address: [] },
      webhooks.announce,
    ),
    webhooks,
    alerts,
    sessions: new StoreSessionStore(store),
    portal: new PortalService(store, now),
    async health() {
      try {
        await store.ping();
        return { ok: true, store: store.dialect };
      } catch {
        return { ok: false, store: store.dialect };
      }
    },
    log,
    metrics,
    async close() {
      await committer.idle();
      // thresholds the last commits reached are recorded (with their outbox rows) before the store closes
      await alerts.stop();
      await keyUses.flush();
      await limiter.close();
      await budgetReserver.close();
      await store.close();
    },
  };
  return services;
}
