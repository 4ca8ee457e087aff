import { type Dec, ZERO } from "../domain/decimal.ts";
import { ALL_TIME, type QueryService } from "../query/usage-query.ts";
import type { Store } from "../store/store.ts";
import type { SpendReader } from "./budget-service.ts";

/**
 * Committed spend from the rollups through the read path (a cost per bucket, never a scan of
 * events), so a budget check costs what a usage query of its range costs. Budgets and credit are
 * in USD: costs in another currency do not count against them.
 */
export class QuerySpendReader implements SpendReader {
  constructor(
    private readonly query: QueryService,
    private readonly store: Pick<Store, "listPayments">,
  ) {}

  async costBetween(accountId: string, start: number, end: number): Promise<Dec> {
    return this.usdCost(accountId, { start, end });
  }

  async credit(accountId: string): Promise<{ payments: Dec; cost: Dec }> {
    const [payments, cost] = await Promise.all([
      this.store.listPayments(accountId),
      this.usdCost(accountId, ALL_TIME),
    ]);
    let paid = ZERO;
    for (const p of payments) paid += p.amountUsd;
    return { payments: paid, cost };
  }

  private async usdCost(accountId: string, range: { start: number; end: number }): Promise<Dec> {
    const lines = await this.query.totals({ accountId, family: "account", range, tokens: false });
    let sum = ZERO;
    for (const l of lines) if (l.currency === "USD") sum += l.cost;
    return sum;
  }
}
