import type Database from "better-sqlite3";
import { ReferenceMemo } from "../reference-memo.ts";
import type { ReferenceCache } from "../shared/sql-store.ts";
import type { ApiKey } from "../store.ts";

/**
 * How often, at most, `PRAGMA data_version` is asked whether another connection committed: each
 * ask is a read transaction (~20 µs under load), and asked every millisecond it was 2 % of a
 * gateway request's time at 3,000 requests a second. A change through this store shows at once.
 */
export const SQLITE_RECHECK_MS = 10;

/**
 * Reference rows remembered on SQLite (docs/decisions/0008): always, and forgotten when this
 * store writes them or when PRAGMA data_version says another connection committed.
 */
export class SqliteReferenceCache implements ReferenceCache {
  private readonly memo: ReferenceMemo;
  /** key id -> digest, for keys the memo holds (their last use moves about once a second) */
  private readonly keyHashes = new Map<string, string>();
  private readonly touchKey: Database.Statement;

  constructor(db: Database.Database) {
    const dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.memo = new ReferenceMemo(() => Number(dataVersion.get()), SQLITE_RECHECK_MS);
    this.touchKey = db.prepare(
      "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    );
  }

  remember<T>(key: string, read: () => Promise<T>): Promise<T> {
    return this.memo.getAsync(key, read);
  }

  keyRead(hash: string, key: ApiKey | null): void {
    if (key) this.keyHashes.set(key.id, hash);
  }

  forget(): void {
    this.memo.clear();
    this.keyHashes.clear();
  }

  /** Moves keys' last use forward, here and in what is remembered (inside the caller's transaction). */
  touchKeys(uses: Map<string, number>): void {
    for (const [id, at] of uses) {
      this.touchKey.run(at, id, at);
      const hash = this.keyHashes.get(id);
      if (hash === undefined) continue;
      this.memo.update<ApiKey | null>(`key:${hash}`, (k) =>
        k && (k.lastUsedAt === null || k.lastUsedAt < at) ? { ...k, lastUsedAt: at } : k,
      );
    }
  }
}
