// Actions under a stored message: its time, Copy, Edit (yours) or Regenerate (answers), and the
// branch arrows "< 2/3 >" that switch between the versions of a message (conversations are trees).

import { h } from "./dom.js";

function stamp(iso) {
  const date = new Date(iso);
  const label = date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  return h("time", { datetime: iso, title: date.toISOString() }, label);
}

/** Copy `text`; the button says whether it worked. */
export async function copyText(button, text) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = label; }, 1500);
}

function arrows(message, onSwitch) {
  const { index, count, siblings } = message.branch;
  const go = (step) => onSwitch(siblings[index - 1 + step]);
  return h("span", { class: "branch", role: "group", "aria-label": `Version ${index} of ${count}` },
    h("button", { type: "button", class: "icon", "aria-label": "Previous version", disabled: index <= 1,
      onclick: () => go(-1) }, "<"),
    h("span", { class: "branch-count" }, `${index}/${count}`),
    h("button", { type: "button", class: "icon", "aria-label": "Next version", disabled: index >= count,
      onclick: () => go(1) }, ">"));
}

/**
 * The bar under `message` (as GET /api/chats/{id}/messages gives it). `text` is what Copy copies
 * (an answer's whole text); `actions` = {edit(message, item), regenerate(message), switchTo(id)}.
 */
export function messageBar(message, text, actions) {
  const bar = h("div", { class: "msg-actions", "data-message-id": message.id }, stamp(message.created_at));
  const copy = h("button", { type: "button", class: "link", onclick: () => copyText(copy, text) }, "Copy");
  bar.append(copy);
  if (!actions) return bar;
  if (message.role === "user") {
    bar.append(h("button", { type: "button", class: "link",
      onclick: (event) => actions.edit(message, event.target.closest("li")) }, "Edit"));
  } else {
    bar.append(h("button", { type: "button", class: "link", onclick: () => actions.regenerate(message) },
      "Regenerate"));
  }
  if (message.branch && message.branch.count > 1) bar.append(arrows(message, actions.switchTo));
  return bar;
}

/** Swap a user message for a box to edit it; `onSave(text)` resends it as a new version. */
export function editInPlace(item, message, onSave) {
  const plain = item.querySelector(".plain");
  const box = h("textarea", { class: "edit-box", "aria-label": "Edit message", rows: 3 });
  box.value = message.content;
  const restore = () => { form.remove(); plain.hidden = false; };
  const form = h("form", { class: "edit-form", onsubmit: (event) => {
    event.preventDefault();
    if (box.value.trim()) onSave(box.value);
  } }, box,
  h("div", { class: "edit-buttons" },
    h("button", { type: "submit" }, "Save and send"),
    h("button", { type: "button", class: "secondary", onclick: restore }, "Cancel")));
  box.addEventListener("keydown", (event) => { if (event.key === "Escape") restore(); });
  plain.hidden = true;
  plain.after(form);
  box.focus();
}

/** Copy buttons on the code blocks of a rendered answer. */
export function addCodeCopy(element) {
  for (const pre of element.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("code-block")) continue;
    const wrap = h("div", { class: "code-block" });
    pre.replaceWith(wrap);
    const copy = h("button", { type: "button", class: "code-copy", "aria-label": "Copy code",
      onclick: () => copyText(copy, (pre.textContent ?? "").replace(/\n$/, "")) }, "Copy");
    wrap.append(copy, pre);
  }
}
