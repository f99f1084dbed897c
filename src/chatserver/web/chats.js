// The sidebar: the user's chats, newest first, paged by the server's cursor; open and delete.

import { ChatFilter, chatMenu, pinnedFirst, renameInPlace } from "./chat_manage.js";
import { byId, h } from "./dom.js";

const PAGE = 50;
const CONFIRM_MS = 5000;

function when(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export function chatTitle(chat) {
  return chat?.title?.trim() || "Untitled chat";
}

export class ChatList {
  constructor(api, { onOpen, onDeleted, onError, onChanged }) {
    this.api = api;
    this.onChanged = onChanged ?? (() => {});
    this.filter = new ChatFilter(() => this.refresh());
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.onError = onError;
    this.chats = [];
    this.next = null;
    this.active = null;
    this.list = byId("chat-list");
    this.none = byId("no-chats");
    this.moreButton = byId("more-chats");
    this.moreButton.addEventListener("click", () => this.more());
  }

  find(chatId) {
    return this.chats.find((chat) => chat.id === chatId) ?? null;
  }

  async refresh() {
    try {
      const params = this.filter.params();
      params.set("limit", String(PAGE));
      const page = await this.api.get(`/api/chats?${params}`);
      this.chats = page.items;
      this.next = page.next_before;
      this.render();
    } catch (error) {
      this.onError(error);
    }
  }

  async more() {
    if (!this.next) return;
    try {
      const params = this.filter.params();
      params.set("limit", String(PAGE));
      params.set("before", this.next);
      const page = await this.api.get(`/api/chats?${params}`);
      const known = new Set(this.chats.map((chat) => chat.id));
      this.chats.push(...page.items.filter((chat) => !known.has(chat.id)));
      this.next = page.next_before;
      this.render();
    } catch (error) {
      this.onError(error);
    }
  }

  setActive(chatId) {
    this.active = chatId;
    for (const button of this.list.querySelectorAll(".chat-open")) {
      if (button.dataset.chatId === chatId) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
  }

  render() {
    this.none.hidden = this.chats.length > 0;
    this.none.textContent = this.filter.searching ? "No chat matches." : "No chats yet.";
    this.moreButton.hidden = !this.next;
    this.list.replaceChildren(...pinnedFirst(this.chats).map((chat) => this.item(chat)));
    this.setActive(this.active);
  }

  item(chat) {
    const title = chatTitle(chat);
    const open = h("button", { type: "button", class: "chat-open", "data-chat-id": chat.id,
      onclick: () => this.onOpen(chat) },
      h("span", { class: "chat-name" }, chat.pinned ? `📌 ${title}` : title),
      chat.snippet ? h("span", { class: "chat-snippet" }, chat.snippet) : null,
      h("span", { class: "chat-meta" }, `${chat.agent_name} · ${when(chat.updated_at)}`));
    const remove = h("button", { type: "button", class: "chat-delete danger",
      "aria-label": `Delete chat ${title}`, onclick: () => this.confirmDelete(chat, remove) }, "Delete");
    const item = h("li", { class: "chat-item" }, open);
    item.append(chatMenu(chat, title, {
      rename: () => renameInPlace(item, chat, title, (text) => this.change(chat, { title: text })),
      change: (change) => this.change(chat, change),
    }), remove);
    return item;
  }

  /** PATCH the chat, then show the list as it now is. */
  async change(chat, change) {
    try {
      const changed = await this.api.patch(`/api/chats/${encodeURIComponent(chat.id)}`, change);
      this.onChanged(changed);
    } catch (error) {
      this.onError(error);
    }
    await this.refresh();
  }

  /** First press arms the button, a second press within a few seconds deletes. */
  async confirmDelete(chat, button) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = "Confirm";
      button.setAttribute("aria-label", `Confirm: delete chat ${chatTitle(chat)}`);
      setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = "Delete";
        button.setAttribute("aria-label", `Delete chat ${chatTitle(chat)}`);
      }, CONFIRM_MS);
      return;
    }
    try {
      await this.api.delete(`/api/chats/${encodeURIComponent(chat.id)}`);
    } catch (error) {
      if (error.status !== 404) {
        this.onError(error);
        return;
      }
    }
    this.chats = this.chats.filter((c) => c.id !== chat.id);
    this.render();
    this.onDeleted(chat);
  }
}
