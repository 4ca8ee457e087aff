/**
 * Reference rows (keys by digest, users, accounts, plans, licenses) that every request reads,
 * remembered between changes. Two things end a remembered value: a write through this connection
 * to those tables (the store calls `clear`), and `PRAGMA data_version` moving, which SQLite
 * reports when another connection (the `tally` CLI, a second server) committed anything. Values
 * are frozen, so a caller cannot alter what the next caller reads.
 *
 * Asking SQLite for data_version costs about as much as the read it saves (profiled: ~30 µs under
 * load), so it is asked at most once per `recheckMs`: a change committed by another connection
 * shows within that time, one through this store at once. A request that races another process's
 * revocation by a millisecond is one that could as well have arrived a millisecond earlier.
 */
export class ReferenceMemo {
  private readonly values = new Map<string, unknown>();
  private version = -1;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly dataVersion: () => number,
    private readonly recheckMs = 1,
    private readonly limit = 10_000,
  ) {}

  get<T>(key: string, read: () => T): T {
    const now = performance.now();
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      const version = this.dataVersion();
      if (version !== this.version) {
        this.values.clear();
        this.version = version;
      }
    }
    if (this.values.has(key)) return this.values.get(key) as T;
    const value = deepFreeze(read());
    if (this.values.size >= this.limit) this.values.clear();
    this.values.set(key, value);
    return value;
  }

  /** Replaces a remembered value if there is one (e.g. a key's last use moved). */
  update<T>(key: string, change: (value: T) => T): void {
    if (this.values.has(key)) this.values.set(key, deepFreeze(change(this.values.get(key) as T)));
  }

  clear(): void {
    this.values.clear();
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
