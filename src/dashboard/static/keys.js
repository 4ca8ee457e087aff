import { ApiError, api } from "./api.js";
import { openDialog } from "./dialog.js";
import { el, showInstant } from "./format.js";

/** The account's keys, when the server has the list route (DESIGN: GET /v1/accounts/{id}/keys). */
async function listKeys(ctx) {
  try {
    const r = await api("GET", `/v1/accounts/${encodeURIComponent(ctx.account)}/keys?limit=1000`);
    return Array.isArray(r?.data) ? r.data : null;
  } catch (err) {
    // a server without the list route: keys are revoked by id instead
    if (err instanceof ApiError && err.status === 404 && /^Route /.test(err.message)) return null;
    throw err;
  }
}

async function confirmRevoke(ctx, keyId, label) {
  const own = ctx.session.key_id === keyId;
  const content = el("p", {
    text: own
      ? `Revoke ${label}? It is the key you signed in with: this session ends too.`
      : `Revoke ${label}? Every request with it is refused from then on. This cannot be undone.`,
  });
  return (await openDialog("Revoke API key", content, "Revoke key", true)) === "ok";
}

async function revoke(ctx, keyId, label, status) {
  if (!(await confirmRevoke(ctx, keyId, label))) return false;
  try {
    await api("DELETE", `/v1/keys/${encodeURIComponent(keyId)}`);
    status.textContent = `${label} revoked: it is refused from now on.`;
    return true;
  } catch (err) {
    status.textContent = `Not revoked: ${err.message}`;
    return false;
  }
}

function keyRow(ctx, k, status) {
  const label = `key ${k.label} (${k.prefix}…)`;
  const button = k.revoked_at
    ? el("span", { text: `revoked ${showInstant(k.revoked_at, ctx.tz)}` })
    : el("button", {
        type: "button",
        class: "danger",
        "aria-label": `Revoke ${label}`,
        onclick: async () => {
          if (await revoke(ctx, k.id, label, status)) {
            button.replaceWith(el("span", { text: "revoked" }));
          }
        },
        text: "Revoke",
      });
  return el(
    "tr",
    { "data-key-id": k.id },
    el("td", { "data-label": "Label", text: k.label }),
    el("td", { "data-label": "Prefix", class: "mono", text: `${k.prefix}…` }),
    el("td", { "data-label": "Key id", class: "mono", text: k.id }),
    el("td", { "data-label": "Created", text: k.created_at ? showInstant(k.created_at, ctx.tz) : "" }),
    el("td", { "data-label": "Action" }, button),
  );
}

function keyTable(caption, id) {
  const tbody = el("tbody");
  const table = el(
    "table",
    { id },
    el("caption", { text: caption }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ["Label", "Prefix", "Key id", "Created", ""].map((h) =>
          el("th", { scope: "col", text: h || "Action" }),
        ),
      ),
    ),
    tbody,
  );
  table.classList.add("responsive");
  return { table, tbody };
}

export async function renderKeys(body, ctx) {
  const status = el("p", { id: "keys-status", role: "status", class: "status" });
  const listed = await listKeys(ctx);

  // create: the secret is shown once, here, and never again
  const userId = el("input", {
    id: "new-key-user",
    name: "user_id",
    required: true,
    value: ctx.session.user_id || "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const label = el("input", {
    id: "new-key-label",
    name: "label",
    maxlength: "100",
    placeholder: "e.g. Production Key",
    autocomplete: "off",
  });
  const created = el("div", { id: "new-key-result", "aria-live": "polite" });
  const session = keyTable("Keys created on this page", "created-keys");
  const listTable = keyTable("Keys of this account", "account-keys");
  const noKeys = el("p", { class: "empty", text: "This account has no keys yet." });
  session.table.hidden = true;
  const createForm = el(
    "form",
    {
      class: "card",
      "aria-labelledby": "create-key-title",
      onsubmit: async (e) => {
        e.preventDefault();
        created.replaceChildren();
        try {
          const k = await api(
            "POST",
            `/v1/users/${encodeURIComponent(userId.value.trim())}/keys`,
            label.value.trim() ? { label: label.value.trim() } : {},
          );
          const secret = el("input", {
            id: "new-key-secret",
            readonly: true,
            value: k.key,
            "aria-describedby": "new-key-once",
            class: "mono",
          });
          created.replaceChildren(
            el(
              "div",
              { class: "secret" },
              el("label", { for: "new-key-secret", text: `Secret of ${k.label}` }),
              secret,
              el("p", {
                id: "new-key-once",
                class: "notice",
                text: "Copy it now: this is the only time Tally shows it. It is stored only as a hash.",
              }),
              el("button", {
                type: "button",
                class: "secondary",
                onclick: async () => {
                  secret.select();
                  try {
                    await navigator.clipboard.writeText(k.key);
                    status.textContent = "Secret copied.";
                  } catch {
                    status.textContent = "Select the secret and copy it.";
                  }
                },
                text: "Copy",
              }),
            ),
          );
          label.value = "";
          if (listed) {
            // the account's list is on the page: the new key joins it, listed once
            listTable.table.hidden = false;
            noKeys.remove();
            listTable.tbody.append(keyRow(ctx, k, status));
          } else {
            session.table.hidden = false;
            session.tbody.prepend(
              keyRow(
                ctx,
                { id: k.id, label: k.label, prefix: k.prefix, created_at: k.created_at, revoked_at: null },
                status,
              ),
            );
          }
        } catch (err) {
          created.replaceChildren(
            el("p", { class: "error", role: "alert", text: `No key created: ${err.message}` }),
          );
        }
      },
    },
    el("h2", { id: "create-key-title", text: "Create a key" }),
    el("div", { class: "field" }, el("label", { for: "new-key-user", text: "For user (id)" }), userId),
    el("div", { class: "field" }, el("label", { for: "new-key-label", text: "Label (optional)" }), label),
    el("button", { type: "submit", text: "Create key" }),
    created,
  );

  let listPart;
  if (listed) {
    for (const k of listed) listTable.tbody.append(keyRow(ctx, k, status));
    listTable.table.hidden = listed.length === 0;
    listPart = el(
      "div",
      {},
      ...(listed.length ? [] : [noKeys]),
      el("div", { class: "table-wrap" }, listTable.table),
    );
  } else {
    const keyId = el("input", {
      id: "revoke-key-id",
      name: "key_id",
      required: true,
      autocomplete: "off",
      spellcheck: "false",
    });
    listPart = el(
      "form",
      {
        class: "card",
        "aria-labelledby": "revoke-key-title",
        onsubmit: async (e) => {
          e.preventDefault();
          if (await revoke(ctx, keyId.value.trim(), `key ${keyId.value.trim()}`, status)) keyId.value = "";
        },
      },
      el("h2", { id: "revoke-key-title", text: "Revoke a key" }),
      el("p", {
        class: "help",
        text: "This server does not list an account's keys yet; revoke a key by its id (shown when it was created).",
      }),
      el("div", { class: "field" }, el("label", { for: "revoke-key-id", text: "Key id" }), keyId),
      el("button", { type: "submit", class: "danger", text: "Revoke key" }),
    );
  }
  body.replaceChildren(status, createForm, el("div", { class: "table-wrap" }, session.table), listPart);
}
