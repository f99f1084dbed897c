// Managing a chat from the sidebar: rename in place, pin, archive (PATCH /api/chats/{id}), and the
// search box and archived toggle that choose which chats the list shows.

import { byId, h } from "./dom.js";

/** The "More" menu of a chat: Rename, Pin or Unpin, Archive or Unarchive. */
export function chatMenu(chat, title, { rename, change }) {
  const item = (label, onclick) => h("button", { type: "button", class: "menu-item", onclick }, label);
  return h("details", { class: "chat-menu" },
    h("summary", { "aria-label": `More actions for chat ${title}` }, "⋯"),
    h("div", { class: "menu" },
      item("Rename", rename),
      item(chat.pinned ? "Unpin" : "Pin", () => change({ pinned: !chat.pinned })),
      item(chat.archived ? "Unarchive" : "Archive", () => change({ archived: !chat.archived }))));
}

/** Swap the chat's button for a title field: Enter saves, Escape cancels. */
export function renameInPlace(item, chat, title, onSave) {
  const open = item.querySelector(".chat-open");
  const field = h("input", { type: "text", class: "rename-box", maxlength: 200, "aria-label": `New title for ${title}` });
  field.value = chat.title ?? "";
  const cancel = () => { field.remove(); open.hidden = false; open.focus(); };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel();
    if (event.key === "Enter" && field.value.trim()) onSave(field.value.trim());
  });
  open.hidden = true;
  open.after(field);
  field.focus();
  field.select();
}

/** The search box and the archived toggle: `onChange()` when either changes. */
export class ChatFilter {
  constructor(onChange) {
    this.query = byId("chat-query");
    this.archived = byId("show-archived");
    let timer = null;
    this.query.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(onChange, 250);
    });
    byId("chat-search").addEventListener("submit", (event) => { event.preventDefault(); onChange(); });
    this.archived.addEventListener("change", onChange);
  }

  /** The query of GET /api/chats for what is chosen. */
  params() {
    const text = this.query.value.trim();
    const params = new URLSearchParams({ archived: String(this.archived.checked) });
    if (text) params.set("q", text);
    return params;
  }

  get searching() {
    return Boolean(this.query.value.trim());
  }
}

/** Pinned chats first, each group newest first (the server's order). */
export function pinnedFirst(chats) {
  return [...chats.filter((c) => c.pinned), ...chats.filter((c) => !c.pinned)];
}
