import { ZERO } from "../domain/decimal.ts";
import { meterOfLine } from "../domain/meters.ts";
import type { QueryService } from "../query/usage-query.ts";
import type { UsageTotals } from "./invoice-builder.ts";
import type { PeriodUsage } from "./period-usage.ts";

/**
 * A period's usage from the rollups, through the read path the workspace usage API uses: the
 * range is cut into day, hour and minute runs (raw events only at sub-minute edges), so any
 * zone's month is exact and its cost does not grow with the number of events.
 */
export class RollupPeriodUsage implements PeriodUsage {
  constructor(
    private readonly query: QueryService,
    /** a model's billing unit (a meter line is one whose unit is a meter other than it) */
    private readonly unitOf: (modelId: string) => Promise<string | null> = async () => null,
  ) {}

  async usageTotals(accountId: string, start: number, end: number): Promise<UsageTotals[]> {
    const lines = await this.query.totals({ accountId, range: { start, end }, tokens: false });
    const byLine = new Map<string, UsageTotals>();
    const events = new Map<string, number>();
    const units = new Map<string, string | null>();
    for (const l of lines) {
      if (!units.has(l.modelId)) units.set(l.modelId, await this.unitOf(l.modelId));
      const unit = units.get(l.modelId);
      // a model priced per meter bills a line per meter (DESIGN.md "Meters"); otherwise one model
      // may have rows at several prices or units, and the period's line sums them
      const meter = meterOfLine(l.unit, unit);
      const key = `${l.modelId}\u0000${meter ?? ""}`;
      let t = byLine.get(key);
      if (!t) {
        t = { modelId: l.modelId, meter, quantity: ZERO, cost: ZERO, events: 0 };
        byLine.set(key, t);
      }
      t.quantity += l.quantity;
      t.cost += l.cost;
      events.set(l.modelId, (events.get(l.modelId) ?? 0) + l.requests);
    }
    // a request is counted once per model (on its first meter): each line names its model's events
    for (const t of byLine.values()) t.events = events.get(t.modelId) ?? 0;
    return [...byLine.values()];
  }
}
