import { api } from "./api.js";
import { el, responsive, showDecimal, showInstant, showMoney } from "./format.js";

const STATUS = {
  draft: "Draft (open period)",
  finalized: "Finalized",
  no_charge: "No charge",
  void: "Void",
};

function table(caption, id, headers, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    responsive(
      el(
        "table",
        { id },
        el("caption", { text: caption }),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            headers.map((h) => el("th", { scope: "col", class: h.num ? "num" : undefined, text: h.label })),
          ),
        ),
        el("tbody", {}, rows),
      ),
    ),
  );
}

/** This page's address with `invoice` set (or removed); the account and timezone stay. */
function invoiceHref(id) {
  const p = new URLSearchParams(location.search);
  if (id) p.set("invoice", id);
  else p.delete("invoice");
  const s = p.toString();
  return `/dashboard/invoices${s ? `?${s}` : ""}`;
}

function periodText(inv) {
  return `${inv.period.label} (${inv.period.timezone})`;
}

/** Lines, their tiers and the adjustments of one invoice; amounts exactly as the API wrote them. */
function invoiceBody(inv, idPrefix) {
  const money = (v) => showMoney(v, inv.currency);
  const num = (v) => el("td", { class: "num", "data-exact": v, text: showDecimal(v) });
  const parts = [];
  if (inv.lines.length === 0) {
    parts.push(el("p", { class: "empty", text: "No usage was billed in this period." }));
  } else {
    parts.push(
      table(
        "Lines",
        `${idPrefix}-lines`,
        [
          { label: "Model" },
          { label: "Description" },
          { label: "Quantity", num: true },
          { label: "Included", num: true },
          { label: "Billable", num: true },
          { label: "Amount", num: true },
        ],
        inv.lines.map((l) =>
          el(
            "tr",
            {},
            el("td", { class: "mono", text: l.model_id ?? "—" }),
            el("td", { text: l.description }),
            num(l.quantity),
            num(l.included_quantity),
            num(l.billable_quantity),
            el("td", { class: "num", "data-exact": l.amount, text: money(l.amount) }),
          ),
        ),
      ),
    );
    const tiers = inv.lines.flatMap((l) => l.tiers.map((t) => ({ line: l, t })));
    if (tiers.length > 0) {
      parts.push(
        table(
          "Tiers",
          `${idPrefix}-tiers`,
          [
            { label: "Model" },
            { label: "From", num: true },
            { label: "Up to", num: true },
            { label: "Quantity", num: true },
            { label: "Unit price", num: true },
            { label: "Flat fee", num: true },
            { label: "Amount", num: true },
          ],
          tiers.map(({ line, t }) =>
            el(
              "tr",
              {},
              el("td", { class: "mono", text: line.model_id ?? line.description }),
              num(t.from),
              el("td", { class: "num", text: t.up_to === null ? "and above" : showDecimal(t.up_to) }),
              num(t.quantity),
              num(t.unit_price),
              num(t.flat_fee),
              el("td", { class: "num", "data-exact": t.amount, text: money(t.amount) }),
            ),
          ),
        ),
      );
    }
  }
  if (inv.adjustments.length > 0) {
    parts.push(
      table(
        "Adjustments (late usage of earlier periods)",
        `${idPrefix}-adjustments`,
        [
          { label: "Period" },
          { label: "Model" },
          { label: "Description" },
          { label: "Quantity", num: true },
          { label: "Amount", num: true },
        ],
        inv.adjustments.map((a) =>
          el(
            "tr",
            {},
            el("td", { text: a.period }),
            el("td", { class: "mono", text: a.model_id ?? "—" }),
            el("td", { text: a.description }),
            num(a.quantity),
            el("td", { class: "num", "data-exact": a.amount, text: money(a.amount) }),
          ),
        ),
      ),
    );
  }
  parts.push(
    el(
      "div",
      { class: "stats" },
      stat("Subtotal", money(inv.subtotal), `${idPrefix}-subtotal`, inv.subtotal),
      stat("Total", money(inv.total), `${idPrefix}-total`, inv.total),
    ),
  );
  if (inv.total !== inv.subtotal) {
    parts.push(
      el("p", {
        class: "help",
        text: "The total is the subtotal rounded to the currency's billing precision.",
      }),
    );
  }
  return parts;
}

function stat(label, value, id, exact) {
  return el(
    "div",
    { class: "stat" },
    el("span", { class: "stat-label", text: label }),
    el("span", { class: "stat-value", id, "data-exact": exact, text: value }),
  );
}

function downloads(inv) {
  const name = inv.number ?? inv.id;
  const id = encodeURIComponent(inv.id);
  return el(
    "p",
    { class: "actions" },
    el("a", {
      id: "invoice-pdf",
      href: `/v1/invoices/${id}.pdf`,
      download: `${name}.pdf`,
      text: "Download PDF",
      "aria-label": `Download invoice ${name} as PDF`,
    }),
    el("a", {
      id: "invoice-csv",
      href: `/v1/invoices/${id}.csv`,
      download: `${name}.csv`,
      text: "Download CSV",
      "aria-label": `Download invoice ${name} as CSV`,
    }),
  );
}

async function renderOne(body, ctx, id) {
  const inv = await api("GET", `/v1/invoices/${encodeURIComponent(id)}`);
  if (ctx.session.kind === "root" && ctx.account && inv.account_id !== ctx.account) {
    body.replaceChildren(
      el("p", { class: "error", role: "alert", text: "That invoice belongs to another account." }),
      el("p", {}, el("a", { href: invoiceHref(null), text: "Back to the invoices" })),
    );
    return;
  }
  body.replaceChildren(
    el("p", {}, el("a", { href: invoiceHref(null), text: "← All invoices" })),
    el(
      "section",
      { class: "card", "aria-labelledby": "invoice-title" },
      el("h2", { id: "invoice-title", text: `Invoice ${inv.number ?? inv.id}` }),
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "Period" }),
        el("dd", { id: "invoice-period", text: periodText(inv) }),
        el("dt", { text: "Status" }),
        el("dd", { id: "invoice-status", text: STATUS[inv.status] ?? inv.status }),
        el("dt", { text: "Issued" }),
        el("dd", { text: inv.issued_at ? showInstant(inv.issued_at, ctx.tz) : "not issued" }),
      ),
      inv.status === "draft" ? null : downloads(inv),
    ),
    ...invoiceBody(inv, "invoice"),
  );
}

/** The open period's draft: what the next invoice says so far. */
async function upcomingCard(ctx) {
  const inv = await api("GET", `/v1/accounts/${encodeURIComponent(ctx.account)}/invoices/upcoming`);
  const details = el(
    "details",
    {},
    el("summary", { text: `Lines of the upcoming invoice (${inv.lines.length})` }),
    ...invoiceBody(inv, "upcoming"),
  );
  return el(
    "section",
    { class: "card", "aria-labelledby": "upcoming-title" },
    el("h2", { id: "upcoming-title", text: "Upcoming invoice" }),
    el("p", {
      class: "help",
      text: `The period ${periodText(inv)} is still open: this draft changes as usage arrives and is finalized when the period closes.`,
    }),
    el(
      "div",
      { class: "stats" },
      stat("Period", inv.period.label, "upcoming-period"),
      stat("Total so far", showMoney(inv.total, inv.currency), "upcoming-total", inv.total),
    ),
    details,
  );
}

export async function renderInvoices(body, ctx) {
  const id = ctx.params.get("invoice");
  if (id) return renderOne(body, ctx, id);
  const [upcoming, list] = await Promise.all([
    upcomingCard(ctx),
    api("GET", `/v1/accounts/${encodeURIComponent(ctx.account)}/invoices`),
  ]);
  const invoices = list.data ?? [];
  const listPart =
    invoices.length === 0
      ? el("p", {
          class: "empty",
          id: "invoices-empty",
          text: "No invoices yet: an invoice is issued when a billing period closes.",
        })
      : table(
          "Issued invoices",
          "invoices-table",
          [
            { label: "Number" },
            { label: "Period" },
            { label: "Status" },
            { label: "Total", num: true },
            { label: "Files" },
          ],
          invoices.map((inv) => {
            const name = inv.number ?? inv.id;
            return el(
              "tr",
              { "data-invoice-id": inv.id },
              el(
                "td",
                {},
                el("a", { href: invoiceHref(inv.id), "aria-label": `View invoice ${name}`, text: name }),
              ),
              el("td", { text: periodText(inv) }),
              el("td", { text: STATUS[inv.status] ?? inv.status }),
              el("td", { class: "num", "data-exact": inv.total, text: showMoney(inv.total, inv.currency) }),
              el(
                "td",
                {},
                el(
                  "span",
                  { class: "row-actions" },
                  el("a", {
                    href: `/v1/invoices/${encodeURIComponent(inv.id)}.pdf`,
                    download: `${name}.pdf`,
                    "aria-label": `Invoice ${name} as PDF`,
                    text: "PDF",
                  }),
                  el("a", {
                    href: `/v1/invoices/${encodeURIComponent(inv.id)}.csv`,
                    download: `${name}.csv`,
                    "aria-label": `Invoice ${name} as CSV`,
                    text: "CSV",
                  }),
                ),
              ),
            );
          }),
        );
  body.replaceChildren(upcoming, listPart);
}
