/** What `tally export` and `tally import` need of a store (part of `Store`). */
export type TransferRow = Record<string, string | number | null>;

export interface TransferStore {
  /** rows of a moved table after `after` (its page key; null: from the start), in key order, ints as text */
  exportPage(
    table: string,
    after: string | null,
    limit: number,
  ): Promise<{ rows: TransferRow[]; last: string | null }>;
  /** writes rows of a moved table in one transaction */
  importRows(table: string, rows: TransferRow[]): Promise<void>;
  /** true when the store has no account and no event: the only store an import goes into */
  isEmpty(): Promise<boolean>;
  /** drops every rollup and counts them again from the live events */
  recountRollups(): Promise<void>;
}
