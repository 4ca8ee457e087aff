import { Authenticator, KeyUseRecorder } from "./auth/authenticator.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { IngestService } from "./ingest/ingest-service.ts";
import { ModelCatalog } from "./ingest/model-catalog.ts";
import { ManageService } from "./manage/manage-service.ts";
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
  close(): Promise<void>;
}

export function createServices(store: Store, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const keyUses = new KeyUseRecorder(store);
  const catalog = new ModelCatalog(store);
  const committer = new GroupCommitter(store, keyUses);
  const services: Services = {
    store,
    now,
    keyUses,
    catalog,
    committer,
    auth: new Authenticator(store, keyUses, now, options.rootKey ?? null),
    manage: new ManageService(store, catalog, now),
    ingest: new IngestService(store, catalog, committer, now),
    query: new QueryService(store),
    async close() {
      await committer.idle();
      await keyUses.flush();
      await store.close();
    },
  };
  return services;
}
