/**
 * Reference rows (keys by digest, users, accounts, plans, licenses, subscriptions) that every request reads,
 * remembered between changes. Two things end a remembered value: a write through this store to
 * those tables (the store calls `clear`), and the store's `version` moving, which says another
 * process committed a change: on SQLite `PRAGMA data_version`, on PostgreSQL a counter of the
 * reference tables' notifications. Values are frozen, so a caller cannot alter what the next
 * caller reads.
 *
 * Asking SQLite for data_version costs about as much as the read it saves (profiled: ~30 µs under
 * load), so it is asked at most once per `recheckMs`: a change committed by another connection
 * shows within that time, one through this store at once. A request that races another process's
 * revocation by that much is one that could as well have arrived that much earlier.
 */
export class ReferenceMemo {
  private readonly values = new Map<string, unknown>();
  private seen = -1;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly version: () => number,
    private readonly recheckMs = 1,
    private readonly limit = 10_000,
  ) {}

  /**
   * The remembered value of `key`, or `read`'s. The promise is remembered at once, so a `clear`
   * while it runs also forgets it (on SQLite the read has run by then); a read that fails is forgotten.
   */
  getAsync<T>(key: string, read: () => Promise<T>): Promise<T> {
    this.recheck();
    const held = this.values.get(key) as Promise<T> | undefined;
    if (held) return held;
    const pending = read().then(deepFreeze);
    this.remember(key, pending);
    pending.catch(() => {
      if (this.values.get(key) === pending) this.values.delete(key);
    });
    return pending;
  }

  /**
   * Replaces a remembered value if there is one (e.g. a key's last use moved); a value remembered
   * by `getAsync` is replaced by the changed value once it is there.
   */
  update<T>(key: string, change: (value: T) => T): void {
    if (!this.values.has(key)) return;
    const held = this.values.get(key);
    this.values.set(
      key,
      held instanceof Promise ? held.then((v: T) => deepFreeze(change(v))) : deepFreeze(change(held as T)),
    );
  }

  clear(): void {
    this.values.clear();
  }

  private recheck(): void {
    const now = performance.now();
    if (now - this.checkedAt < this.recheckMs) return;
    this.checkedAt = now;
    const version = this.version();
    if (version !== this.seen) {
      this.values.clear();
      this.seen = version;
    }
  }

  private remember(key: string, value: unknown): void {
    if (this.values.size >= this.limit) this.values.clear();
    this.values.set(key, value);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
