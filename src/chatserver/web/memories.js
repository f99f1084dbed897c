// The memories panel: what the agents keep about you (the remember tool's notes), newest first;
// search them (on the server: GET /api/memories?q=), delete one, or delete every note the selected
// agent keeps.

import { describeError } from "./api.js";
import { byId, h } from "./dom.js";

const PAGE = 100;
const CONFIRM_MS = 5000;
/** Typing pauses this long before the search goes to the server. */
const SEARCH_DELAY_MS = 250;

export class MemoriesPanel {
  constructor(api, currentAgent) {
    this.api = api;
    this.currentAgent = currentAgent;
    this.items = [];
    this.next = null;
    this.query = "";
    this.searching = null;
    this.panel = byId("memories");
    this.toggle = byId("toggle-memories");
    this.list = byId("memory-list");
    this.none = byId("no-memories");
    this.search = byId("memory-search");
    this.error = byId("memory-error");
    this.more = byId("more-memories");
    this.eraseButton = byId("erase-memories");
    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    byId("close-memories").addEventListener("click", () => { this.setOpen(false); this.toggle.focus(); });
    this.search.addEventListener("input", () => {
      clearTimeout(this.searching);
      this.searching = setTimeout(() => this.reload(), SEARCH_DELAY_MS);
    });
    this.more.addEventListener("click", () => this.load(this.next));
    this.eraseButton.addEventListener("click", () => this.eraseAll());
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.stopPropagation(); this.setOpen(false); this.toggle.focus(); }
    });
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (!open) return;
    byId("memories-agent").textContent = this.currentAgent();
    this.reload();
    this.search.focus();
  }

  /** The first page again, for what the search box holds now. */
  reload() {
    this.items = [];
    this.next = null;
    this.load(null);
  }

  async load(before) {
    const query = this.search.value.trim();
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (before) params.set("before", before);
    if (query) params.set("q", query);
    try {
      const page = await this.api.get(`/api/memories?${params}`);
      // A reply to an older search (the box changed since it was sent) is dropped.
      if (query !== this.search.value.trim()) return;
      this.items.push(...page.items);
      this.next = page.next_before;
      this.query = query;
      this.render();
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  render() {
    this.list.replaceChildren(...this.items.map((memory) => this.item(memory)));
    this.none.hidden = this.items.length > 0;
    this.none.textContent = this.query ? "No memory matches." : "No memories yet.";
    this.more.hidden = !this.next;
  }

  item(memory) {
    const when = new Date(memory.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete memory: ${memory.content.slice(0, 40)}`,
      onclick: () => this.remove(memory) }, "Delete");
    return h("li", { class: "memory" },
      h("p", { class: "memory-text" }, memory.content),
      h("p", { class: "hint" }, `${memory.agent_name} · `, h("time", { datetime: memory.created_at }, when)),
      remove);
  }

  async remove(memory) {
    try {
      await this.api.delete(`/api/memories/${memory.id}`);
    } catch (error) {
      if (error.status !== 404) { this.showError(describeError(error).text); return; }
    }
    this.items = this.items.filter((m) => m.id !== memory.id);
    this.render();
  }

  /** First press arms the button, a second one within a few seconds erases the agent's notes. */
  async eraseAll() {
    const button = this.eraseButton;
    const agent = this.currentAgent();
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = `Confirm: delete all of ${agent}'s memories`;
      setTimeout(() => { button.classList.remove("armed"); button.textContent = "Delete all"; }, CONFIRM_MS);
      return;
    }
    button.classList.remove("armed");
    button.textContent = "Delete all";
    try {
      await this.api.delete(`/api/memories?agent_name=${encodeURIComponent(agent)}`);
    } catch (error) {
      this.showError(describeError(error).text);
      return;
    }
    this.items = this.items.filter((m) => m.agent_name !== agent);
    this.render();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }
}
