import { joinCost } from "../domain/decimal.ts";
import type { VerifyDifference } from "./store.ts";

type Row = Record<string, unknown>;

/** Shared by both stores' verify: rows of expected-vs-actual and actual-vs-expected joins. */
export function compareRollups(expectedSide: Row[], actualSide: Row[]): VerifyDifference[] {
  const out: VerifyDifference[] = [];
  const sums = (r: Row, p: string) => {
    if (r[`${p}requests`] === null || r[`${p}requests`] === undefined) return null;
    return [
      `requests=${r[`${p}requests`]}`,
      `quantity=${r[`${p}quantity`]}`,
      `cost=${joinCost(r[`${p}cost_nano`] as bigint, r[`${p}cost_atto`] as bigint)}`,
      `tokens=${r[`${p}tokens_prompt`]}/${r[`${p}tokens_completion`]}`,
    ].join(" ");
  };
  const keyOf = (r: Row) =>
    [
      r.account_id,
      r.family,
      r.level,
      r.bucket_start,
      r.model_id,
      r.unit,
      r.unit_price,
      r.currency,
      r.kind,
      r.key_id,
      r.user_id,
    ].join("|");
  for (const r of expectedSide) {
    const expected = sums(r, "");
    const actual = sums(r, "o_");
    if (expected !== actual)
      out.push({ table: "usage_rollups", key: keyOf(r), expected: String(expected), actual: String(actual) });
  }
  for (const r of actualSide) {
    if (sums(r, "o_") !== null) continue;
    const actual = sums(r, "");
    // a row whose sums are all zero (every event corrected away) is not a difference
    if (
      Number(r.requests) === 0 &&
      BigInt(r.quantity as bigint) === 0n &&
      joinCost(r.cost_nano as bigint, r.cost_atto as bigint) === 0n
    )
      continue;
    out.push({ table: "usage_rollups", key: keyOf(r), expected: "null", actual: String(actual) });
  }
  return out;
}
