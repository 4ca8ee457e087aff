import { parseDec } from "../../src/domain/decimal.ts";
import { LEVEL_CODE, rollupDeltas } from "../../src/store/rollup-delta.ts";
import type { UsageEvent } from "../../src/store/store.ts";
import { usageEvent } from "../support/events.ts";

/** Events the migration tests write as an older schema stored them: account "acct", models m-a, m-b. */
export const T0 = Date.parse("2025-06-01T10:00:00Z");

export function event(i: number, over: Partial<UsageEvent> = {}): UsageEvent {
  const quantity = parseDec(String(1 + (i % 3)));
  const unitPrice = parseDec("0.25");
  return usageEvent({
    usageId: `u-${i}`,
    accountId: "acct",
    eventId: `e-${i}`,
    ts: T0 + i * 41_000,
    userId: `user-${i % 2}`,
    keyId: `key-${i % 2}`,
    modelId: i % 4 === 0 ? "m-b" : "m-a",
    quantity,
    unitPrice,
    cost: (quantity * unitPrice) / 10n ** 18n,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  });
}

/** Schema 1's usage_rollups columns: wide rows keyed by every dimension. */
export const WIDE_ROLLUP_COLUMNS =
  "account_id, family, level, bucket_start, model_id, unit, unit_price, currency, kind, key_id, user_id, requests, " +
  "quantity, cost_nano, cost_atto, tokens_prompt, tokens_completion";

/** The rollup rows schema 1 wrote for `events` (no four-hour level), as WIDE_ROLLUP_COLUMNS values. */
export function schema1Rollups(events: UsageEvent[]): unknown[][] {
  return rollupDeltas(events)
    .filter((r) => r.level !== LEVEL_CODE.fourHours)
    .map((r) => [
      r.accountId,
      r.family,
      r.level,
      r.bucketStart,
      r.modelId,
      r.unit,
      r.unitPrice,
      r.currency,
      r.kind,
      r.keyId,
      r.userId,
      r.requests,
      r.quantity,
      r.costNano,
      r.costAtto,
      r.tokensPrompt,
      r.tokensCompletion,
    ]);
}
