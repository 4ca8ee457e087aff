import type { PricePoint } from "../domain/pricing.ts";
import type { Model, Store } from "../store/store.ts";

export interface CatalogEntry {
  model: Model;
  prices: PricePoint[];
}

/**
 * Models and their price versions, cached for the write path. This process drops an entry as
 * soon as it changes a model; changes made by other instances are seen within `ttlMs`.
 */
export class ModelCatalog {
  private readonly cache = new Map<string, { entry: CatalogEntry | null; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly ttlMs = 1000,
  ) {}

  async get(modelId: string): Promise<CatalogEntry | null> {
    const now = Date.now();
    const hit = this.cache.get(modelId);
    if (hit && hit.until > now) return hit.entry;
    const model = await this.store.getModel(modelId);
    const entry = model ? { model, prices: await this.store.listPrices(modelId) } : null;
    this.cache.set(modelId, { entry, until: now + this.ttlMs });
    return entry;
  }

  invalidate(modelId: string): void {
    this.cache.delete(modelId);
  }
}
