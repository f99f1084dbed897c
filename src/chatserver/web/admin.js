// The administrators' agents panel: list the agents, create one, edit its model, prompt and tools.
// Shown only to an administrator (GET /api/me says is_admin); the server checks every request.

import { describeError } from "./api.js";
import { byId, h } from "./dom.js";

const BASE = "/api/admin/agents";

function toolList(text) {
  return text.split(",").map((t) => t.trim()).filter(Boolean);
}

export class AgentAdmin {
  constructor(api, onSaved) {
    this.api = api;
    this.onSaved = onSaved;
    this.editing = null;
    this.panel = byId("admin");
    this.toggle = byId("toggle-admin");
    this.list = byId("admin-agents");
    this.form = byId("agent-form");
    this.error = byId("agent-error");
    this.fields = ["name", "model", "description", "system_prompt", "tools"].map((f) => byId(`agent-${f}`));
    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    byId("close-admin").addEventListener("click", () => { this.setOpen(false); this.toggle.focus(); });
    byId("agent-new").addEventListener("click", () => this.edit(null));
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.save(); });
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.stopPropagation(); this.setOpen(false); this.toggle.focus(); }
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

  async setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (!open) return;
    this.edit(null);
    await this.load();
  }

  async load() {
    try {
      const agents = await this.api.get(BASE);
      this.list.replaceChildren(...agents.map((agent) => h("li", { class: "custom-item" },
        h("div", { class: "custom-head" }, h("strong", {}, agent.name), h("span", { class: "hint" }, agent.model)),
        h("p", { class: "hint" }, agent.tools.length ? `Tools: ${agent.tools.join(", ")}` : "No tools"),
        h("button", { type: "button", "aria-label": `Edit ${agent.name}`, onclick: () => this.edit(agent) }, "Edit"))));
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  edit(agent) {
    this.editing = agent;
    const [name, model, description, prompt, tools] = this.fields;
    name.value = agent?.name ?? "";
    name.readOnly = Boolean(agent);
    model.value = agent?.model ?? "echo";
    description.value = agent?.description ?? "";
    prompt.value = agent?.system_prompt ?? "";
    tools.value = (agent?.tools ?? []).join(", ");
    byId("agent-form-title").textContent = agent ? `Edit ${agent.name}` : "New agent";
    byId("agent-save").textContent = agent ? "Save agent" : "Create agent";
    this.error.hidden = true;
    (agent ? model : name).focus();
  }

  async save() {
    const [name, model, description, prompt, tools] = this.fields.map((f) => f.value);
    const body = { ...(this.editing ?? {}), name: name.trim(), model: model.trim(), description,
      system_prompt: prompt, tools: toolList(tools) };
    for (const key of ["created_at", "updated_at"]) delete body[key];
    try {
      if (this.editing) await this.api.put(`${BASE}/${encodeURIComponent(this.editing.name)}`, body);
      else await this.api.post(BASE, body);
    } catch (error) {
      this.showError(describeError(error).text);
      return;
    }
    await this.load();
    this.edit(null);
    this.onSaved();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }
}
