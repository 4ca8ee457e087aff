import { api, query } from "./api.js";
import {
  addDecimals,
  el,
  monthStart,
  nextMonthStart,
  responsive,
  showDecimal,
  showMoney,
  todayIn,
} from "./format.js";

const UNLIMITED = "-999999";

function card(title, ...children) {
  const id = `card-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id, text: title }), ...children);
}

function stat(label, value, id) {
  return el(
    "div",
    { class: "stat" },
    el("span", { class: "stat-label", text: label }),
    el("span", { class: "stat-value", id, text: value }),
  );
}

/** This month, in the viewer's timezone, from the workspace usage API's summary. */
async function monthCard(ctx) {
  const today = todayIn(ctx.tz);
  const path = `/v1/models/usage${query({
    start: monthStart(today),
    end: nextMonthStart(today),
    timezone: ctx.tz,
    timeframe: "month",
    expand: "summary",
    account_id: ctx.session.kind === "root" ? ctx.account : undefined,
  })}`;
  const r = await api("GET", path);
  // one row per model and unit: the API also splits by unit price, the overview adds those up exactly
  const groups = new Map();
  for (const l of r.summary || []) {
    const k = `${l.endpoint_id}\u0000${l.unit}\u0000${l.currency}`;
    const g = groups.get(k) || {
      endpoint_id: l.endpoint_id,
      unit: l.unit,
      currency: l.currency,
      quantity: [],
      cost: [],
    };
    g.quantity.push(l.quantity);
    g.cost.push(l.cost);
    groups.set(k, g);
  }
  const lines = [...groups.values()].map((g) => ({
    ...g,
    quantity: addDecimals(g.quantity),
    cost: addDecimals(g.cost),
  }));
  const month = new Intl.DateTimeFormat(undefined, {
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  }).format(new Date(`${monthStart(today)}T00:00:00Z`));
  if (lines.length === 0) {
    return card(
      `This month`,
      el("p", { class: "empty", text: `No usage recorded in ${month} (${ctx.tz}) yet.` }),
    );
  }
  const currencies = [...new Set(lines.map((l) => l.currency))];
  const totals = currencies.map((c) =>
    stat(
      `Cost, ${month}`,
      showMoney(addDecimals(lines.filter((l) => l.currency === c).map((l) => l.cost)), c),
      `month-cost-${c}`,
    ),
  );
  const table = el(
    "table",
    {},
    el("caption", { text: `Quantity by model, ${month} (${ctx.tz})` }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Model" }),
        el("th", { scope: "col", class: "num", text: "Quantity" }),
        el("th", { scope: "col", class: "num", text: "Cost" }),
      ),
    ),
    el(
      "tbody",
      {},
      lines.map((l) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", text: l.endpoint_id }),
          el("td", { class: "num", text: `${showDecimal(l.quantity)} ${l.unit}` }),
          el("td", { class: "num", text: showMoney(l.cost, l.currency) }),
        ),
      ),
    ),
  );
  return card(
    "This month",
    el("div", { class: "stats" }, totals),
    el("div", { class: "table-wrap" }, responsive(table)),
  );
}

function limitStat(label, limit, remaining, id) {
  if (String(limit) === UNLIMITED) return stat(label, "unlimited", id);
  const used = Number(limit) - Number(remaining);
  return stat(label, `${used} of ${limit} used (${remaining} left)`, id);
}

/** Plan, days remaining and today's requests: the key statistics of the signed-in key. */
async function limitsCards() {
  const s = await api(
    "GET",
    `/v1/usage${query({ section: "account_information,subscription_details,rate_limits_and_restrictions" })}`,
  );
  const rl = s.rate_limits_and_restrictions;
  const sub = s.subscription_details;
  const days =
    String(sub.effective_days_remaining) === UNLIMITED ? "unlimited" : `${sub.effective_days_remaining} days`;
  return [
    card(
      "Requests",
      el(
        "div",
        { class: "stats" },
        limitStat(
          "Today (UTC day)",
          rl.requests_per_day_limit,
          rl.requests_per_day_remaining,
          "requests-day",
        ),
        limitStat(
          "This minute",
          rl.requests_per_minute_limit,
          rl.requests_per_minute_remaining,
          "requests-minute",
        ),
      ),
    ),
    card(
      "Plan",
      el(
        "div",
        { class: "stats" },
        stat("Current plan", s.account_information.current_plan, "plan-id"),
        stat("Days remaining", days, "days-remaining"),
      ),
    ),
  ];
}

async function accountCard(ctx) {
  const a = await api("GET", `/v1/accounts/${encodeURIComponent(ctx.account)}`);
  return card(
    "Account",
    el(
      "div",
      { class: "stats" },
      stat("Name", a.name, "account-name"),
      stat("Plan", a.plan_id || "none", "plan-id"),
      stat("Enabled", a.is_enabled ? "yes" : "no"),
    ),
    el("p", {
      class: "help",
      text: "Request limits and days remaining are shown to the account's own keys.",
    }),
  );
}

export async function renderOverview(body, ctx) {
  const parts = [];
  if (ctx.session.kind === "root") parts.push(accountCard(ctx), monthCard(ctx));
  else if (ctx.session.role === "admin") parts.push(monthCard(ctx), limitsCards());
  else parts.push(limitsCards());
  const cards = (await Promise.all(parts)).flat();
  if (ctx.session.role === "member") {
    cards.push(
      card(
        "Your usage",
        el(
          "p",
          {},
          "Your own records are in the ",
          el("a", { href: `/dashboard/log`, text: "usage log" }),
          ".",
        ),
      ),
    );
  }
  body.replaceChildren(el("div", { class: "cards" }, cards));
}
