// The administrators' agents page: list the agents, create one, edit its model, prompt, tools,
// the tools that wait for a person's approval, fallback models, MCP servers and limits; delete one.

import { byId, h } from "./dom.js";
import { ErrorLine, commaList, confirmTwice, invalidFields, optionalNumber } from "./admin_common.js";

const BASE = "/api/admin/agents";
const FIELDS = ["name", "model", "description", "system_prompt", "tools", "tools_requiring_approval",
  "fallback_models", "history_window", "context_tokens"];
const URL_TARGET = /^https?:\/\//i;

/** How a server's command shows in one field: words, or a JSON array when an argument has spaces. */
function targetText(server) {
  if (server.url) return server.url;
  const command = server.command ?? [];
  return command.some((arg) => !arg || /[\s"[\]]/.test(arg)) ? JSON.stringify(command) : command.join(" ");
}

function parseTarget(text) {
  const target = text.trim();
  if (URL_TARGET.test(target)) return { url: target };
  if (target.startsWith("[")) {
    try {
      return { command: JSON.parse(target) };
    } catch {
      throw new Error(`"${target}" is not a JSON array of strings`);
    }
  }
  return { command: target.split(/\s+/).filter(Boolean) };
}

export class AgentAdmin {
  constructor(api, onSaved) {
    this.api = api;
    this.onSaved = onSaved;
    this.editing = null;
    this.serverCount = 0;
    this.list = byId("admin-agents");
    this.form = byId("agent-form");
    this.error = new ErrorLine(byId("agent-error"));
    this.fields = Object.fromEntries(FIELDS.map((f) => [f, byId(`agent-${f}`)]));
    this.servers = byId("agent-mcp-list");
    this.newButton = byId("agent-new");
    this.newButton.addEventListener("click", () => this.edit(null));
    byId("agent-mcp-add").addEventListener("click", () => this.addServer({}, true));
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.save(); });
  }

  /** The page is shown: a fresh form, the name field focused, the list loaded. */
  async open() {
    this.edit(null);
    await this.load();
  }

  async load() {
    try {
      const agents = await this.api.get(BASE);
      this.list.replaceChildren(...agents.map((agent) => this.item(agent)));
    } catch (error) {
      this.error.show(error);
    }
  }

  item(agent) {
    const extras = [
      agent.tools.length ? `Tools: ${agent.tools.join(", ")}` : "No tools",
      agent.tools_requiring_approval.length ? `Approval: ${agent.tools_requiring_approval.join(", ")}` : null,
      agent.fallback_models.length ? `Fallbacks: ${agent.fallback_models.join(", ")}` : null,
      agent.mcp_servers.length ? `MCP: ${agent.mcp_servers.map((s) => s.name).join(", ")}` : null,
    ].filter(Boolean);
    const remove = confirmTwice(
      h("button", { type: "button", class: "danger", "aria-label": `Delete ${agent.name}` }, "Delete"),
      `Confirm: delete ${agent.name} and every chat with it`, () => this.remove(agent));
    return h("li", { class: "custom-item" },
      h("div", { class: "custom-head" }, h("strong", {}, agent.name), h("span", { class: "hint" }, agent.model)),
      ...extras.map((line) => h("p", { class: "hint" }, line)),
      h("div", { class: "row" },
        h("button", { type: "button", "aria-label": `Edit ${agent.name}`, onclick: () => this.edit(agent) }, "Edit"),
        remove));
  }

  edit(agent) {
    this.editing = agent;
    const f = this.fields;
    f.name.value = agent?.name ?? "";
    f.name.readOnly = Boolean(agent);
    f.model.value = agent?.model ?? "echo";
    f.description.value = agent?.description ?? "";
    f.system_prompt.value = agent?.system_prompt ?? "";
    for (const key of ["tools", "tools_requiring_approval", "fallback_models"]) {
      f[key].value = (agent?.[key] ?? []).join(", ");
    }
    f.history_window.value = agent?.history_window ?? "";
    f.context_tokens.value = agent?.context_tokens ?? "";
    this.servers.replaceChildren();
    this.serverCount = 0;
    for (const server of agent?.mcp_servers ?? []) this.addServer(server, false);
    byId("agent-form-title").textContent = agent ? `Edit ${agent.name}` : "New agent";
    byId("agent-save").textContent = agent ? "Save agent" : "Create agent";
    this.markInvalid([]);
    this.error.clear();
    (agent ? f.model : f.name).focus();
  }

  addServer(server, focus) {
    const n = ++this.serverCount;
    const name = h("input", { id: `agent-mcp-name-${n}`, class: "mcp-name", spellcheck: "false", autocomplete: "off" });
    const target = h("input", { id: `agent-mcp-target-${n}`, class: "mcp-target", spellcheck: "false", autocomplete: "off" });
    name.value = server.name ?? "";
    target.value = server.name ? targetText(server) : "";
    const row = h("li", { class: "mcp-row" },
      h("label", { for: name.id }, `MCP server ${n} name`), name,
      h("label", { for: target.id }, `MCP server ${n} URL or command`), target,
      h("button", { type: "button", "aria-label": `Remove MCP server ${n}`, onclick: () => {
        row.remove();
        byId("agent-mcp-add").focus();
      } }, "Remove"));
    this.servers.append(row);
    if (focus) name.focus();
  }

  body() {
    const f = this.fields;
    const servers = Array.from(this.servers.children, (row) => ({
      name: row.querySelector(".mcp-name").value.trim(), ...parseTarget(row.querySelector(".mcp-target").value),
    }));
    return {
      name: f.name.value.trim(), model: f.model.value.trim(), description: f.description.value,
      system_prompt: f.system_prompt.value, tools: commaList(f.tools.value),
      tools_requiring_approval: commaList(f.tools_requiring_approval.value),
      fallback_models: commaList(f.fallback_models.value),
      history_window: optionalNumber(f.history_window.value), context_tokens: optionalNumber(f.context_tokens.value),
      mcp_servers: servers,
    };
  }

  async save() {
    let body;
    try {
      body = this.body();
    } catch (error) {
      this.error.show(error.message);
      return;
    }
    try {
      if (this.editing) await this.api.put(`${BASE}/${encodeURIComponent(this.editing.name)}`, body);
      else await this.api.post(BASE, body);
    } catch (error) {
      this.markInvalid(invalidFields(error));
      this.error.show(error);
      return;
    }
    await this.load();
    this.edit(null);
    this.onSaved();
  }

  async remove(agent) {
    try {
      await this.api.delete(`${BASE}/${encodeURIComponent(agent.name)}`);
    } catch (error) {
      this.error.show(error);
      return;
    }
    await this.load();
    if (this.editing?.name === agent.name) this.edit(null);
    this.newButton.focus();
    this.onSaved();
  }

  markInvalid(names) {
    for (const [name, input] of Object.entries(this.fields)) {
      if (names.includes(name)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    this.servers.classList.toggle("invalid", names.includes("mcp_servers"));
  }
}
