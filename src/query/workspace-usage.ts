import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import type { Dec } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { formatLocal, formatUtc } from "../domain/time.ts";
import type { LimitService } from "../limits/limit-service.ts";
import { readAccountPlan } from "../manage/account-plan.ts";
import type { Store } from "../store/store.ts";
import type { QueryService, UsageLine } from "./usage-query.ts";
import {
  encodeCursor,
  pageOfBuckets,
  parseWorkspaceUsageQuery,
  type RawQuery,
} from "./workspace-usage-request.ts";

/** One line of the workspace usage API: sums for one endpoint (model), unit, unit price, currency. */
export interface WorkspaceUsageLine {
  endpointId: string;
  unit: string;
  quantity: Dec;
  unitPrice: Dec;
  cost: Dec;
  currency: string;
  /** the key's label; only when `auth_method` is expanded */
  authMethod?: string;
}

export interface WorkspaceUsageBucket {
  /** local time of the bucket's start with its offset, `2025-01-15T00:00:00-05:00` */
  bucket: string;
  results: WorkspaceUsageLine[];
}

export interface WorkspaceUsageResult {
  timeSeries?: WorkspaceUsageBucket[];
  summary?: WorkspaceUsageLine[];
  nextCursor: string | null;
  hasMore: boolean;
}

/** auth_method of events recorded for a user without a key (e.g. by the operator on its behalf). */
export const USER_TOKEN_LABEL = "User token";
/** auth_method of events with neither key nor user, or whose key no longer exists. */
export const UNKNOWN_LABEL = "Unknown";

/**
 * `GET /v1/models/usage`: an account's usage per time bucket and in total, from the rollups (the
 * cost follows the number of buckets on the page, not the number of events). An account admin
 * reads its own account; the operator's root key names it with `account_id`.
 */
export class WorkspaceUsageService {
  constructor(
    private readonly store: Store,
    private readonly query: QueryService,
    private readonly limits: LimitService,
    private readonly now: () => number,
  ) {}

  async queryWorkspaceUsage(principal: Principal, raw: RawQuery): Promise<WorkspaceUsageResult> {
    // scope before parameters: a member learns nothing about which parameters would be valid
    const accountId = await this.scope(principal, raw.account_id);
    await this.refuseWhenLimited(accountId);
    const req = parseWorkspaceUsageQuery(raw, this.now());
    const family = req.expand.has("auth_method") ? "key" : "account";
    const withSeries = req.expand.has("time_series");
    const { buckets: pageBuckets, hasMore } = withSeries
      ? pageOfBuckets(req.range, req.timeframe, req.zone, req.page, req.limit)
      : { buckets: [], hasMore: false };

    const [series, summaryRead] = await Promise.all([
      pageBuckets.length > 0
        ? this.query.series({
            accountId,
            buckets: pageBuckets,
            family,
            modelIds: req.endpointIds,
            tokens: false,
          })
        : Promise.resolve([] as UsageLine[][]),
      // when this page holds every bucket of the range, the summary is their sum: no second read
      !req.expand.has("summary")
        ? Promise.resolve(null)
        : withSeries && req.page === 1 && !hasMore
          ? Promise.resolve("from-series" as const)
          : this.query.totals({
              accountId,
              family,
              modelIds: req.endpointIds,
              range: req.range,
              tokens: false,
            }),
    ]);

    const summary = summaryRead === "from-series" ? series.flat() : summaryRead;
    const labels = family === "key" ? await this.keyLabels([...series.flat(), ...(summary ?? [])]) : null;
    const result: WorkspaceUsageResult = { nextCursor: hasMore ? encodeCursor(req.page + 1) : null, hasMore };
    if (withSeries) {
      result.timeSeries = pageBuckets.map((b, i) => ({
        bucket: formatLocal(b.start, req.zone),
        results: groupLines(series[i] ?? [], labels),
      }));
    }
    if (summary) result.summary = groupLines(summary, labels);
    return result;
  }

  private async scope(p: Principal, accountParam: unknown): Promise<string> {
    const requested = typeof accountParam === "string" && accountParam.length > 0 ? accountParam : undefined;
    if (accountParam !== undefined && requested === undefined)
      throw DomainError.validation(["query", "account_id"], "must be one account id");
    if (p.kind === "root") {
      if (requested === undefined)
        throw DomainError.validation(["query", "account_id"], "is required with the operator (root) key");
      if (!(await this.store.getAccount(requested))) throw DomainError.notFound("account");
      return requested;
    }
    const accountId = requested ?? p.accountId;
    authorize(p, "read", "account_usage", { accountId });
    return accountId;
  }

  /**
   * 429 while the account has no requests left in its plan's minute or day window. Reading usage
   * consumes none: it is not metered work, and an operator must be able to see why it is limited.
   */
  private async refuseWhenLimited(accountId: string): Promise<void> {
    const { plan } = await readAccountPlan(this.store, accountId, this.now());
    if (!plan) return;
    const { binding } = await this.limits.status(accountId, plan);
    if (binding && binding.remaining === 0) {
      throw new DomainError(
        "LIMIT_EXCEEDED",
        `Rate limit exceeded: ${binding.used} of ${binding.limit} requests per ${binding.window} used; ` +
          `retry after ${formatUtc(binding.resetAt)}`,
      );
    }
  }

  /** Each key's label, looked up once per query. */
  private async keyLabels(lines: UsageLine[]): Promise<Map<string, string>> {
    const ids = [...new Set(lines.map((l) => l.keyId).filter((id) => id !== ""))];
    const keys = await Promise.all(ids.map((id) => this.store.getKey(id)));
    return new Map(ids.map((id, i) => [id, keys[i]?.label ?? UNKNOWN_LABEL]));
  }
}

function labelOf(line: UsageLine, labels: Map<string, string>): string {
  if (line.keyId !== "") return labels.get(line.keyId) ?? UNKNOWN_LABEL;
  return line.userId !== "" ? USER_TOKEN_LABEL : UNKNOWN_LABEL;
}

/**
 * Merges the core's lines (which also split by kind, key and user) into the API's grouping:
 * endpoint, unit, unit price, currency, and the key's label when `labels` is given. Lines differ
 * by unit price, so each line's cost is its quantity x unit_price.
 */
function groupLines(lines: UsageLine[], labels: Map<string, string> | null): WorkspaceUsageLine[] {
  const out = new Map<string, WorkspaceUsageLine>();
  for (const l of lines) {
    const authMethod = labels ? labelOf(l, labels) : undefined;
    const id = [l.modelId, l.unit, l.unitPrice, l.currency, authMethod ?? ""].join("\u0000");
    const line = out.get(id);
    if (line) {
      line.quantity += l.quantity;
      line.cost += l.cost;
    } else {
      out.set(id, {
        endpointId: l.modelId,
        unit: l.unit,
        quantity: l.quantity,
        unitPrice: l.unitPrice,
        cost: l.cost,
        currency: l.currency,
        ...(authMethod !== undefined ? { authMethod } : {}),
      });
    }
  }
  return [...out.values()].sort(compareLines);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function compareLines(a: WorkspaceUsageLine, b: WorkspaceUsageLine): number {
  return (
    cmp(a.endpointId, b.endpointId) ||
    cmp(a.unit, b.unit) ||
    (a.unitPrice < b.unitPrice ? -1 : a.unitPrice > b.unitPrice ? 1 : 0) ||
    cmp(a.currency, b.currency) ||
    cmp(a.authMethod ?? "", b.authMethod ?? "")
  );
}
