import { renderAlerts } from "./alerts.js";
import { ApiError, api } from "./api.js";
import { browserZone, el } from "./format.js";
import { renderInvoices } from "./invoices.js";
import { renderKeys } from "./keys.js";
import { renderLog } from "./log.js";
import { renderOverview } from "./overview.js";
import { renderUsage } from "./usage.js";
import { renderWebhooks } from "./webhooks.js";

const BASE = "/dashboard";

/** Pages and who sees them: members read their own usage log and limits, nothing account-wide. */
const PAGES = [
  { path: "/", title: "Overview", render: renderOverview, roles: ["root", "admin", "member"] },
  { path: "/usage", title: "Usage", render: renderUsage, roles: ["root", "admin"] },
  { path: "/log", title: "Usage log", render: renderLog, roles: ["root", "admin", "member"] },
  { path: "/keys", title: "Keys", render: renderKeys, roles: ["root", "admin"] },
  // billing and notifications are account-wide: the API answers members 403 on all three
  { path: "/invoices", title: "Invoices", render: renderInvoices, roles: ["root", "admin"] },
  { path: "/alerts", title: "Alerts", render: renderAlerts, roles: ["root", "admin"] },
  { path: "/webhooks", title: "Webhooks", render: renderWebhooks, roles: ["root", "admin"] },
];

/** Query parameters that follow the person from page to page. */
const STICKY = ["account", "tz"];

let session = null;

function currentPath() {
  const p = location.pathname.slice(BASE.length) || "/";
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

export function navigate(path, params = {}, { replace = false } = {}) {
  const current = new URLSearchParams(location.search);
  const next = new URLSearchParams();
  for (const k of STICKY) if (current.get(k)) next.set(k, current.get(k));
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") next.delete(k);
    else next.set(k, v);
  }
  const s = next.toString();
  const url = `${BASE}${path === "/" ? "/" : path}${s ? `?${s}` : ""}`;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void render();
}

function linkTo(path) {
  const current = new URLSearchParams(location.search);
  const keep = new URLSearchParams();
  for (const k of STICKY) if (current.get(k)) keep.set(k, current.get(k));
  const s = keep.toString();
  return `${BASE}${path === "/" ? "/" : path}${s ? `?${s}` : ""}`;
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  const links = PAGES.filter((p) => p.roles.includes(session.role)).map((p) =>
    el("a", { href: linkTo(p.path), "aria-current": p === active ? "page" : undefined, text: p.title }),
  );
  nav.replaceChildren(...links);
  nav.hidden = false;
  const who = document.getElementById("who");
  const name = session.kind === "root" ? "Operator (root)" : `${session.username} · ${session.role}`;
  who.replaceChildren(
    el("span", { class: "who-name", text: name }),
    el("button", { type: "button", class: "link", id: "sign-out", onclick: signOut, text: "Sign out" }),
  );
}

async function signOut() {
  try {
    await api("DELETE", `${BASE}/api/session`);
  } catch {
    // the cookie is cleared either way below by showing the sign-in page
  }
  session = null;
  accountList = undefined;
  navigate("/sign-in", { account: undefined });
}

/** The accounts root may pick from, when the server lists them (DESIGN: GET /v1/accounts); else null. */
let accountList;
async function listAccounts() {
  if (accountList !== undefined) return accountList;
  try {
    const r = await api("GET", "/v1/accounts?limit=1000");
    accountList = Array.isArray(r?.data) ? r.data : null;
  } catch (err) {
    // a server without the list route: the account is typed by id
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    accountList = null;
  }
  return accountList;
}

/** Root reaches every account: the account is chosen here and kept in the URL (`?account=`). */
async function accountPicker(ctx) {
  const accounts = await listAccounts();
  const input = accounts
    ? el(
        "select",
        { id: "account-id", name: "account" },
        el("option", { value: "", text: "Choose an account" }),
        accounts.map((a) =>
          el("option", { value: a.id, selected: a.id === ctx.account, text: `${a.name} (${a.id})` }),
        ),
      )
    : el("input", {
        id: "account-id",
        name: "account",
        value: ctx.account || "",
        placeholder: "account id",
        autocomplete: "off",
        spellcheck: "false",
      });
  return el(
    "form",
    {
      class: "account-picker",
      onsubmit: (e) => {
        e.preventDefault();
        navigate(currentPath(), { account: input.value.trim() || undefined });
      },
    },
    el("label", { for: "account-id", text: "Account" }),
    input,
    el("button", { type: "submit", text: "Open" }),
  );
}

export function showError(container, err) {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  container.replaceChildren(el("p", { class: "error", role: "alert", text: message }));
  if (err instanceof ApiError && err.status === 401) {
    container.append(el("p", {}, el("a", { href: `${BASE}/sign-in`, text: "Sign in" })));
  }
}

function renderSignIn(main) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").replaceChildren();
  document.title = "Sign in · Tally";
  const key = el("input", {
    id: "api-key",
    name: "key",
    type: "password",
    required: true,
    autocomplete: "current-password",
    "aria-describedby": "api-key-help",
  });
  const status = el("p", { id: "sign-in-status", role: "alert", class: "error", hidden: true });
  const form = el(
    "form",
    {
      class: "card sign-in",
      onsubmit: async (e) => {
        e.preventDefault();
        status.hidden = true;
        try {
          session = await api("POST", `${BASE}/api/session`, { key: key.value });
          key.value = "";
          navigate("/", {}, { replace: true });
        } catch (err) {
          status.textContent =
            err instanceof ApiError && err.status === 401
              ? "That key was not accepted: it is unknown or revoked."
              : err.message;
          status.hidden = false;
          key.focus();
        }
      },
    },
    el("h1", { text: "Sign in" }),
    el("label", { for: "api-key", text: "API key" }),
    key,
    el("p", {
      id: "api-key-help",
      class: "help",
      text: "Your key is exchanged for a session cookie; it is not kept in the browser.",
    }),
    status,
    el("button", { type: "submit", text: "Sign in" }),
  );
  main.replaceChildren(form);
  key.focus();
}

async function render() {
  const main = document.getElementById("main");
  const path = currentPath();
  if (!session && path !== "/sign-in") {
    try {
      session = await api("GET", `${BASE}/api/session`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) return showError(main, err);
      history.replaceState(null, "", `${BASE}/sign-in`);
      return renderSignIn(main);
    }
  }
  if (path === "/sign-in") {
    if (session) return navigate("/", {}, { replace: true });
    return renderSignIn(main);
  }
  const page = PAGES.find((p) => p.path === path);
  if (!page) {
    main.replaceChildren(
      el("h1", { text: "Not found" }),
      el("p", {}, "There is no such page. ", el("a", { href: linkTo("/"), text: "Go to the overview" })),
    );
    return;
  }
  renderNav(page);
  document.title = `${page.title} · Tally`;
  if (!page.roles.includes(session.role)) {
    main.replaceChildren(
      el("h1", { text: page.title }),
      el("p", {
        class: "notice",
        role: "alert",
        text: `The ${page.title.toLowerCase()} page is for account admins. Ask an admin of your account.`,
      }),
    );
    return;
  }
  const params = new URLSearchParams(location.search);
  const ctx = {
    session,
    params,
    tz: params.get("tz") || browserZone(),
    account: session.kind === "root" ? params.get("account") || "" : session.account_id,
    navigate: (p) => navigate(path, p, { replace: true }),
  };
  const body = el("div", { class: "page" });
  main.replaceChildren(el("h1", { text: page.title }));
  if (session.kind === "root") {
    try {
      main.append(await accountPicker(ctx));
    } catch (err) {
      return showError(main, err);
    }
  }
  main.append(body);
  if (session.kind === "root" && !ctx.account) {
    body.append(
      el("p", {
        class: "empty",
        text: "The operator key reaches every account: choose one above to open its data.",
      }),
    );
    return;
  }
  body.append(el("p", { class: "loading", role: "status", text: "Loading…" }));
  try {
    await page.render(body, ctx);
  } catch (err) {
    showError(body, err);
  }
}

document.addEventListener("click", (e) => {
  const a = e.target instanceof Element ? e.target.closest("a[href^='/dashboard']") : null;
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || a.hasAttribute("download")) return;
  e.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  void render();
});
window.addEventListener("popstate", () => void render());
void render();
