// The instructions form: a customization's content as fields (its "instructions" as a list of lines,
// other plain values as fields of their own), kept in step with the JSON editor behind "Advanced".
// The JSON text stays what is sent: the fields only write it.

import { byId, h } from "./dom.js";

const PLAIN = new Set(["string", "number", "boolean"]);

export class ContentFields {
  constructor(textarea) {
    this.textarea = textarea;
    this.box = byId("custom-fields");
    this.advanced = byId("custom-advanced");
    this.content = {};
    textarea.addEventListener("input", () => this.fromJson({ keepAdvanced: true }));
  }

  /** Show the textarea's JSON as fields; content the fields cannot show opens the editor. */
  fromJson({ keepAdvanced = false } = {}) {
    let content;
    try {
      content = JSON.parse(this.textarea.value);
    } catch {
      if (!keepAdvanced) this.advanced.open = true;
      return;
    }
    if (content === null || typeof content !== "object" || Array.isArray(content)) return;
    this.content = content;
    this.render();
  }

  firstField() {
    return this.box.querySelector("input") ?? this.textarea;
  }

  render() {
    const lines = Array.isArray(this.content.instructions) ? this.content.instructions : [];
    const rows = lines.map((line, i) => this.line(line, i));
    const add = h("button", { type: "button", onclick: () => this.addLine() }, "Add instruction");
    const others = Object.entries(this.content).filter(([key]) => key !== "instructions")
      .map(([key, value]) => this.field(key, value));
    this.box.replaceChildren(h("p", { class: "tool-heading" }, "Instructions"),
      h("ol", { class: "instruction-lines" }, ...rows), add, ...others);
  }

  line(text, i) {
    const input = h("input", { type: "text", "aria-label": `Instruction ${i + 1}`, class: "instruction-line" });
    input.value = String(text);
    input.addEventListener("input", () => { this.content.instructions[i] = input.value; this.toJson(); });
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Remove instruction ${i + 1}`,
      onclick: () => { this.content.instructions.splice(i, 1); this.toJson(); this.render(); } }, "Remove");
    return h("li", { class: "row" }, input, remove);
  }

  addLine() {
    if (!Array.isArray(this.content.instructions)) this.content.instructions = [];
    this.content.instructions.push("");
    this.toJson();
    this.render();
    const lines = this.box.querySelectorAll(".instruction-line");
    lines[lines.length - 1]?.focus();
  }

  field(key, value) {
    if (!PLAIN.has(typeof value)) return h("p", { class: "hint" }, `${key}: edit it under Advanced.`);
    const id = `custom-field-${key.replace(/[^\w-]/g, "_")}`;
    const input = h("input", { id, type: typeof value === "boolean" ? "checkbox" : typeof value === "number" ? "number" : "text" });
    if (typeof value === "boolean") input.checked = value;
    else input.value = String(value);
    input.addEventListener("input", () => {
      this.content[key] = typeof value === "boolean" ? input.checked : typeof value === "number" ? Number(input.value) : input.value;
      this.toJson();
    });
    return h("div", { class: "custom-field" }, h("label", { for: id }, key), input);
  }

  toJson() {
    this.textarea.value = JSON.stringify(this.content, null, 2);
  }
}
