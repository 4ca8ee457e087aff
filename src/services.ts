import { Authenticator, KeyUseRecorder } from "./auth/authenticator.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { IngestService } from "./ingest/ingest-service.ts";
import { ModelCatalog } from "./ingest/model-catalog.ts";
import { UsageLogService } from "./ingest/usage-log-service.ts";
import { ManageService } from "./manage/manage-service.ts";
import { UsageLogQuery } from "./query/usage-log-query.ts";
import { QueryService } from "./query/usage-query.ts";
import type { Store } from "./store/store.ts";

export interface ServiceOptions {
  rootKey?: string | null;
  /** injectable clock for tests: epoch milliseconds */
  now?: () => number;
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
  /** the usage log (seed 001): write verbs, read verbs */
  usageLog: UsageLogService;
  usageLogQuery: UsageLogQuery;
  close(): Promise<void>;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const keyUses = new KeyUseRecorder(store);
  const catalog = new ModelCatalog(store);
  const committer = new GroupCommitter(store, keyUses);
  const auth = new Authenticator(store, keyUses, now, options.rootKey ?? null);
  const ingest = new IngestService(store, catalog, committer, now);
  const services: Services = {
    store,
    now,
    keyUses,
    catalog,
    committer,
    auth,
    manage: new ManageService(store, catalog, now),
    ingest,
    query: new QueryService(store),
    usageLog: new UsageLogService(store, ingest, auth, now),
    usageLogQuery: new UsageLogQuery(store),
    async close() {
      await committer.idle();
      await keyUses.flush();
      await store.close();
    },
  };
  return services;
}
