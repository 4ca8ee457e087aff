import type { Dec } from "../domain/decimal.ts";
import { type Bucket, planSegments } from "../domain/time.ts";
import type { AggregateQuery, AggregateRow, RollupFamily, Store } from "../store/store.ts";

/** One line of usage: sums for one model, unit, unit price, currency, kind (and key, user). */
export interface UsageLine {
  modelId: string;
  unit: string;
  unitPrice: Dec;
  currency: string;
  kind: string;
  keyId: string;
  userId: string;
  requests: number;
  quantity: Dec;
  cost: Dec;
  tokensPrompt: number;
  tokensCompletion: number;
}

export interface SeriesInput {
  accountId: string;
  buckets: Bucket[];
  /** "key" splits lines by API key and user; "account" (default) does not */
  family?: RollupFamily;
  modelIds?: string[];
  keyId?: string;
  userId?: string;
  /** false when the caller shows no token counts: they are not summed and read 0 */
  tokens?: boolean;
}

/** All time, for totals that have no range: from the epoch to the year 9999. */
export const ALL_TIME: Bucket = { start: 0, end: 253_402_300_800_000 };

/**
 * The read path: sums of quantity, cost, requests and tokens per bucket, from the rollups. Each
 * bucket is cut into UTC-aligned day, hour and minute runs (raw events only for sub-minute edges),
 * so a query costs what its buckets cost, whatever the number of events.
 */
export class QueryService {
  constructor(private readonly store: Store) {}

  async series(input: SeriesInput): Promise<UsageLine[][]> {
    const segments: AggregateQuery["segments"] = [];
    input.buckets.forEach((b, bucket) => {
      for (const s of planSegments(b.start, b.end)) segments.push({ bucket, ...s });
    });
    const rows =
      segments.length === 0
        ? []
        : await this.store.aggregate({
            accountId: input.accountId,
            family: input.family ?? "account",
            segments,
            modelIds: input.modelIds,
            keyId: input.keyId,
            userId: input.userId,
            tokens: input.tokens,
          });
    const out: Map<string, UsageLine>[] = input.buckets.map(() => new Map());
    for (const r of rows) merge(out[r.bucket], r);
    // a line whose events were all corrected away sums to nothing; a meter's line counts no request
    // (its event's first meter does) but has a quantity
    return out.map((m) =>
      [...m.values()]
        .filter((l) => l.requests !== 0 || l.quantity !== 0n || l.cost !== 0n)
        .sort(compareLines),
    );
  }

  async totals(input: Omit<SeriesInput, "buckets"> & { range?: Bucket }): Promise<UsageLine[]> {
    // fields written out, not `{ ...input, buckets }`: see decision 0021, "Spreads"
    const [lines] = await this.series({
      accountId: input.accountId,
      buckets: [input.range ?? ALL_TIME],
      family: input.family,
      modelIds: input.modelIds,
      keyId: input.keyId,
      userId: input.userId,
      tokens: input.tokens,
    });
    return lines;
  }
}

function merge(into: Map<string, UsageLine>, r: AggregateRow): void {
  const id = `${r.modelId}\u0000${r.unit}\u0000${r.unitPrice}\u0000${r.currency}\u0000${r.kind}\u0000${r.keyId}\u0000${r.userId}`;
  const line = into.get(id);
  if (!line) {
    const { bucket: _bucket, ...rest } = r;
    into.set(id, { ...rest });
    return;
  }
  line.requests += r.requests;
  line.quantity += r.quantity;
  line.cost += r.cost;
  line.tokensPrompt += r.tokensPrompt;
  line.tokensCompletion += r.tokensCompletion;
}

function compareLines(a: UsageLine, b: UsageLine): number {
  return (
    a.modelId.localeCompare(b.modelId) ||
    a.unit.localeCompare(b.unit) ||
    (a.unitPrice < b.unitPrice ? -1 : a.unitPrice > b.unitPrice ? 1 : 0) ||
    a.currency.localeCompare(b.currency) ||
    a.kind.localeCompare(b.kind) ||
    a.keyId.localeCompare(b.keyId) ||
    a.userId.localeCompare(b.userId)
  );
}
