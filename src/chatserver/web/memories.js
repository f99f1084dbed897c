// The memories panel: what the agents keep about you (the remember tool's notes), newest first;
// search them, delete one, or delete every note the selected agent keeps.

import { describeError } from "./api.js";
import { byId, h } from "./dom.js";

const PAGE = 100;
const CONFIRM_MS = 5000;

export class MemoriesPanel {
  constructor(api, currentAgent) {
    this.api = api;
    this.currentAgent = currentAgent;
    this.items = [];
    this.next = null;
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
    this.search.addEventListener("input", () => this.render());
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
    this.items = [];
    this.load(null);
    this.search.focus();
  }

  async load(before) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (before) params.set("before", before);
    try {
      const page = await this.api.get(`/api/memories?${params}`);
      this.items.push(...page.items);
      this.next = page.next_before;
      this.render();
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  render() {
    const words = this.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = this.items.filter((m) => words.every((w) => m.content.toLowerCase().includes(w)));
    this.list.replaceChildren(...shown.map((memory) => this.item(memory)));
    this.none.hidden = shown.length > 0;
    this.none.textContent = this.items.length ? "No memory matches." : "No memories yet.";
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
