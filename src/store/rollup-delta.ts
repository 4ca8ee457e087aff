import { type Dec, splitCost, toMicro, toPico } from "../domain/decimal.ts";
import { rollupBuckets } from "../domain/time.ts";
import type { UsageEvent } from "./store.ts";

/** Rollup levels as stored in the `level` column. */
export const LEVEL_CODE = { minute: 1, hour: 2, day: 3 } as const;
/** Rollup families as stored in the `family` column. */
export const FAMILY_CODE = { account: 0, key: 1 } as const;

/** One rollup row's increment: the primary key and the sums to add. */
export interface RollupDelta {
  accountId: string;
  family: number;
  level: number;
  bucketStart: number;
  modelId: string;
  unit: string;
  unitPrice: bigint; // pico
  currency: string;
  kind: string;
  keyId: string;
  userId: string;
  requests: number;
  quantity: bigint; // micro
  cost: Dec;
  tokensPrompt: number;
  tokensCompletion: number;
}

export interface RollupDeltaRow extends Omit<RollupDelta, "cost"> {
  costNano: bigint;
  costAtto: bigint;
}

/**
 * Folds events into rollup increments, one per row touched: three levels (UTC minute, hour, day)
 * times two families (account-wide, and per key and user). Inactive events count nowhere.
 * `sign` is -1 to take events back out (corrections and deletions).
 */
export function rollupDeltas(events: Iterable<UsageEvent>, sign: 1 | -1 = 1): RollupDeltaRow[] {
  const acc = new Map<string, RollupDelta>();
  const s = BigInt(sign);
  for (const e of events) {
    if (!e.statusActive) continue;
    const buckets = rollupBuckets(e.ts);
    const unitPrice = toPico(e.unitPrice);
    const quantity = toMicro(e.quantity) * s;
    const cost = e.cost * s;
    for (const family of [FAMILY_CODE.account, FAMILY_CODE.key]) {
      const keyId = family === FAMILY_CODE.key ? (e.keyId ?? "") : "";
      const userId = family === FAMILY_CODE.key ? (e.userId ?? "") : "";
      for (const [levelName, level] of Object.entries(LEVEL_CODE)) {
        const bucketStart = buckets[levelName as keyof typeof buckets];
        const id = `${e.accountId}\u0000${family}\u0000${level}\u0000${bucketStart}\u0000${e.modelId}\u0000${e.unit}\u0000${unitPrice}\u0000${e.currency}\u0000${e.kind}\u0000${keyId}\u0000${userId}`;
        const row = acc.get(id);
        if (row) {
          row.requests += sign;
          row.quantity += quantity;
          row.cost += cost;
          row.tokensPrompt += e.tokensPrompt * sign;
          row.tokensCompletion += e.tokensCompletion * sign;
        } else {
          acc.set(id, {
            accountId: e.accountId,
            family,
            level,
            bucketStart,
            modelId: e.modelId,
            unit: e.unit,
            unitPrice,
            currency: e.currency,
            kind: e.kind,
            keyId,
            userId,
            requests: sign,
            quantity,
            cost,
            tokensPrompt: e.tokensPrompt * sign,
            tokensCompletion: e.tokensCompletion * sign,
          });
        }
      }
    }
  }
  const rows: RollupDeltaRow[] = [];
  for (const { cost, ...rest } of acc.values()) {
    const { nano, atto } = splitCost(cost);
    rows.push({ ...rest, costNano: nano, costAtto: atto });
  }
  return rows;
}
