// What the admin pages share: the server's reasons shown next to a form, fields marked invalid,
// a two-press confirmation for what cannot be undone, and labelled fields built as elements.

import { ApiError, describeError } from "./api.js";
import { h } from "./dom.js";

const CONFIRM_MS = 5000;

/** The server's reason: each problem of a 422 as "field: message", anything else as described. */
export function problemText(error) {
  if (error instanceof ApiError && Array.isArray(error.detail)) {
    return error.detail.map((item) => {
      const loc = (item?.loc ?? []).filter((part) => part !== "body");
      return loc.length ? `${loc.join(".")}: ${item.msg}` : String(item?.msg ?? item);
    }).join("; ");
  }
  return describeError(error).text;
}

/** The top-level body fields a 422 names. */
export function invalidFields(error) {
  if (!(error instanceof ApiError) || !Array.isArray(error.detail)) return [];
  return error.detail.map((item) => (item?.loc ?? []).filter((part) => part !== "body")[0]).filter(Boolean);
}

/** An error line (role=alert) that a form points to with aria-describedby. */
export class ErrorLine {
  constructor(element) {
    this.element = element;
  }

  show(error) {
    this.element.textContent = typeof error === "string" ? error : problemText(error);
    this.element.hidden = false;
  }

  clear() {
    this.element.textContent = "";
    this.element.hidden = true;
  }
}

/** The first press arms `button` (its text and label say what a second press does), a second
 * press within a few seconds runs `action`. */
export function confirmTwice(button, confirmText, action) {
  const text = button.textContent;
  const label = button.getAttribute("aria-label");
  let timer = null;
  const disarm = () => {
    clearTimeout(timer);
    button.classList.remove("armed");
    button.textContent = text;
    if (label) button.setAttribute("aria-label", label);
  };
  button.addEventListener("click", () => {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = confirmText;
      button.setAttribute("aria-label", confirmText);
      timer = setTimeout(disarm, CONFIRM_MS);
      return;
    }
    disarm();
    action();
  });
  return button;
}

/** A label and its control, the label tied to the control's id. */
export function field(id, text, control, hint) {
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "admin-field" }, h("label", { for: id }, text), control,
    hint ? h("span", { id: hintId, class: "hint" }, hint) : null);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function commaList(text) {
  return text.split(",").map((item) => item.trim()).filter(Boolean);
}

/** "" for an empty field, else the number typed (the server checks its range). */
export function optionalNumber(text) {
  const trimmed = text.trim();
  return trimmed === "" ? null : Number(trimmed);
}
