// The administration panel: its pages (agents, users and keys, usage and budgets) behind a small
// navigation. Shown only to an administrator (GET /api/me says is_admin); the server checks every
// request, so the panel hiding is a convenience, not a guard.

import { byId } from "./dom.js";
import { AgentAdmin } from "./admin_agents.js";
import { UsageAdmin } from "./admin_usage.js";
import { UserAdmin } from "./admin_users.js";

const NAV_KEYS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

export class AdminPanel {
  constructor(api, onAgentsChanged) {
    this.panel = byId("admin");
    this.toggle = byId("toggle-admin");
    this.pages = { agents: new AgentAdmin(api, onAgentsChanged), users: new UserAdmin(api), usage: new UsageAdmin(api) };
    this.tabs = Array.from(this.panel.querySelectorAll(".admin-nav button"));
    this.current = "agents";
    this.api = api;
    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    byId("close-admin").addEventListener("click", () => this.close());
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.page));
      tab.addEventListener("keydown", (event) => this.moveAlongNav(event, tab));
    }
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.stopPropagation(); this.close(); }
    });
  }

  /** Offer the panel to administrators only. */
  async offer() {
    try {
      const me = await this.api.get("/api/me");
      this.toggle.hidden = !me.is_admin;
    } catch {
      this.toggle.hidden = true;
    }
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.show(this.current);
  }

  close() {
    this.setOpen(false);
    this.toggle.focus();
  }

  /** Show one page: its tab marked current, the others hidden, focus in the page's first field. */
  show(name) {
    this.current = name;
    for (const tab of this.tabs) {
      const shown = tab.dataset.page === name;
      if (shown) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
      byId(tab.getAttribute("aria-controls")).hidden = !shown;
    }
    return this.pages[name].open();
  }

  /** Arrow keys move between the tabs, Home and End to the first and last (Tab still leaves). */
  moveAlongNav(event, tab) {
    const at = this.tabs.indexOf(tab);
    let next = null;
    if (event.key in NAV_KEYS) next = (at + NAV_KEYS[event.key] + this.tabs.length) % this.tabs.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = this.tabs.length - 1;
    if (next === null) return;
    event.preventDefault();
    this.tabs[next].focus();
  }
}
