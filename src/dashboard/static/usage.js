import { api, query } from "./api.js";
import { drawChart } from "./chart.js";
import { download, toCsv } from "./csv.js";
import { addDays, addDecimals, el, plainDecimal, responsive, showDecimal, todayIn } from "./format.js";

const TIMEFRAMES = ["hour", "day", "week", "month"];
const CSV_HEADER = ["bucket", "model", "unit", "unit_price", "quantity", "cost", "currency"];
const MAX_PAGES = 20;

function zones(current) {
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const set = new Set(["UTC", ...all]);
  set.add(current);
  return [...set].sort((a, b) => (a === "UTC" ? -1 : b === "UTC" ? 1 : a.localeCompare(b)));
}

/** The filters, from the URL (with defaults): the page is reproducible from its address. */
export function readFilters(ctx) {
  const today = todayIn(ctx.tz);
  const p = ctx.params;
  const date = (v, fallback) => (v && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : fallback);
  const to = date(p.get("to"), today);
  const from = date(p.get("from"), addDays(to, -6));
  const timeframe = TIMEFRAMES.includes(p.get("timeframe")) ? p.get("timeframe") : "day";
  return { from, to, timeframe, tz: ctx.tz };
}

/** Every bucket of the range (all pages), from GET /v1/models/usage. */
async function fetchUsage(ctx, f) {
  const base = {
    start: f.from,
    // the form's "to" is the last day shown; the API's end is exclusive
    end: addDays(f.to, 1),
    timezone: f.tz,
    timeframe: f.timeframe,
    expand: "time_series",
    limit: 1000,
    account_id: ctx.session.kind === "root" ? ctx.account : undefined,
  };
  const buckets = [];
  let cursor;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await api("GET", `/v1/models/usage${query({ ...base, cursor })}`);
    buckets.push(...(r.time_series || []));
    if (!r.has_more) return { buckets, truncated: false };
    cursor = r.next_cursor;
  }
  return { buckets, truncated: true };
}

function bucketLabel(iso, timeframe) {
  const local = iso.slice(0, 16).replace("T", " ");
  if (timeframe === "hour") return local;
  if (timeframe === "week") return `week of ${iso.slice(0, 10)}`;
  if (timeframe === "month") return iso.slice(0, 7);
  return iso.slice(0, 10);
}

function filterForm(ctx, f) {
  const from = el("input", { id: "f-from", name: "from", type: "date", value: f.from, required: true });
  const to = el("input", { id: "f-to", name: "to", type: "date", value: f.to, required: true });
  const timeframe = el(
    "select",
    { id: "f-timeframe", name: "timeframe" },
    TIMEFRAMES.map((t) => el("option", { value: t, selected: t === f.timeframe, text: `per ${t}` })),
  );
  const tz = el(
    "select",
    { id: "f-tz", name: "tz" },
    zones(f.tz).map((z) => el("option", { value: z, selected: z === f.tz, text: z })),
  );
  const field = (label, input) =>
    el("div", { class: "field" }, el("label", { for: input.id, text: label }), input);
  return el(
    "form",
    {
      class: "filters",
      "aria-label": "Usage filters",
      onsubmit: (e) => {
        e.preventDefault();
        ctx.navigate({ from: from.value, to: to.value, timeframe: timeframe.value, tz: tz.value });
      },
    },
    field("From", from),
    field("To (inclusive)", to),
    field("Granularity", timeframe),
    field("Timezone", tz),
    el("button", { type: "submit", text: "Apply" }),
  );
}

export async function renderUsage(body, ctx) {
  const f = readFilters(ctx);
  const form = filterForm(ctx, f);
  const { buckets, truncated } = await fetchUsage(ctx, f);
  const rows = [];
  for (const b of buckets) {
    for (const l of b.results) {
      rows.push({
        bucket: b.bucket,
        model: l.endpoint_id,
        unit: l.unit,
        unitPrice: l.unit_price,
        quantity: l.quantity,
        cost: l.cost,
        currency: l.currency,
      });
    }
  }
  const range = `${f.from} to ${f.to} (${f.tz})`;
  if (rows.length === 0) {
    body.replaceChildren(
      form,
      el("p", {
        class: "empty",
        id: "usage-empty",
        text: `No usage between ${range}. Widen the range or pick another timezone.`,
      }),
    );
    return;
  }

  // chart: cost per bucket, one series per model (currencies are not mixed on one axis)
  const currencies = [...new Set(rows.map((r) => r.currency))];
  const models = [...new Set(rows.map((r) => r.model))];
  const chartCurrency = currencies[0];
  // exact cost per bucket and model (drawn as floats; kept exact in data-costs for checking)
  const exactCosts = Object.fromEntries(
    models.map((m) => [
      m,
      buckets.map((b) =>
        addDecimals(
          b.results.filter((l) => l.endpoint_id === m && l.currency === chartCurrency).map((l) => l.cost),
        ),
      ),
    ]),
  );
  const series = models.map((m) => ({ label: m, values: exactCosts[m].map(Number) }));

  const chart = el("div", {
    class: "chart",
    id: "usage-chart",
    role: "img",
    "data-costs": JSON.stringify(exactCosts),
    "aria-label": `Cost in ${chartCurrency} per ${f.timeframe} by model, ${range}. The table below lists every number.`,
  });

  const csvRows = rows.map((r) => [
    r.bucket,
    r.model,
    r.unit,
    plainDecimal(r.unitPrice),
    plainDecimal(r.quantity),
    plainDecimal(r.cost),
    r.currency,
  ]);
  const table = el(
    "table",
    { id: "usage-table" },
    el("caption", { text: `Usage per ${f.timeframe}, ${range}` }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ["Period", "Model", "Unit", "Unit price", "Quantity", "Cost", "Currency"].map((h, i) =>
          el("th", { scope: "col", class: i >= 3 && i <= 5 ? "num" : undefined, text: h }),
        ),
      ),
    ),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el(
          "tr",
          {},
          el("td", {}, el("time", { datetime: r.bucket, text: bucketLabel(r.bucket, f.timeframe) })),
          el("td", { text: r.model }),
          el("td", { text: r.unit }),
          el("td", { class: "num", "data-exact": plainDecimal(r.unitPrice), text: showDecimal(r.unitPrice) }),
          el("td", { class: "num", "data-exact": plainDecimal(r.quantity), text: showDecimal(r.quantity) }),
          el("td", { class: "num", "data-exact": plainDecimal(r.cost), text: showDecimal(r.cost) }),
          el("td", { text: r.currency }),
        ),
      ),
    ),
  );

  // totals by model, added up exactly from the rows above (they must equal the API's summary)
  const groups = new Map();
  for (const r of rows) {
    const k = `${r.model}\u0000${r.unit}\u0000${r.currency}`;
    const g = groups.get(k) || { model: r.model, unit: r.unit, currency: r.currency, quantity: [], cost: [] };
    g.quantity.push(r.quantity);
    g.cost.push(r.cost);
    groups.set(k, g);
  }
  const totals = el(
    "table",
    { id: "usage-totals" },
    el("caption", { text: `Totals by model, ${range}` }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ["Model", "Unit", "Quantity", "Cost", "Currency"].map((h, i) =>
          el("th", { scope: "col", class: i === 2 || i === 3 ? "num" : undefined, text: h }),
        ),
      ),
    ),
    el(
      "tbody",
      {},
      [...groups.values()].map((g) => {
        const q = addDecimals(g.quantity);
        const c = addDecimals(g.cost);
        return el(
          "tr",
          {},
          el("th", { scope: "row", text: g.model }),
          el("td", { text: g.unit }),
          el("td", { class: "num", "data-exact": q, text: showDecimal(q) }),
          el("td", { class: "num", "data-exact": c, text: showDecimal(c) }),
          el("td", { text: g.currency }),
        );
      }),
    ),
    el(
      "tfoot",
      {},
      currencies.map((cur) => {
        const c = addDecimals(rows.filter((r) => r.currency === cur).map((r) => r.cost));
        return el(
          "tr",
          {},
          el("th", { scope: "row", colspan: "3", "data-label": "", text: "Total" }),
          el("td", { class: "num", "data-exact": c, "data-currency": cur, text: showDecimal(c) }),
          el("td", { text: cur }),
        );
      }),
    ),
  );
  const filename = `tally-usage-${f.from}-to-${f.to}-${f.timeframe}-${f.tz.replaceAll("/", "_")}.csv`;
  const csvButton = el("button", {
    type: "button",
    id: "download-csv",
    onclick: () => download(filename, toCsv(CSV_HEADER, csvRows)),
    text: "Download CSV",
  });
  body.replaceChildren(
    form,
    truncated
      ? el("p", {
          class: "notice",
          role: "status",
          text: "This range has more buckets than one page shows; narrow it for the rest.",
        })
      : "",
    chart,
    el("div", { class: "actions" }, csvButton),
    el("div", { class: "table-wrap" }, responsive(totals)),
    el("div", { class: "table-wrap" }, responsive(table)),
  );
  drawChart(chart, {
    labels: buckets.map((b) => bucketLabel(b.bucket, f.timeframe)),
    series,
    yLabel: chartCurrency,
  });
}
