// The panel of the user's prompt customizations for the selected agent: list (inactive ones too, so
// they can be turned back on), add, edit, switch on or off, delete.

import { ApiError, describeError } from "./api.js";
import { ContentFields } from "./custom_form.js";
import { byId, formatJson, h } from "./dom.js";

const BASE = "/api/agent/prompt_customizations";
const TEMPLATE = '{"instructions": ["Be brief."]}';

export class CustomizationPanel {
  constructor(api) {
    this.api = api;
    this.agent = null;
    this.editing = null;
    this.list = byId("custom-list");
    this.none = byId("no-custom");
    this.form = byId("custom-form");
    this.type = byId("custom-type");
    this.priority = byId("custom-priority");
    this.content = byId("custom-content");
    this.fields = new ContentFields(this.content);
    this.error = byId("custom-error");
    this.title = byId("custom-form-title");
    this.save = byId("custom-save");
    this.cancel = byId("custom-cancel");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.cancel.addEventListener("click", () => this.resetForm());
  }

  async load(agentName) {
    this.agent = agentName;
    byId("panel-agent").textContent = agentName;
    this.resetForm();
    try {
      const rows = await this.api.get(`${BASE}/${encodeURIComponent(agentName)}?include_inactive=true`);
      if (this.agent === agentName) this.render(rows);
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  render(rows) {
    this.none.hidden = rows.length > 0;
    this.list.replaceChildren(
      ...rows.map((row) =>
        h("li", { class: row.is_active ? "custom-item" : "custom-item inactive" },
          h("div", { class: "custom-head" },
            h("code", {}, row.customization_type),
            h("span", { class: "hint" },
              row.is_active ? `priority ${row.priority}` : `inactive (not in the prompt) · priority ${row.priority}`)),
          h("pre", { class: "custom-content" }, formatJson(row.content)),
          h("div", { class: "row" },
            h("button", { type: "button", "aria-label": `Edit ${row.customization_type}`,
              onclick: () => this.startEdit(row) }, "Edit"),
            h("button", { type: "button",
              "aria-label": `${row.is_active ? "Deactivate" : "Activate"} ${row.customization_type}`,
              onclick: () => this.setActive(row, !row.is_active) }, row.is_active ? "Deactivate" : "Activate"),
            h("button", { type: "button", class: "danger", "aria-label": `Delete ${row.customization_type}`,
              onclick: () => this.remove(row) }, "Delete")))),
    );
  }

  startEdit(row) {
    this.editing = row;
    this.title.textContent = `Edit ${row.customization_type}`;
    this.save.textContent = "Save";
    this.cancel.hidden = false;
    this.type.value = row.customization_type;
    this.priority.value = String(row.priority);
    this.content.value = JSON.stringify(row.content, null, 2);
    this.fields.fromJson();
    this.hideError();
    this.fields.firstField().focus();
  }

  resetForm() {
    this.editing = null;
    this.title.textContent = "Add instructions";
    this.save.textContent = "Add";
    this.cancel.hidden = true;
    this.type.value = "instruction_set";
    this.priority.value = "0";
    this.content.value = TEMPLATE;
    this.fields.fromJson();
    this.hideError();
  }

  /** The form as a request body, or null after showing what is wrong. */
  readForm() {
    const type = this.type.value.trim();
    if (!type) return this.invalid("Type must not be empty.", this.type);
    const priority = Number(this.priority.value || "0");
    if (!Number.isInteger(priority)) return this.invalid("Priority must be a whole number.", this.priority);
    let content;
    try {
      content = JSON.parse(this.content.value);
    } catch (error) {
      return this.invalid(`Content is not valid JSON: ${error.message}`, this.content);
    }
    if (content === null || typeof content !== "object" || Array.isArray(content)) {
      return this.invalid('Content must be a JSON object, like {"instructions": ["Be brief."]}.', this.content);
    }
    // Editing keeps the row's on/off state; the Activate/Deactivate button is what changes it.
    const active = this.editing ? this.editing.is_active : true;
    return { agent_name: this.agent, customization_type: type, content, is_active: active, priority };
  }

  async submit() {
    const body = this.readForm();
    if (!body) return;
    this.save.disabled = true;
    try {
      if (this.editing) await this.api.put(`${BASE}/${encodeURIComponent(this.editing.id)}`, body);
      else await this.api.post(`${BASE}/`, body);
      await this.load(body.agent_name);
    } catch (error) {
      const conflict = error instanceof ApiError && error.code === "conflict";
      this.showError(conflict
        ? `You already have "${body.customization_type}" instructions for this agent: edit those instead.`
        : describeError(error).text);
    } finally {
      this.save.disabled = false;
    }
  }

  async setActive(row, active) {
    const { agent_name, customization_type, content, priority } = row;
    const body = { agent_name, customization_type, content, priority, is_active: active };
    try {
      await this.api.put(`${BASE}/${encodeURIComponent(row.id)}`, body);
      await this.load(this.agent);
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  async remove(row) {
    try {
      await this.api.delete(`${BASE}/${encodeURIComponent(row.id)}`);
      await this.load(this.agent);
    } catch (error) {
      this.showError(describeError(error).text);
    }
  }

  invalid(message, field) {
    this.showError(message);
    if (field === this.content) byId("custom-advanced").open = true;
    field.focus();
    return null;
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  hideError() {
    this.error.hidden = true;
    this.error.textContent = "";
  }
}
