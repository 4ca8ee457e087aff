import { randomUUID } from "node:crypto";
import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import {
  type BillingPeriod,
  periodContaining,
  periodOfLabel,
  previousPeriod,
  utcYear,
} from "../domain/billing-period.ts";
import { type Dec, formatDec, parseDec, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { formatUtc } from "../domain/time.ts";
import type { InvoiceEventData } from "../notify/messages.ts";
import { ANNOUNCE_NOTHING, type Announce } from "../notify/webhook-service.ts";
import type { Account, InvoiceRecord, NewInvoice, Store } from "../store/store.ts";
import type { PlanBilling } from "./charge-schema.ts";
import {
  type Adjustment,
  chargeFor,
  finalizeInvoice,
  formatInvoiceNumber,
  type Invoice,
  type InvoiceDocument,
  invoiceDocument,
  invoiceFromDocument,
  lateUsageAdjustment,
  needsNumber,
  type UsageTotals,
  voidInvoice,
} from "./invoice-builder.ts";
import { draftInvoice, type PeriodUsage, type PlanActivation, subscriptionSegments } from "./period-usage.ts";
import { planBillingOf } from "./plan-billing.ts";
import { type InvoiceOperator, renderInvoicePdf } from "./render-pdf.ts";

export type { Invoice, InvoiceOperator };

/**
 * Invoices as verbs: the live draft of the open period, closing a period (idempotent, race-free
 * across instances), void, list and read. A finalized invoice's document and PDF are written once;
 * usage that lands in a closed period later is billed as adjustments on the next invoice.
 */

/** What an invoice billed of one period, per plan segment: late usage is measured against it. */
interface CoveredSegment {
  start: number;
  end: number;
  planId: string | null;
  usage: { model_id: string; meter: string | null; quantity: string; cost: string }[];
}
type Coverage = Record<string, CoveredSegment[]>;

/** An invoice in the store with what answers need: the invoice and its stored PDF. */
export interface StoredInvoice {
  invoice: Invoice;
  pdf: Buffer;
}

/** How many times a close is tried again after another instance took the number it meant to use. */
const NUMBER_RACE_ATTEMPTS = 8;

/** Invoices committed in one transaction when every account's period closes. */
const CLOSE_BATCH = 100;

/** A period's draft invoice, ready to be numbered and inserted. */
interface Drafted {
  account: Account;
  label: string;
  period: BillingPeriod;
  draft: Invoice;
  coverage: Coverage;
}

export class InvoiceService {
  constructor(
    private readonly store: Store,
    private readonly usage: PeriodUsage,
    private readonly now: () => number,
    private readonly operator: InvoiceOperator,
    /** invoice.finalized / invoice.voided for webhook subscribers, written with the invoice */
    private readonly announce: Announce = ANNOUNCE_NOTHING,
  ) {}

  /** The open period's invoice, live, `status: "draft"` (late usage of closed periods included). */
  async upcoming(p: Principal, accountId: string): Promise<Invoice> {
    const account = await this.readableAccount(p, accountId);
    const period = periodContaining(this.now(), account.billingTimezone ?? "UTC");
    return (await this.draft(account, period)).invoice;
  }

  /**
   * Finalizes `label` ("2026-11") for one account, or for every account with usage, a base fee or
   * an adjustment in it. Invoices already closed are answered as they are.
   */
  async close(p: Principal, label: string, accountId?: string): Promise<Invoice[]> {
    authorize(p, "create", "invoice");
    if (accountId !== undefined) {
      const account = await this.store.getAccount(accountId);
      if (!account) throw DomainError.notFound("account");
      return [await this.closeAccount(account, label, true)];
    }
    // the label is checked once before any account is looked at
    periodOfLabel(label, "UTC");
    return this.closeMany(() => label);
  }

  /**
   * The automatic close: every account's previous period, once it ended `graceMs` ago. Returns the
   * invoices made now or before.
   */
  async closeDue(graceMs: number): Promise<Invoice[]> {
    const at = this.now() - graceMs;
    return this.closeMany(
      (account) => previousPeriod(periodContaining(at, account.billingTimezone ?? "UTC")).label,
    );
  }

  async list(p: Principal, accountId: string): Promise<Invoice[]> {
    await this.readableAccount(p, accountId);
    return (await this.store.listInvoices(accountId)).map((r) => invoiceOf(r));
  }

  async get(p: Principal, id: string): Promise<StoredInvoice> {
    const record = await this.store.getInvoice(id);
    authorize(p, "read", "invoice", { accountId: record?.accountId ?? null });
    if (!record) throw DomainError.notFound("invoice");
    return { invoice: invoiceOf(record), pdf: record.pdf };
  }

  async void(p: Principal, id: string): Promise<Invoice> {
    const record = await this.store.getInvoice(id);
    authorize(p, "change", "invoice", { accountId: record?.accountId ?? null });
    if (!record) throw DomainError.notFound("invoice");
    const invoice = invoiceOf(record);
    if (invoice.status === "void") return invoice;
    const voided = voidInvoice(invoice);
    const at = this.now();
    const announced = await this.announce(
      "invoice.voided",
      invoice.accountId,
      invoiceEventData(voided),
      `invoice.voided:${id}`,
      at,
    );
    if (!(await this.store.voidInvoice(id, announced))) {
      // voided by another request meanwhile: the same answer
      return invoiceOf((await this.store.getInvoice(id)) ?? record);
    }
    return voided;
  }

  private async readableAccount(p: Principal, accountId: string): Promise<Account> {
    authorize(p, "read", "invoice", { accountId }, { notFound: () => DomainError.notFound("account") });
    const account = await this.store.getAccount(accountId);
    if (!account) throw DomainError.notFound("account");
    return account;
  }

  /**
   * Closes one period (`labelOf`) of every account, in account order. Invoices are committed in
   * batches of CLOSE_BATCH, numbered in order, one transaction each (a transaction per invoice
   * was a sync to disk per invoice); a batch that meets another instance's close is redone one
   * account at a time by closeAccount, which settles such races.
   */
  private async closeMany(labelOf: (account: Account) => string): Promise<Invoice[]> {
    const out: (Invoice | null)[] = [];
    const periods = new Map<string, BillingPeriod>();
    let batch: { at: number; drafted: Drafted }[] = [];
    const commit = async () => {
      for (const [i, inv] of (await this.commitBatch(batch.map((b) => b.drafted))).entries())
        out[batch[i].at] = inv;
      batch = [];
    };
    for (const id of await this.store.listAccountIds()) {
      const account = await this.store.getAccount(id);
      if (!account) continue;
      const label = labelOf(account);
      const zone = account.billingTimezone ?? "UTC";
      let period = periods.get(`${label} ${zone}`);
      if (!period) {
        period = periodOfLabel(label, zone);
        periods.set(`${label} ${zone}`, period);
      }
      let prepared: Awaited<ReturnType<InvoiceService["prepareClose"]>>;
      try {
        prepared = await this.prepareClose(account, label, period, false);
      } catch (err) {
        // the accounts before this one are closed, as when each committed alone
        if (batch.length > 0) await commit();
        throw err;
      }
      if (!("draft" in prepared)) {
        out.push(prepared.invoice);
        continue;
      }
      batch.push({ at: out.length, drafted: prepared });
      out.push(null);
      if (batch.length === CLOSE_BATCH) await commit();
    }
    if (batch.length > 0) await commit();
    return out.filter((inv) => inv !== null);
  }

  /** A batch of drafts finalized with consecutive numbers and inserted together. */
  private async commitBatch(batch: Drafted[]): Promise<(Invoice | null)[]> {
    const issuedAt = this.now();
    const year = utcYear(issuedAt);
    let last = await this.store.lastInvoiceNumber(year);
    const invoices: Invoice[] = [];
    const items: NewInvoice[] = [];
    for (const d of batch) {
      const sequence = needsNumber(d.draft) ? ++last : null;
      const { invoice, item } = await this.finalized(d, issuedAt, year, sequence);
      invoices.push(invoice);
      items.push(item);
    }
    try {
      await this.store.insertInvoices(items);
      return invoices;
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== "CONFLICT") throw err;
      const out: (Invoice | null)[] = [];
      for (const d of batch) out.push(await this.closeAccount(d.account, d.label, false));
      return out;
    }
  }

  /** The period's existing invoice, null when there is nothing to bill, or its draft. */
  private async prepareClose(
    account: Account,
    label: string,
    period: BillingPeriod,
    always: boolean,
  ): Promise<{ invoice: Invoice | null } | Drafted> {
    if (period.end > this.now()) {
      throw DomainError.validation(
        ["period"],
        `${label} has not ended in ${period.timezone}: it cannot be closed yet`,
      );
    }
    const existing = await this.store.getInvoiceOfPeriod(account.id, label);
    if (existing) return { invoice: invoiceOf(existing) };
    const { invoice: draft, coverage } = await this.draft(account, period);
    if (!always && draft.lines.length === 0 && draft.adjustments.length === 0) return { invoice: null };
    return { account, label, period, draft, coverage };
  }

  /** The draft finalized under a number, its PDF rendered, as the store inserts it. */
  private async finalized(
    d: Drafted,
    issuedAt: number,
    year: number,
    sequence: number | null,
  ): Promise<{ invoice: Invoice; item: NewInvoice }> {
    const { account, period } = d;
    const invoice = finalizeInvoice(
      d.draft,
      issuedAt,
      sequence === null ? null : formatInvoiceNumber(year, sequence),
    );
    const pdf = await renderInvoicePdf(invoice, { operator: this.operator, accountName: account.name });
    const record: InvoiceRecord = {
      id: invoice.id,
      accountId: account.id,
      period: d.label,
      periodStart: period.start,
      periodEnd: period.end,
      timezone: period.timezone,
      status: invoice.status as "finalized" | "no_charge",
      number: invoice.number,
      currency: invoice.currency,
      document: JSON.stringify(invoiceDocument(invoice, { decimal: formatDec })),
      pdf,
      coverage: JSON.stringify(d.coverage),
      issuedAt,
    };
    const messages = await this.announce(
      "invoice.finalized",
      account.id,
      invoiceEventData(invoice),
      `invoice.finalized:${invoice.id}`,
      issuedAt,
    );
    return { invoice, item: { record, numbered: sequence === null ? null : { year, sequence }, messages } };
  }

  private closeAccount(account: Account, label: string, always: true): Promise<Invoice>;
  private closeAccount(account: Account, label: string, always: boolean): Promise<Invoice | null>;
  private async closeAccount(account: Account, label: string, always: boolean): Promise<Invoice | null> {
    const period = periodOfLabel(label, account.billingTimezone ?? "UTC");
    const prepared = await this.prepareClose(account, label, period, always);
    if (!("draft" in prepared)) return prepared.invoice;
    for (let attempt = 0; attempt < NUMBER_RACE_ATTEMPTS; attempt++) {
      const issuedAt = this.now();
      const year = utcYear(issuedAt);
      const sequence = needsNumber(prepared.draft) ? (await this.store.lastInvoiceNumber(year)) + 1 : null;
      const { invoice, item } = await this.finalized(prepared, issuedAt, year, sequence);
      try {
        await this.store.insertInvoice(item.record, item.numbered, item.messages);
        return invoice;
      } catch (err) {
        if (!(err instanceof DomainError) || err.code !== "CONFLICT") throw err;
        // another instance closed this period first (answer its invoice), or took the number
        const theirs = await this.store.getInvoiceOfPeriod(account.id, label);
        if (theirs) return invoiceOf(theirs);
      }
    }
    throw new DomainError("CONFLICT", "invoice numbers are being taken too fast: try again");
  }

  /** The period's draft with the adjustments for late usage, and the usage it covers. */
  private async draft(
    account: Account,
    period: BillingPeriod,
  ): Promise<{ invoice: Invoice; coverage: Coverage }> {
    const subscriptions = await this.store.listSubscriptions(account.id);
    const activations: PlanActivation[] = subscriptions.map((s) => ({
      planId: s.planId,
      activatedAt: s.activatedAt,
      endsAt: s.endsAt ?? null,
    }));
    const billings = new Map<string, PlanBilling | null>();
    for (const s of subscriptions) {
      if (!billings.has(s.planId))
        billings.set(s.planId, planBillingOf((await this.store.getPlan(s.planId))?.billing));
    }
    const planBilling = (planId: string) => billings.get(planId) ?? null;
    const late = await this.lateUsage(account.id, period, planBilling);
    const coverage: Coverage = { ...late.coverage };
    const segments: CoveredSegment[] = [];
    // the segments' usage is read once for the document and once for the coverage: cache it
    const reads = new Map<string, UsageTotals[]>();
    const source: PeriodUsage = {
      usageTotals: async (accountId, start, end) => {
        const usage = await this.usage.usageTotals(accountId, start, end);
        reads.set(`${start}:${end}`, usage);
        return usage;
      },
    };
    const invoice = await draftInvoice(source, {
      id: randomUUID(),
      accountId: account.id,
      period,
      activations,
      planBilling,
      adjustments: late.adjustments,
    });
    for (const s of subscriptionSegments(period, activations)) {
      segments.push({ ...s, usage: coveredUsage(reads.get(`${s.start}:${s.end}`) ?? []) });
    }
    coverage[period.label] = segments;
    return { invoice, coverage };
  }

  /**
   * Usage that landed in closed periods after they were billed: for each closed period, its
   * current usage per plan segment against what the latest invoice covering it billed, re-rated
   * under that segment's plan (invoice-builder's lateUsageAdjustment).
   */
  private async lateUsage(
    accountId: string,
    period: BillingPeriod,
    planBilling: (planId: string) => PlanBilling | null,
  ): Promise<{ adjustments: Adjustment[]; coverage: Coverage }> {
    const records = (await this.store.listInvoices(accountId)).filter(
      (r) => r.status !== "void" && r.periodStart < period.start,
    );
    // what is billed of each closed period: the coverage of the latest invoice that covers it
    const billed = new Map<string, CoveredSegment[]>();
    const closed = new Set(records.map((r) => r.period));
    for (const r of [...records].sort((a, b) => a.issuedAt - b.issuedAt)) {
      const coverage = JSON.parse(r.coverage) as Coverage;
      for (const [label, segments] of Object.entries(coverage))
        if (closed.has(label)) billed.set(label, segments);
    }
    const adjustments: Adjustment[] = [];
    const coverage: Coverage = {};
    for (const [label, segments] of [...billed.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const now: CoveredSegment[] = [];
      let changed = false;
      for (const seg of segments) {
        const current = await this.usage.usageTotals(accountId, seg.start, seg.end);
        const billing = seg.planId === null ? null : planBilling(seg.planId);
        const before = new Map(seg.usage.map((u) => [`${u.model_id}\u0000${u.meter ?? ""}`, u]));
        const after = new Map(current.map((u) => [`${u.modelId}\u0000${u.meter ?? ""}`, u]));
        for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
          const b = before.get(key);
          const a = after.get(key);
          const modelId = a?.modelId ?? b?.model_id ?? "";
          const meter = a?.meter ?? b?.meter ?? null;
          const was = { quantity: dec(b?.quantity), cost: dec(b?.cost) };
          const is = { quantity: a?.quantity ?? ZERO, cost: a?.cost ?? ZERO };
          if (was.quantity === is.quantity && was.cost === is.cost) continue;
          changed = true;
          adjustments.push(
            lateUsageAdjustment({
              period: label,
              charge: chargeFor(billing, modelId, meter),
              billed: was,
              late: { quantity: is.quantity - was.quantity, cost: is.cost - was.cost },
            }),
          );
        }
        now.push({ ...seg, usage: coveredUsage(current) });
      }
      if (changed) coverage[label] = now;
    }
    return { adjustments, coverage };
  }
}

function coveredUsage(usage: readonly UsageTotals[]): CoveredSegment["usage"] {
  return usage.map((u) => ({
    model_id: u.modelId,
    meter: u.meter,
    quantity: formatDec(u.quantity),
    cost: formatDec(u.cost),
  }));
}

const dec = (v: string | undefined): Dec => (v === undefined ? ZERO : parseDec(v));

/** The stored invoice; its status column is the truth (a void changes nothing else). */
function invoiceOf(r: InvoiceRecord): Invoice {
  const invoice = invoiceFromDocument(JSON.parse(r.document) as InvoiceDocument);
  return { ...invoice, status: r.status };
}

/** The local command and the timer close as the operator. */
export const OPERATOR: Principal = { kind: "root", keyId: null };

/** What an invoice event says: enough to act on without fetching, the document a GET away. */
function invoiceEventData(inv: Invoice): InvoiceEventData {
  return {
    account_id: inv.accountId,
    invoice_id: inv.id,
    number: inv.number,
    status: inv.status as InvoiceEventData["status"],
    period: {
      start: formatUtc(inv.period.start),
      end: formatUtc(inv.period.end),
      timezone: inv.period.timezone,
    },
    currency: inv.currency,
    subtotal: inv.subtotal,
    total: inv.total,
    issued_at: inv.issuedAt === null ? null : formatUtc(inv.issuedAt),
  };
}
