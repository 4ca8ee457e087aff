import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import {
  type AlertPeriodRange,
  type AlertRule,
  alertPeriodContaining,
  forecastWindow,
  parseAlertRule,
  ruleLimit,
  type ThresholdOutlook,
} from "../domain/alerts.ts";
import { type Dec, formatDec, ONE, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { uuid7 } from "../domain/ids.ts";
import { nextBoundary } from "../domain/time.ts";
import { readAccountPlan } from "../manage/account-plan.ts";
import type { Log } from "../ops/log.ts";
import type { QueryService, UsageLine } from "../query/usage-query.ts";
import type { AlertRuleRecord } from "../store/notify-store.ts";
import type { Account, Store, UsageEvent } from "../store/store.ts";
import { type PlannedFiring, planCrossings, planForecasts, ruleOutlook } from "./alert-evaluation.ts";
import type { WebhookService } from "./webhook-service.ts";

export type { AlertRuleRecord };

/** A rule as `GET /v1/accounts/{id}/alerts` shows it: with this period's total and outlook. */
export interface RuleView {
  rule: AlertRuleRecord;
  period: AlertPeriodRange;
  total: Dec;
  limit: Dec | null;
  outlook: ThresholdOutlook[];
}

/** How long after a commit the touched accounts are evaluated: one evaluation per burst. */
const EVALUATE_AFTER_MS = 200;

/**
 * Alert rules and their evaluation (DESIGN.md "Webhooks and alerts", docs/decisions/0014).
 *
 * Committed events mark their account (only accounts that have rules) and the instants they fall
 * at; a moment later each marked account's rules are evaluated for the periods those instants
 * fall in, so a backfill into last month fires last month's thresholds. A firing is one row,
 * unique on (rule, period, kind, threshold), written in one transaction with its outbox rows:
 * two instances crossing a threshold together record it once and send it once. A periodic sweep
 * evaluates every rule again (a crossing missed by a crash between commit and evaluation, or
 * reached by a correction, fires then) and plans forecasts.
 */
export class AlertService {
  /** accounts that have at least one rule, refreshed by every sweep and by this instance's changes */
  private ruled = new Set<string>();
  private readonly pending = new Map<string, Set<number>>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly query: QueryService,
    private readonly webhooks: WebhookService,
    private readonly now: () => number,
    private readonly log: Log,
  ) {}

  async create(p: Principal, accountId: string, body: unknown): Promise<AlertRuleRecord> {
    authorize(p, "create", "alert", { accountId }, { notFound: () => DomainError.notFound("account") });
    if (!(await this.store.getAccount(accountId))) throw DomainError.notFound("account");
    const spec = parseAlertRule(body);
    if (spec.modelId !== null && !(await this.store.getModel(spec.modelId))) {
      throw DomainError.validation(["body", "model_id"], "unknown model");
    }
    const rule: AlertRuleRecord = { id: `al_${uuid7()}`, accountId, ...spec, createdAt: this.now() };
    await this.store.createAlertRule(rule);
    this.ruled.add(accountId);
    return rule;
  }

  async list(p: Principal, accountId: string): Promise<RuleView[]> {
    authorize(p, "read", "alert", { accountId }, { notFound: () => DomainError.notFound("account") });
    const account = await this.store.getAccount(accountId);
    if (!account) throw DomainError.notFound("account");
    const now = this.now();
    const views: RuleView[] = [];
    for (const rule of await this.store.listAlertRules(accountId)) {
      const t = await this.totals(account, rule, now);
      const outlook =
        t.limit === null
          ? []
          : (ruleOutlook({ ...t, dailyTotals: await this.dailyTotals(account, rule, now) }) ?? []);
      views.push({
        rule,
        period: t.period,
        total: t.total,
        limit: t.limit,
        outlook,
      });
    }
    return views;
  }

  async get(p: Principal, ruleId: string): Promise<AlertRuleRecord> {
    const rule = await this.store.getAlertRule(ruleId);
    if (!rule) throw DomainError.notFound("alert");
    authorize(p, "read", "alert", { accountId: rule.accountId });
    return rule;
  }

  async delete(p: Principal, ruleId: string): Promise<void> {
    const rule = await this.store.getAlertRule(ruleId);
    if (!rule) throw DomainError.notFound("alert");
    authorize(p, "change", "alert", { accountId: rule.accountId });
    await this.store.deleteAlertRule(ruleId);
  }

  /** The group committer's listener: marks accounts with rules, evaluated a moment later. */
  readonly committed = (inserted: readonly UsageEvent[]): void => {
    if (this.ruled.size === 0) return;
    for (const e of inserted) {
      if (!this.ruled.has(e.accountId)) continue;
      let at = this.pending.get(e.accountId);
      if (!at) {
        at = new Set();
        this.pending.set(e.accountId, at);
      }
      // one instant per UTC hour is enough to name every local day and month touched
      at.add(e.ts - (e.ts % 3_600_000));
    }
    if (this.pending.size > 0 && this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.running = this.running.then(() => this.evaluatePending());
      }, EVALUATE_AFTER_MS);
      this.timer.unref();
    }
  };

  /** Evaluates what commits marked (also called by shutdown, so that nothing marked is left). */
  async evaluatePending(): Promise<void> {
    const work = [...this.pending];
    this.pending.clear();
    for (const [accountId, instants] of work) {
      try {
        await this.evaluate(accountId, [...instants]);
      } catch (err) {
        this.log.error({ err, account_id: accountId }, "alerts: evaluating committed usage failed");
      }
    }
  }

  /**
   * Fires every threshold of the account's rules that the totals of the periods containing
   * `instants` (and the current period) reach and that has not fired in that period.
   */
  async evaluate(accountId: string, instants: readonly number[]): Promise<number> {
    const rules = await this.store.listAlertRules(accountId);
    if (rules.length === 0) return 0;
    const account = await this.store.getAccount(accountId);
    if (!account) return 0;
    const now = this.now();
    let fired = 0;
    for (const rule of rules) {
      const starts = new Set<number>();
      for (const at of [now, ...instants]) {
        const period = alertPeriodContaining(
          Math.min(at, now),
          rule.period as AlertRule["period"],
          timezoneOf(account),
        );
        if (starts.has(period.start)) continue;
        starts.add(period.start);
        const t = await this.totals(account, rule, now, period);
        const firings = await this.store.listAlertFirings(rule.id, period.start);
        const crossed = new Set(firings.filter((f) => f.kind === "crossed").map((f) => f.threshold));
        for (const planned of planCrossings({ ...t, fired: crossed })) {
          await this.record(planned, account.id, t.total, t.limit!, now, null);
          fired++;
        }
      }
    }
    return fired;
  }

  /** One round over every rule: crossings (the safety net) and forecasts of the current periods. */
  async sweep(): Promise<void> {
    const accounts = await this.store.listAlertAccounts();
    this.ruled = new Set(accounts);
    const now = this.now();
    for (const accountId of accounts) {
      try {
        await this.evaluate(accountId, []);
        await this.forecast(accountId, now);
      } catch (err) {
        this.log.error({ err, account_id: accountId }, "alerts: the sweep failed for an account");
      }
    }
  }

  start(sweepMs: number): void {
    const tick = () => {
      this.running = this.running
        .then(() => this.sweep())
        .catch((err: unknown) => this.log.error({ err }, "alerts: sweep failed"));
    };
    tick();
    this.sweeper = setInterval(tick, sweepMs);
    this.sweeper.unref();
  }

  /** Stops the sweep and evaluates what commits have marked, before the store closes. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await this.evaluatePending();
  }

  private async forecast(accountId: string, now: number): Promise<void> {
    const account = await this.store.getAccount(accountId);
    if (!account) return;
    for (const rule of await this.store.listAlertRules(accountId)) {
      const t = await this.totals(account, rule, now);
      if (t.limit === null) continue;
      const dailyTotals = await this.dailyTotals(account, rule, now);
      const outlook = ruleOutlook({ ...t, dailyTotals }) ?? [];
      const firings = await this.store.listAlertFirings(rule.id, t.period.start);
      const forecastFired = new Set(firings.filter((f) => f.kind === "forecast").map((f) => f.threshold));
      for (const planned of planForecasts({ ...t, dailyTotals, forecastFired })) {
        const o = outlook.find(
          (x): x is Extract<ThresholdOutlook, { status: "projected" }> =>
            x.status === "projected" && x.threshold === planned.threshold,
        );
        await this.record(planned, account.id, t.total, t.limit, now, o?.at ?? null);
      }
    }
  }

  private async record(
    planned: PlannedFiring,
    accountId: string,
    total: Dec,
    limit: Dec,
    now: number,
    forecastAt: number | null,
  ): Promise<void> {
    const cause = `${planned.kind}:${planned.ruleId}:${planned.periodStart}:${formatDec(planned.threshold)}`;
    const messages = await this.webhooks.rowsFor(planned.message, accountId, cause);
    await this.store.recordAlertFiring(
      {
        ruleId: planned.ruleId,
        periodStart: planned.periodStart,
        kind: planned.kind,
        threshold: planned.threshold,
        firedAt: now,
        value: total,
        limit,
        forecastAt,
      },
      messages,
    );
  }

  /** The rule's total over a period (the one containing `now` by default), and its limit. */
  private async totals(account: Account, rule: AlertRuleRecord, now: number, period?: AlertPeriodRange) {
    const timezone = timezoneOf(account);
    const domainRule = rule as AlertRule;
    const range = period ?? alertPeriodContaining(now, domainRule.period, timezone);
    const lines = await this.query.totals({
      accountId: account.id,
      family: "account",
      range,
      modelIds: rule.modelId === null ? undefined : [rule.modelId],
      tokens: false,
    });
    // the plan in force at the end of the period (now, for the current one)
    const { plan } = await readAccountPlan(this.store, account.id, Math.min(now, range.end - 1));
    const limit = ruleLimit(domainRule, {
      includedQuantity: rule.modelId === null ? null : (plan?.included[rule.modelId] ?? null),
      monthlyBudget: account.budget?.monthlyUsd ?? null,
    });
    return { rule: domainRule, timezone, period: range, limit, total: metricOf(rule.metric, lines), now };
  }

  /** The metric per local day over the 7 complete days before today (the forecast's history). */
  private async dailyTotals(account: Account, rule: AlertRuleRecord, now: number): Promise<Dec[]> {
    const timezone = timezoneOf(account);
    const window = forecastWindow(now, timezone);
    const buckets: { start: number; end: number }[] = [];
    for (let start = window.start; start < window.end; ) {
      const end = nextBoundary(start, "day", timezone);
      buckets.push({ start, end });
      start = end;
    }
    const series = await this.query.series({
      accountId: account.id,
      buckets,
      modelIds: rule.modelId === null ? undefined : [rule.modelId],
      tokens: false,
    });
    return series.map((lines) => metricOf(rule.metric, lines));
  }
}

const timezoneOf = (a: Account): string => a.billingTimezone ?? "UTC";

/** Quantity (every unit of the lines summed), cost in USD (budgets are USD), or requests. */
function metricOf(metric: string, lines: readonly UsageLine[]): Dec {
  let sum = ZERO;
  for (const l of lines) {
    if (metric === "quantity") sum += l.quantity;
    else if (metric === "cost") sum += l.currency === "USD" ? l.cost : ZERO;
    else sum += BigInt(l.requests) * ONE;
  }
  return sum;
}
