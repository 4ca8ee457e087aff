import { expect } from "vitest";
import { ONE, parseDec } from "../../../src/domain/decimal.ts";
import { expectStatus, type Harness } from "../../support/harness.ts";

/** The seed's example body. */
export const SEED_BODY = {
  api_name: "llm_query",
  endpoint: "/chat",
  units_used: 346,
  cost_usd: 0.0043,
  api_key_used: "pk_live_abc123",
};

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Logs one record through `POST /usage` and returns the answer's body. */
export async function logUsage(
  h: Harness,
  key: string,
  body: Record<string, unknown> = SEED_BODY,
  headers: Record<string, string> = {},
) {
  const res = await h.request({ method: "POST", url: "/usage", key, payload: body, headers });
  expectStatus(res, 201);
  return res.json() as Record<string, unknown> & { usage_id: string };
}

/** Exact decimal from text, for comparing with the core's bigint values. */
export const d = (text: string) => parseDec(text);
export const whole = (n: number) => BigInt(n) * ONE;

/** The account's all-time totals per model (lines of different unit prices summed), from the rollups. */
export async function accountTotals(h: Harness, accountId: string) {
  const byModel = new Map<string, { modelId: string; requests: number; quantity: bigint; cost: bigint }>();
  for (const l of await h.services.query.totals({ accountId })) {
    const t = byModel.get(l.modelId) ?? { modelId: l.modelId, requests: 0, quantity: 0n, cost: 0n };
    t.requests += l.requests;
    t.quantity += l.quantity;
    t.cost += l.cost;
    byModel.set(l.modelId, t);
  }
  return [...byModel.values()];
}

export async function expectRollupsConsistent(h: Harness): Promise<void> {
  expect(await h.services.store.verifyRollups()).toEqual([]);
}
