import { api, query } from "./api.js";
import { openDialog } from "./dialog.js";
import { el, plainDecimal, responsive, showDecimal, showInstant } from "./format.js";

const PAGE_SIZE = 25;

/** What the last correction or deletion did, shown once on the page drawn after it. */
let flash = "";

function isAdmin(ctx) {
  return ctx.session.kind === "root" || ctx.session.role === "admin";
}

async function correct(record, ctx, status) {
  const units = el("input", {
    id: "edit-units",
    name: "units_used",
    inputmode: "decimal",
    required: true,
    pattern: "\\d+(\\.\\d+)?",
    value: plainDecimal(record.units_used),
  });
  const cost = el("input", {
    id: "edit-cost",
    name: "cost_usd",
    inputmode: "decimal",
    required: true,
    pattern: "\\d+(\\.\\d+)?",
    value: plainDecimal(record.cost_usd),
  });
  const active = el("input", {
    id: "edit-active",
    name: "status_active",
    type: "checkbox",
    checked: record.status_active,
  });
  const content = el(
    "div",
    { class: "dialog-fields" },
    el("p", { text: `Record ${record.usage_id} (${record.api_name})` }),
    el("label", { for: "edit-units", text: "Units used" }),
    units,
    el("label", { for: "edit-cost", text: "Cost (USD)" }),
    cost,
    el("label", { class: "check" }, active, " Active (counted in totals)"),
  );
  if ((await openDialog("Correct usage record", content, "Save correction")) !== "ok") return;
  try {
    await api("PUT", `/usage/${encodeURIComponent(record.usage_id)}`, {
      units_used: units.value.trim(),
      cost_usd: cost.value.trim(),
      status_active: active.checked,
    });
    flash = `Record ${record.usage_id} corrected.`;
    ctx.navigate({});
  } catch (err) {
    status.textContent = `Not saved: ${err.message}`;
  }
}

async function remove(record, ctx, status) {
  const content = el("p", {
    text: `Delete record ${record.usage_id} (${record.api_name}, ${showDecimal(record.units_used)} units, ${showDecimal(record.cost_usd)} USD)? It leaves every total; the audit log keeps a copy.`,
  });
  if ((await openDialog("Delete usage record", content, "Delete record", true)) !== "ok") return;
  try {
    await api("DELETE", `/usage/${encodeURIComponent(record.usage_id)}`);
    flash = `Record ${record.usage_id} deleted.`;
    ctx.navigate({});
  } catch (err) {
    status.textContent = `Not deleted: ${err.message}`;
  }
}

export async function renderLog(body, ctx) {
  const skip = Math.max(0, Number.parseInt(ctx.params.get("skip") || "0", 10) || 0);
  const user = ctx.params.get("user");
  const path = user
    ? `/usage/user/${encodeURIComponent(user)}${query({ skip, limit: PAGE_SIZE })}`
    : `/usage${query({ skip, limit: PAGE_SIZE, account_id: ctx.session.kind === "root" ? ctx.account : undefined })}`;
  const records = await api("GET", path);
  const status = el("p", { id: "log-status", role: "status", class: "status", text: flash });
  flash = "";
  const intro = el("p", {
    class: "help",
    text: isAdmin(ctx)
      ? `Newest first, times in ${ctx.tz}.`
      : `Your own records, newest first, times in ${ctx.tz}.`,
  });
  if (records.length === 0) {
    body.replaceChildren(
      intro,
      el("p", {
        class: "empty",
        id: "log-empty",
        text: skip > 0 ? "No more records." : "No usage records yet.",
      }),
      pager(ctx, skip, 0),
    );
    return;
  }
  const admin = isAdmin(ctx);
  const head = ["Time", "API / model", "Endpoint", "Units", "Cost (USD)", "Active"];
  if (admin) head.push("User", "Actions");
  const table = el(
    "table",
    { id: "log-table" },
    el("caption", { text: `Usage records ${skip + 1} to ${skip + records.length}` }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        head.map((h) =>
          el("th", {
            scope: "col",
            class: h === "Units" || h.startsWith("Cost") ? "num" : undefined,
            text: h,
          }),
        ),
      ),
    ),
    el(
      "tbody",
      {},
      records.map((r) =>
        el(
          "tr",
          { "data-usage-id": r.usage_id },
          el("td", {}, el("time", { datetime: r.created_at, text: showInstant(r.created_at, ctx.tz) })),
          el("td", { text: r.api_name }),
          el("td", { text: r.endpoint }),
          el("td", { class: "num", text: showDecimal(r.units_used) }),
          el("td", { class: "num", text: showDecimal(r.cost_usd) }),
          el("td", { text: r.status_active ? "yes" : "no" }),
          admin ? el("td", { class: "mono", text: r.user_id || "" }) : null,
          admin
            ? el(
                "td",
                { class: "row-actions" },
                el("button", {
                  type: "button",
                  class: "secondary",
                  "aria-label": `Correct record ${r.usage_id}`,
                  onclick: () => correct(r, ctx, status),
                  text: "Correct",
                }),
                el("button", {
                  type: "button",
                  class: "danger",
                  "aria-label": `Delete record ${r.usage_id}`,
                  onclick: () => remove(r, ctx, status),
                  text: "Delete",
                }),
              )
            : null,
        ),
      ),
    ),
  );
  body.replaceChildren(
    intro,
    status,
    el("div", { class: "table-wrap" }, responsive(table)),
    pager(ctx, skip, records.length),
  );
}

function pager(ctx, skip, count) {
  const prev = el("button", {
    type: "button",
    class: "secondary",
    disabled: skip === 0,
    onclick: () => ctx.navigate({ skip: Math.max(0, skip - PAGE_SIZE) || undefined }),
    text: "Newer",
  });
  const next = el("button", {
    type: "button",
    class: "secondary",
    disabled: count < PAGE_SIZE,
    onclick: () => ctx.navigate({ skip: skip + PAGE_SIZE }),
    text: "Older",
  });
  return el("nav", { class: "pager", "aria-label": "Usage log pages" }, prev, next);
}
