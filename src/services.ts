import { Authenticator, KeyUseRecorder } from "./auth/authenticator.ts";
import { WINDOW_MS } from "./domain/rate-limits.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { IngestService } from "./ingest/ingest-service.ts";
import { ModelCatalog } from "./ingest/model-catalog.ts";
import { UsageLogService } from "./ingest/usage-log-service.ts";
import { LimitService } from "./limits/limit-service.ts";
import { MemoryRateLimiter } from "./limits/memory-rate-limiter.ts";
import type { RateLimiter } from "./limits/rate-limiter.ts";
import { ManageService } from "./manage/manage-service.ts";
import { UsageLogQuery } from "./query/usage-log-query.ts";
import { QueryService, type UsageLine } from "./query/usage-query.ts";
import { WorkspaceUsageService } from "./query/workspace-usage.ts";
import type { Store } from "./store/store.ts";

export interface ServiceOptions {
  rootKey?: string | null;
  /** injectable clock for tests: epoch milliseconds */
  now?: () => number;
  /** shared rate-limit counters (RedisRateLimiter when REDIS_URL is set); default: in memory. Closed by close(). */
  rateLimiter?: RateLimiter;
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
  ingest: IngestService;
  query: QueryService;
  /** per-account request counters, fed by every committed event */
  limiter: RateLimiter;
  limits: LimitService;
  /** the usage log (seed 001): write verbs, read verbs */
  usageLog: UsageLogService;
  usageLogQuery: UsageLogQuery;
  /** the workspace usage API (seed 004) */
  workspaceUsage: WorkspaceUsageService;
  /** `/healthz`: whether the store answers, and which one it is */
  health(): Promise<Health>;
  close(): Promise<void>;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const keyUses = new KeyUseRecorder(store);
  const catalog = new ModelCatalog(store);
  const committer = new GroupCommitter(store);
  const auth = new Authenticator(store, keyUses, now, options.rootKey ?? null);
  const ingest = new IngestService(store, catalog, committer, now);
  const query = new QueryService(store);
  const limiter =
    options.rateLimiter ??
    new MemoryRateLimiter(now, async (accountId, windows) => {
      // requests already recorded in the current windows: a restarted process forgets none
      const [minute, day] = await query.series({
        accountId,
        buckets: [
          { start: windows.minute, end: windows.minute + WINDOW_MS.minute },
          { start: windows.day, end: windows.day + WINDOW_MS.day },
        ],
      });
      const requests = (lines: UsageLine[]) => lines.reduce((n, l) => n + l.requests, 0);
      return { minute: requests(minute), day: requests(day) };
    });
  // every recorded event is one request in the windows of its own timestamp
  // (unless an allowed limits check already counted it: one request never counts twice)
  committer.onCommitted((inserted) => void limiter.record(inserted.filter((e) => !e.admitted)));
  const limits = new LimitService(store, catalog, limiter, now);
  const services: Services = {
    store,
    now,
    keyUses,
    catalog,
    committer,
    auth,
    manage: new ManageService(store, catalog, now),
    ingest,
    query,
    limiter,
    limits,
    usageLog: new UsageLogService(store, ingest, auth, now),
    usageLogQuery: new UsageLogQuery(store),
    workspaceUsage: new WorkspaceUsageService(store, query, limits, now),
    async health() {
      try {
        await store.ping();
        return { ok: true, store: store.dialect };
      } catch {
        return { ok: false, store: store.dialect };
      }
    },
    async close() {
      await committer.idle();
      await keyUses.flush();
      await limiter.close();
      await store.close();
    },
  };
  return services;
}
