import { el } from "./format.js";

/** A modal dialog; resolves with the submitter's value ("ok" or "cancel"). */
export function openDialog(title, content, confirmText, danger = false) {
  return new Promise((resolve) => {
    const titleId = "dialog-title";
    const form = el(
      "form",
      { method: "dialog" },
      el("h2", { id: titleId, text: title }),
      content,
      el(
        "div",
        { class: "actions" },
        el("button", {
          type: "submit",
          value: "cancel",
          formnovalidate: true,
          class: "secondary",
          text: "Cancel",
        }),
        el("button", {
          type: "submit",
          value: "ok",
          class: danger ? "danger" : undefined,
          text: confirmText,
        }),
      ),
    );
    const dialog = el("dialog", { "aria-labelledby": titleId }, form);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue || "cancel");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
