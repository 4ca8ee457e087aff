import { type Dec, ONE, splitCost, toMicro, toPico } from "../domain/decimal.ts";
import { type MeterLine, tokenSide } from "../domain/meters.ts";
import { DAY_MS, FOUR_HOURS_MS, HOUR_MS, MINUTE_MS as MINUTE, rollupBuckets } from "../domain/time.ts";
import type { UsageEvent } from "./store.ts";

/** Rollup levels as stored in the `level` column. */
export const LEVEL_CODE = { minute: 1, hour: 2, day: 3, fourHours: 4 } as const;
/** Each stored level's bucket length: rebuilding rollups from events groups by it. */
export const LEVEL_MS: Record<number, number> = {
  [LEVEL_CODE.minute]: MINUTE,
  [LEVEL_CODE.hour]: HOUR_MS,
  [LEVEL_CODE.day]: DAY_MS,
  [LEVEL_CODE.fourHours]: FOUR_HOURS_MS,
};
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
  unitPrice: bigint; // atto while folding, pico in RollupDeltaRow
  currency: string;
  kind: string;
  keyId: string;
  userId: string;
  requests: number;
  quantity: bigint; // atto while folding, micro in RollupDeltaRow
  cost: Dec;
  tokensPrompt: number;
  tokensCompletion: number;
}

export interface RollupDeltaRow extends Omit<RollupDelta, "cost"> {
  costNano: bigint;
  costAtto: bigint;
}

/**
 * The dimensions both stores intern as one rollup_series row (docs/decisions/0007), as columns
 * and in that order as values.
 */
export const SERIES_COLUMNS = [
  "account_id",
  "family",
  "model_id",
  "unit",
  "unit_price",
  "currency",
  "kind",
  "key_id",
  "user_id",
] as const;

export function seriesValues(r: RollupDeltaRow): unknown[] {
  return [r.accountId, r.family, r.modelId, r.unit, r.unitPrice, r.currency, r.kind, r.keyId, r.userId];
}

/** One string per series (a template: the ingest path builds one per rollup row). */
export function seriesKey(r: RollupDeltaRow): string {
  return `${r.accountId}\u0000${r.family}\u0000${r.modelId}\u0000${r.unit}\u0000${r.unitPrice}\u0000${r.currency}\u0000${r.kind}\u0000${r.keyId}\u0000${r.userId}`;
}

/** `seriesKey` of a rollup_series row read back (columns by name). */
export function seriesKeyOfColumns(row: Record<string, unknown>): string {
  return SERIES_COLUMNS.map((c) => row[c]).join("\u0000");
}

/**
 * Folds events into rollup increments, one per row touched: four levels (UTC minute, hour,
 * four-hour block, day) times two families (account-wide, and per key and user). Inactive events count nowhere.
 * `sign` is -1 to take events back out (corrections and deletions).
 *
 * Events are first summed per finest row (minute, key, user), then each of those fans out to its
 * eight rollup rows: live traffic puts many events in one minute, so the fan-out runs per group,
 * not per event.
 */
export function rollupDeltas(events: Iterable<UsageEvent>, sign: 1 | -1 = 1): RollupDeltaRow[] {
  // hot path (every append): plain loops and explicit fields; spreads and rest patterns cost more
  // than the sums here
  const fine = new Map<string, RollupDelta>();
  const addFine = (
    e: UsageEvent,
    minute: number,
    unit: string,
    unitPrice: Dec,
    requests: number,
    quantity: Dec,
    cost: Dec,
    tokensPrompt: number,
    tokensCompletion: number,
  ) => {
    const keyId = e.keyId ?? "";
    const userId = e.userId ?? "";
    const id = `${minute}\u0000${e.accountId}\u0000${e.modelId}\u0000${keyId}\u0000${userId}\u0000${unit}\u0000${e.kind}\u0000${e.currency}\u0000${unitPrice}`;
    const row = fine.get(id);
    if (row) {
      row.requests += requests;
      row.quantity += quantity;
      row.cost += cost;
      row.tokensPrompt += tokensPrompt;
      row.tokensCompletion += tokensCompletion;
    } else {
      fine.set(id, {
        accountId: e.accountId,
        family: FAMILY_CODE.key,
        level: LEVEL_CODE.minute,
        bucketStart: minute,
        modelId: e.modelId,
        unit,
        unitPrice,
        currency: e.currency,
        kind: e.kind,
        keyId,
        userId,
        requests,
        quantity,
        cost,
        tokensPrompt,
        tokensCompletion,
      });
    }
  };
  for (const e of events) {
    if (!e.statusActive) continue;
    const minute = e.ts - (((e.ts % MINUTE) + MINUTE) % MINUTE);
    const meters = e.meters;
    if (!meters || meters.length === 0) {
      addFine(e, minute, e.unit, e.unitPrice, 1, e.quantity, e.cost, e.tokensPrompt, e.tokensCompletion);
      continue;
    }
    // a meter-priced event is one line per meter (unit = the meter), and still one request: the
    // first line counts it; token meters count as prompt (input_*, cached_*) or completion (output_*)
    for (let i = 0; i < meters.length; i++) {
      const l = meters[i];
      const t = meterTokens(l);
      addFine(e, minute, l.meter, l.unitPrice, i === 0 ? 1 : 0, l.quantity, l.cost, t.prompt, t.completion);
    }
  }
  const out = new Map<string, RollupDelta>();
  const add = (g: RollupDelta, family: number, level: number, bucketStart: number, dims: string) => {
    const keyId = family === FAMILY_CODE.key ? g.keyId : "";
    const userId = family === FAMILY_CODE.key ? g.userId : "";
    const id = `${family}\u0000${level}\u0000${bucketStart}\u0000${dims}\u0000${keyId}\u0000${userId}`;
    const row = out.get(id);
    if (row) {
      row.requests += g.requests;
      row.quantity += g.quantity;
      row.cost += g.cost;
      row.tokensPrompt += g.tokensPrompt;
      row.tokensCompletion += g.tokensCompletion;
      return;
    }
    out.set(id, {
      accountId: g.accountId,
      family,
      level,
      bucketStart,
      modelId: g.modelId,
      unit: g.unit,
      unitPrice: g.unitPrice,
      currency: g.currency,
      kind: g.kind,
      keyId,
      userId,
      requests: g.requests,
      quantity: g.quantity,
      cost: g.cost,
      tokensPrompt: g.tokensPrompt,
      tokensCompletion: g.tokensCompletion,
    });
  };
  for (const g of fine.values()) {
    const buckets = rollupBuckets(g.bucketStart);
    const dims = `${g.accountId}\u0000${g.modelId}\u0000${g.unit}\u0000${g.unitPrice}\u0000${g.currency}\u0000${g.kind}`;
    for (const family of [FAMILY_CODE.account, FAMILY_CODE.key]) {
      add(g, family, LEVEL_CODE.minute, buckets.minute, dims);
      add(g, family, LEVEL_CODE.hour, buckets.hour, dims);
      add(g, family, LEVEL_CODE.fourHours, buckets.fourHours, dims);
      add(g, family, LEVEL_CODE.day, buckets.day, dims);
    }
  }
  const s = BigInt(sign);
  const rows: RollupDeltaRow[] = [];
  for (const r of out.values()) {
    const { nano, atto } = splitCost(r.cost * s);
    rows.push({
      accountId: r.accountId,
      family: r.family,
      level: r.level,
      bucketStart: r.bucketStart,
      modelId: r.modelId,
      unit: r.unit,
      unitPrice: toPico(r.unitPrice),
      currency: r.currency,
      kind: r.kind,
      keyId: r.keyId,
      userId: r.userId,
      requests: r.requests * sign,
      quantity: toMicro(r.quantity) * s,
      costNano: nano,
      costAtto: atto,
      tokensPrompt: r.tokensPrompt * sign,
      tokensCompletion: r.tokensCompletion * sign,
    });
  }
  return rows;
}

/**
 * The rollup increments of a correction: `before` taken out, `after` (null for a deletion) put
 * in, folded into one row per rollup key. Both stores apply corrections through this, and a
 * PostgreSQL statement may not touch one row twice.
 */
export function correctionDeltas(before: UsageEvent, after: UsageEvent | null): RollupDeltaRow[] {
  const rows = new Map<string, RollupDeltaRow>();
  const fold = (r: RollupDeltaRow) => {
    const key = `${r.level}\u0000${r.bucketStart}\u0000${seriesKey(r)}`;
    const same = rows.get(key);
    if (!same) {
      rows.set(key, { ...r });
      return;
    }
    same.requests += r.requests;
    same.quantity += r.quantity;
    same.tokensPrompt += r.tokensPrompt;
    same.tokensCompletion += r.tokensCompletion;
    // keep the cost split canonical (0 <= atto < 1e9)
    const { nano, atto } = splitCost(
      (same.costNano + r.costNano) * 1_000_000_000n + same.costAtto + r.costAtto,
    );
    same.costNano = nano;
    same.costAtto = atto;
  };
  for (const r of rollupDeltas([before], -1)) fold(r);
  if (after) for (const r of rollupDeltas([after])) fold(r);
  return [...rows.values()];
}

/** The prompt or completion tokens one meter line stands for (whole tokens). */
export function meterTokens(l: MeterLine): { prompt: number; completion: number } {
  const side = tokenSide(l.meter);
  if (side === null) return { prompt: 0, completion: 0 };
  const n = Number(l.quantity / ONE);
  return side === "completion" ? { prompt: 0, completion: n } : { prompt: n, completion: 0 };
}
