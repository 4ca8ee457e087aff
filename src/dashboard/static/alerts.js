import { api } from "./api.js";
import { openDialog } from "./dialog.js";
import { el, responsive, showDecimal, showInstant, showMoney } from "./format.js";

const METRICS = { quantity: "Quantity (units)", cost: "Cost", requests: "Requests" };
const BASES = {
  absolute: "A limit I set",
  budget: "The account's monthly budget",
  included: "The plan's included quantity",
};

function amount(rule, v) {
  if (v === null) return "no limit set";
  return rule.metric === "cost" ? showMoney(v) : showDecimal(v);
}

function outlookText(o, tz) {
  if (o.status === "crossed") return `${showDecimal(o.threshold)}%: crossed`;
  if (o.status === "projected")
    return `${showDecimal(o.threshold)}%: expected ${showInstant(o.forecast_at, tz)}`;
  return `${showDecimal(o.threshold)}%: not expected this period`;
}

function ruleName(r) {
  return `${METRICS[r.metric] ?? r.metric} per ${r.period}, ${r.model_id ?? "all models"}`;
}

function ruleRow(ctx, r, status, reload) {
  const thresholds =
    r.limit === null
      ? el("span", {
          text: `${r.thresholds.map(showDecimal).join("%, ")}% of a limit the account does not have yet`,
        })
      : el(
          "ul",
          { class: "plain" },
          r.outlook.map((o) => el("li", { class: `outlook-${o.status}`, text: outlookText(o, ctx.tz) })),
        );
  return el(
    "tr",
    { "data-alert-id": r.id },
    el("td", { text: ruleName(r) }),
    el("td", {
      text: `${showInstant(r.current_period.start, ctx.tz)} until ${showInstant(r.current_period.end, ctx.tz)}`,
    }),
    el("td", { class: "num", "data-exact": r.total, text: amount(r, r.total) }),
    el("td", { class: "num", "data-exact": r.limit ?? "", text: amount(r, r.limit) }),
    el("td", {}, thresholds),
    el(
      "td",
      {},
      el("button", {
        type: "button",
        class: "danger",
        "aria-label": `Delete alert: ${ruleName(r)}`,
        text: "Delete",
        onclick: async () => {
          const content = el("p", {
            text: `Delete the alert "${ruleName(r)}"? Its thresholds stop firing. This cannot be undone.`,
          });
          if ((await openDialog("Delete alert", content, "Delete alert", true)) !== "ok") return;
          try {
            await api("DELETE", `/v1/alerts/${encodeURIComponent(r.id)}`);
            status.textContent = `Alert "${ruleName(r)}" deleted.`;
            await reload();
          } catch (err) {
            status.textContent = `Not deleted: ${err.message}`;
          }
        },
      }),
    ),
  );
}

function ruleForm(ctx, status, reload) {
  const field = (label, input, help) =>
    el(
      "div",
      { class: "field" },
      el("label", { for: input.id, text: label }),
      input,
      help ? el("p", { class: "help", id: `${input.id}-help`, text: help }) : null,
    );
  const select = (id, options, value) =>
    el(
      "select",
      { id, name: id },
      Object.entries(options).map(([v, t]) => el("option", { value: v, selected: v === value, text: t })),
    );
  const metric = select("alert-metric", METRICS, "cost");
  const period = select("alert-period", { month: "Month", day: "Day" }, "month");
  const basis = select("alert-basis", BASES, "absolute");
  const model = el("input", {
    id: "alert-model",
    name: "model_id",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "all models",
    "aria-describedby": "alert-model-help",
  });
  const thresholds = el("input", {
    id: "alert-thresholds",
    name: "thresholds",
    value: "50, 80, 100",
    required: true,
    inputmode: "decimal",
    "aria-describedby": "alert-thresholds-help",
  });
  const value = el("input", {
    id: "alert-value",
    name: "value",
    inputmode: "decimal",
    autocomplete: "off",
    "aria-describedby": "alert-value-help",
  });
  const valueField = field(
    "Limit",
    value,
    "In the metric's unit: USD for cost, units or requests otherwise.",
  );
  const syncValue = () => {
    const absolute = basis.value === "absolute";
    valueField.hidden = !absolute;
    value.required = absolute;
  };
  basis.addEventListener("change", syncValue);
  syncValue();
  const result = el("div", { "aria-live": "polite" });
  return el(
    "form",
    {
      class: "card",
      id: "alert-form",
      "aria-labelledby": "alert-form-title",
      onsubmit: async (e) => {
        e.preventDefault();
        result.replaceChildren();
        const body = {
          metric: metric.value,
          period: period.value,
          basis: basis.value,
          // exact: percentages and the limit go as the decimal text typed, never through floats
          thresholds: thresholds.value
            .split(/[\s,%]+/)
            .map((t) => t.trim())
            .filter(Boolean),
        };
        if (model.value.trim()) body.model_id = model.value.trim();
        if (basis.value === "absolute") body.value = value.value.trim();
        try {
          await api("POST", `/v1/accounts/${encodeURIComponent(ctx.account)}/alerts`, body);
          status.textContent = "Alert created.";
          await reload();
        } catch (err) {
          result.replaceChildren(
            el("p", { class: "error", role: "alert", text: `No alert created: ${err.message}` }),
          );
        }
      },
    },
    el("h2", { id: "alert-form-title", text: "Create an alert" }),
    el(
      "div",
      { class: "form-grid" },
      field("Measure", metric),
      field("Model", model, "Leave empty for all models."),
      field("Period", period),
      field("Compared with", basis),
      valueField,
      field("Thresholds (%)", thresholds, "Percentages of the limit, e.g. 50, 80, 100."),
    ),
    el("button", { type: "submit", text: "Create alert" }),
    result,
  );
}

export async function renderAlerts(body, ctx) {
  const status = el("p", { id: "alerts-status", role: "status", class: "status" });
  const list = el("div", { id: "alerts-list" });
  const reload = async () => {
    const r = await api("GET", `/v1/accounts/${encodeURIComponent(ctx.account)}/alerts`);
    const rules = r.data ?? [];
    if (rules.length === 0) {
      list.replaceChildren(
        el("p", {
          class: "empty",
          id: "alerts-empty",
          text: "No alerts yet. Create one below to hear (by webhook) when usage or cost reaches a share of a limit.",
        }),
      );
      return;
    }
    const headers = ["Alert", "This period", "Total", "Limit", "Thresholds", "Action"];
    list.replaceChildren(
      el(
        "div",
        { class: "table-wrap" },
        responsive(
          el(
            "table",
            { id: "alerts-table" },
            el("caption", {
              text: "Alert rules, with this period's total and when each threshold is expected",
            }),
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                headers.map((h) =>
                  el("th", {
                    scope: "col",
                    class: h === "Total" || h === "Limit" ? "num" : undefined,
                    text: h,
                  }),
                ),
              ),
            ),
            el(
              "tbody",
              {},
              rules.map((rule) => ruleRow(ctx, rule, status, reload)),
            ),
          ),
        ),
      ),
    );
  };
  await reload();
  body.replaceChildren(
    status,
    list,
    ruleForm(ctx, status, reload),
    el("p", {
      class: "help",
      text: "A crossed threshold is sent once per period to the account's webhooks (usage.threshold_crossed, budget.threshold_crossed; forecasts as usage.threshold_forecast).",
    }),
  );
}
