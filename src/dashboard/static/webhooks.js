import { api } from "./api.js";
import { openDialog } from "./dialog.js";
// served from src/notify/messages.ts EVENT_TYPES (register-dashboard.ts)
import { EVENT_TYPES } from "./event-types.js";
import { el, responsive, showInstant } from "./format.js";

const DELIVERY_STATUS = { succeeded: "delivered", pending: "waiting to be sent", failed: "failed" };

/** While a delivery is pending, the log reads itself again this often, this many times. */
const REFRESH_MS = 1500;
const REFRESH_TIMES = 20;

function hrefWith(params) {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v) p.set(k, v);
    else p.delete(k);
  }
  const s = p.toString();
  return `/dashboard/webhooks${s ? `?${s}` : ""}`;
}

/** A signing secret, shown once (on create and rotate), like a new key's. */
function secretPanel(title, secret, status) {
  const input = el("input", {
    id: "webhook-secret",
    readonly: true,
    value: secret,
    class: "mono",
    "aria-describedby": "webhook-secret-once",
  });
  return el(
    "div",
    { class: "secret" },
    el("label", { for: "webhook-secret", text: title }),
    input,
    el("p", {
      id: "webhook-secret-once",
      class: "notice",
      text: "Copy it now: this is the only time Tally shows it. Your receiver verifies signatures with it.",
    }),
    el("button", {
      type: "button",
      class: "secondary",
      text: "Copy",
      onclick: async () => {
        input.select();
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = "Secret copied.";
        } catch {
          status.textContent = "Select the secret and copy it.";
        }
      },
    }),
  );
}

function attemptsTable(m) {
  if (m.attempts.length === 0) {
    return el("p", {
      class: "help",
      text:
        m.status === "pending"
          ? `Not attempted yet: the next try is at ${m.next_attempt_at ?? "once a worker picks it up"}.`
          : "No attempts.",
    });
  }
  return el(
    "div",
    { class: "table-wrap" },
    responsive(
      el(
        "table",
        { class: "attempts" },
        el("caption", { text: `Attempts of ${m.type} (${m.id})` }),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["#", "At", "Result", "HTTP status", "Latency", "Response"].map((h) =>
              el("th", { scope: "col", text: h }),
            ),
          ),
        ),
        el(
          "tbody",
          {},
          m.attempts.map((a) =>
            el(
              "tr",
              {},
              el("td", { text: a.attempt }),
              el("td", { text: showInstant(a.attempted_at) }),
              el("td", {
                class: a.succeeded ? "ok" : "error",
                text: a.succeeded ? "delivered" : `failed${a.error ? `: ${a.error}` : ""}`,
              }),
              el("td", { class: "num", text: a.status_code ?? "—" }),
              el("td", { class: "num", text: a.latency_ms === null ? "—" : `${a.latency_ms} ms` }),
              el("td", { class: "mono excerpt", text: a.response_excerpt || "—" }),
            ),
          ),
        ),
      ),
    ),
  );
}

/** One endpoint's deliveries, newest first, each with its attempts and a retry button. */
async function deliveryLog(endpoint, status) {
  const section = el("section", { class: "card", id: "delivery-log", "aria-labelledby": "delivery-title" });
  let refreshes = 0;
  const load = async () => {
    let r;
    try {
      r = await api("GET", `/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries?limit=50`);
    } catch (err) {
      section.replaceChildren(el("p", { class: "error", role: "alert", text: err.message }));
      return;
    }
    const messages = r.data ?? [];
    const items = messages.map((m) =>
      el(
        "article",
        { class: "delivery", "data-message-id": m.id, "data-status": m.status },
        el(
          "h3",
          {},
          `${m.type} · ${DELIVERY_STATUS[m.status] ?? m.status}`,
          el("span", { class: "help", text: ` · created ${showInstant(m.created_at)}` }),
        ),
        attemptsTable(m),
        el("button", {
          type: "button",
          class: "secondary",
          "aria-label": `Retry delivery ${m.id}`,
          text: "Retry now",
          onclick: async () => {
            try {
              await api("POST", `/v1/webhooks/deliveries/${encodeURIComponent(m.id)}/retry`);
              status.textContent = `Delivery ${m.id} queued again.`;
              refreshes = 0;
              await load();
            } catch (err) {
              status.textContent = `Not retried: ${err.message}`;
            }
          },
        }),
      ),
    );
    section.replaceChildren(
      el("h2", { id: "delivery-title", text: `Deliveries to ${endpoint.url}` }),
      el(
        "p",
        { class: "actions" },
        el("button", {
          type: "button",
          class: "secondary",
          id: "deliveries-refresh",
          onclick: load,
          text: "Refresh",
        }),
        el("a", { href: hrefWith({ endpoint: null }), text: "Close the log" }),
      ),
      items.length
        ? el("div", {}, items)
        : el("p", {
            class: "empty",
            id: "deliveries-empty",
            text: "Nothing sent to this endpoint yet. Send a test to see a delivery here.",
          }),
    );
    if (r.has_more) section.append(el("p", { class: "help", text: "Showing the 50 newest deliveries." }));
    // a pending message gets its attempt within seconds: read again while the log is on the page
    if (messages.some((m) => m.status === "pending") && refreshes < REFRESH_TIMES) {
      refreshes += 1;
      setTimeout(() => {
        if (section.isConnected) void load();
      }, REFRESH_MS);
    }
  };
  await load();
  return { section, reload: load };
}

function endpointRow(ctx, e, actions) {
  const name = e.url;
  const button = (text, onclick, cls = "secondary") =>
    el("button", { type: "button", class: cls, "aria-label": `${text}: ${name}`, text, onclick });
  return el(
    "tr",
    { "data-endpoint-id": e.id },
    el("td", { class: "mono url", text: e.url }),
    el("td", {
      class: "events",
      text: EVENT_TYPES.every((t) => e.events.includes(t))
        ? `all ${EVENT_TYPES.length} event types`
        : e.events.join(", "),
    }),
    el("td", {
      text:
        e.status === "enabled"
          ? e.failing_since
            ? `failing since ${showInstant(e.failing_since, ctx.tz)}`
            : "enabled"
          : `disabled${e.disabled_reason ? `: ${e.disabled_reason}` : ""}`,
    }),
    el("td", { text: showInstant(e.created_at, ctx.tz) }),
    el(
      "td",
      {},
      el(
        "span",
        { class: "row-actions wrap" },
        el("a", { href: hrefWith({ endpoint: e.id }), "aria-label": `Delivery log: ${name}`, text: "Log" }),
        button("Send test", () => actions.test(e)),
        button("Rotate secret", () => actions.rotate(e)),
        button("Delete", () => actions.remove(e), "danger"),
      ),
    ),
  );
}

function createForm(ctx, result, onCreated) {
  const url = el("input", {
    id: "webhook-url",
    name: "url",
    type: "url",
    required: true,
    placeholder: "https://example.com/tally-webhooks",
    autocomplete: "off",
    spellcheck: "false",
  });
  const boxes = EVENT_TYPES.map((t) =>
    el("input", { type: "checkbox", id: `webhook-event-${t}`, name: "events", value: t, checked: true }),
  );
  const error = el("div", { "aria-live": "polite" });
  return el(
    "form",
    {
      class: "card",
      id: "webhook-form",
      "aria-labelledby": "webhook-form-title",
      onsubmit: async (e) => {
        e.preventDefault();
        error.replaceChildren();
        const events = boxes.filter((b) => b.checked).map((b) => b.value);
        if (events.length === 0) {
          error.replaceChildren(
            el("p", { class: "error", role: "alert", text: "Choose at least one event." }),
          );
          return;
        }
        const body = { url: url.value.trim(), events };
        if (ctx.session.kind === "root") body.account_id = ctx.account;
        try {
          const created = await api("POST", "/v1/webhooks", body);
          url.value = "";
          await onCreated(created);
        } catch (err) {
          error.replaceChildren(
            el("p", { class: "error", role: "alert", text: `No endpoint created: ${err.message}` }),
          );
        }
      },
    },
    el("h2", { id: "webhook-form-title", text: "Add an endpoint" }),
    el("div", { class: "field" }, el("label", { for: "webhook-url", text: "URL" }), url),
    el(
      "fieldset",
      { class: "events" },
      el("legend", { text: "Events to send" }),
      boxes.map((b) => el("label", { class: "check", for: b.id }, b, b.value)),
    ),
    el("button", { type: "submit", text: "Add endpoint" }),
    error,
    result,
  );
}

export async function renderWebhooks(body, ctx) {
  const status = el("p", { id: "webhooks-status", role: "status", class: "status" });
  const secretSlot = el("div", { id: "webhook-secret-slot", "aria-live": "polite" });
  const list = el("div", { id: "webhooks-list" });
  const logSlot = el("div");
  let selected = ctx.params.get("endpoint");
  let log = null;
  /** The log of one endpoint under the list, its id kept in the URL; the rest of the page stays. */
  const openLog = async (e) => {
    selected = e.id;
    history.replaceState(null, "", hrefWith({ endpoint: e.id }));
    log = await deliveryLog(e, status);
    logSlot.replaceChildren(log.section);
  };

  const actions = {
    async test(e) {
      try {
        await api("POST", `/v1/webhooks/${encodeURIComponent(e.id)}/test`);
        status.textContent = `Test message queued for ${e.url}.`;
        if (selected === e.id && log) await log.reload();
        else await openLog(e);
      } catch (err) {
        status.textContent = `Test not sent: ${err.message}`;
      }
    },
    async rotate(e) {
      const content = el("p", {
        text: `Rotate the signing secret of ${e.url}? The new one is shown once; the old one keeps signing too for 24 hours so your receiver can switch.`,
      });
      if ((await openDialog("Rotate signing secret", content, "Rotate secret")) !== "ok") return;
      try {
        const r = await api("POST", `/v1/webhooks/${encodeURIComponent(e.id)}/rotate`);
        secretSlot.replaceChildren(secretPanel(`New signing secret of ${e.url}`, r.secret, status));
        status.textContent = `Secret of ${e.url} rotated.`;
        await reload();
      } catch (err) {
        status.textContent = `Not rotated: ${err.message}`;
      }
    },
    async remove(e) {
      const content = el("p", {
        text: `Delete the endpoint ${e.url}? Nothing is sent to it any more and its delivery log is deleted. This cannot be undone.`,
      });
      if ((await openDialog("Delete endpoint", content, "Delete endpoint", true)) !== "ok") return;
      try {
        await api("DELETE", `/v1/webhooks/${encodeURIComponent(e.id)}`);
        status.textContent = `Endpoint ${e.url} deleted.`;
        if (selected === e.id) ctx.navigate({ endpoint: undefined });
        else await reload();
      } catch (err) {
        status.textContent = `Not deleted: ${err.message}`;
      }
    },
  };

  let endpoints = [];
  async function reload() {
    const q = ctx.session.kind === "root" ? `&account_id=${encodeURIComponent(ctx.account)}` : "";
    const r = await api("GET", `/v1/webhooks?limit=1000${q}`);
    endpoints = r.data ?? [];
    if (endpoints.length === 0) {
      list.replaceChildren(
        el("p", {
          class: "empty",
          id: "webhooks-empty",
          text: "No endpoints yet. Add one below and Tally signs and sends each event to it.",
        }),
      );
      return;
    }
    list.replaceChildren(
      el(
        "div",
        { class: "table-wrap" },
        responsive(
          el(
            "table",
            { id: "webhooks-table" },
            el("caption", { text: "Endpoints" }),
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                ["URL", "Events", "Status", "Created", "Actions"].map((h) =>
                  el("th", { scope: "col", text: h }),
                ),
              ),
            ),
            el(
              "tbody",
              {},
              endpoints.map((e) => endpointRow(ctx, e, actions)),
            ),
          ),
        ),
      ),
    );
  }
  await reload();
  const endpoint = selected ? endpoints.find((e) => e.id === selected) : null;
  if (selected && !endpoint) {
    logSlot.replaceChildren(
      el("p", {
        class: "error",
        role: "alert",
        text: "That endpoint is not one of this account's (deleted?).",
      }),
    );
  } else if (endpoint) {
    await openLog(endpoint);
  }
  const form = createForm(ctx, el("div"), async (created) => {
    secretSlot.replaceChildren(secretPanel(`Signing secret of ${created.url}`, created.secret, status));
    status.textContent = `Endpoint ${created.url} added.`;
    await reload();
  });
  body.replaceChildren(status, secretSlot, list, logSlot, form);
}
