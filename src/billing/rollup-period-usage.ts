import { ZERO } from "../domain/decimal.ts";
import type { QueryService } from "../query/usage-query.ts";
import type { UsageTotals } from "./invoice-builder.ts";
import type { PeriodUsage } from "./period-usage.ts";

/**
 * A period's usage from the rollups, through the read path the workspace usage API uses: the
 * range is cut into day, hour and minute runs (raw events only at sub-minute edges), so any
 * zone's month is exact and its cost does not grow with the number of events.
 */
export class RollupPeriodUsage implements PeriodUsage {
  constructor(private readonly query: QueryService) {}

  async usageTotals(accountId: string, start: number, end: number): Promise<UsageTotals[]> {
    const lines = await this.query.totals({ accountId, range: { start, end }, tokens: false });
    const byModel = new Map<string, UsageTotals>();
    for (const l of lines) {
      // one model may have rows at several prices or units: the period's line sums them
      let t = byModel.get(l.modelId);
      if (!t) {
        t = { modelId: l.modelId, meter: null, quantity: ZERO, cost: ZERO, events: 0 };
        byModel.set(l.modelId, t);
      }
      t.quantity += l.quantity;
      t.cost += l.cost;
      t.events += l.requests;
    }
    return [...byModel.values()];
  }
}
