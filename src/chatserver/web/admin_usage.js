// The administrators' usage and budgets page: everyone's usage grouped by user, agent, model or
// day over a date range; every budget with what it used and has left; set one; delete one.

import { byId, h } from "./dom.js";
import { ErrorLine, confirmTwice, field, optionalNumber, when } from "./admin_common.js";

const SCOPES = {
  default: ["Every user without a budget of their own (the default)", false, false],
  user: ["One user, on every agent", true, false],
  agent: ["One agent, all its users together", false, true],
  both: ["One user on one agent", true, true],
};
const COLUMNS = ["Input tokens", "Output tokens", "Requests", "Runs", "Cost (USD)"];

function select(options) {
  return h("select", {}, ...Object.entries(options).map(([value, text]) => h("option", { value }, text)));
}

function cost(value) {
  return value === null || value === undefined ? "unknown" : `$${value.toFixed(4)}`;
}

function limits(budget) {
  return [
    budget.max_tokens !== null ? `${budget.max_tokens} tokens` : null,
    budget.max_requests !== null ? `${budget.max_requests} requests` : null,
    budget.max_cost_usd !== null ? `$${budget.max_cost_usd}` : null,
  ].filter(Boolean).join(", ");
}

function amounts(values) {
  if (!values) return "per user";
  return [
    values.tokens !== null ? `${values.tokens} tokens` : null,
    values.requests !== null ? `${values.requests} requests` : null,
    values.cost_usd !== null ? cost(values.cost_usd) : null,
  ].filter(Boolean).join(", ");
}

export class UsageAdmin {
  constructor(api) {
    this.api = api;
    this.page = byId("admin-usage-page");
    this.built = false;
    this.names = new Map();
  }

  build() {
    this.groupBy = select({ user: "User", agent: "Agent", model: "Model", day: "Day" });
    this.from = h("input", { type: "date" });
    this.to = h("input", { type: "date" });
    this.usageError = new ErrorLine(h("p", { class: "error-text", role: "alert", hidden: true }));
    this.table = h("div", { class: "table-wrap" });
    const usageForm = h("form", { class: "custom-form", novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.loadUsage(); } },
    h("h4", {}, "Usage"),
    field("usage-group", "Group by", this.groupBy),
    h("div", { class: "row" }, field("usage-from", "From (UTC)", this.from), field("usage-to", "To (UTC, included)", this.to)),
    this.usageError.element,
    h("button", { type: "submit", class: "primary" }, "Show usage"));
    this.page.append(usageForm, this.table, ...this.buildBudgets());
    this.built = true;
  }

  buildBudgets() {
    this.scope = select(Object.fromEntries(Object.entries(SCOPES).map(([key, [text]]) => [key, text])));
    this.budgetUser = h("input", { list: "budget-users", spellcheck: "false", autocomplete: "off" });
    this.budgetAgent = h("input", { list: "budget-agents", spellcheck: "false", autocomplete: "off" });
    this.period = select({ day: "Day (UTC)", month: "Month (UTC)" });
    this.maxTokens = h("input", { type: "number", min: "0", step: "1" });
    this.maxRequests = h("input", { type: "number", min: "0", step: "1" });
    this.maxCost = h("input", { type: "number", min: "0", step: "0.01" });
    this.userRow = field("budget-user", "User id", this.budgetUser);
    this.agentRow = field("budget-agent", "Agent name", this.budgetAgent);
    this.scope.addEventListener("change", () => this.showScope());
    this.budgetError = new ErrorLine(h("p", { id: "budget-error", class: "error-text", role: "alert", hidden: true }));
    this.budgetList = h("div", { class: "table-wrap" });
    this.userOptions = h("datalist", { id: "budget-users" });
    this.agentOptions = h("datalist", { id: "budget-agents" });
    const form = h("form", { class: "custom-form", novalidate: true, "aria-describedby": "budget-error",
      onsubmit: (event) => { event.preventDefault(); this.saveBudget(); } },
    h("h4", {}, "Set a budget"),
    h("p", { class: "hint" }, "Replaces the budget of the same scope and period. Leave a limit empty for none."),
    field("budget-scope", "Applies to", this.scope), this.userRow, this.agentRow,
    field("budget-period", "Period", this.period),
    field("budget-tokens", "Most tokens", this.maxTokens),
    field("budget-requests", "Most requests", this.maxRequests),
    field("budget-cost", "Most cost (USD)", this.maxCost),
    this.budgetError.element,
    h("button", { type: "submit", class: "primary" }, "Set budget"));
    this.showScope();
    return [h("h4", {}, "Budgets"), this.budgetList, form, this.userOptions, this.agentOptions];
  }

  /** The page is shown: usage and budgets loaded, the first field of the usage form focused. */
  async open() {
    if (!this.built) this.build();
    this.groupBy.focus();
    await this.loadNames();
    await Promise.all([this.loadUsage(), this.loadBudgets()]);
  }

  async loadNames() {
    try {
      const [users, agents] = await Promise.all([this.api.get("/api/admin/users"), this.api.get("/api/admin/agents")]);
      this.names = new Map(users.map((user) => [user.id, user.name]));
      this.userOptions.replaceChildren(...users.map((user) => h("option", { value: user.id }, user.name ?? user.id)));
      this.agentOptions.replaceChildren(...agents.map((agent) => h("option", { value: agent.name })));
    } catch (error) {
      this.usageError.show(error);
    }
  }

  userLabel(id) {
    const name = this.names.get(id);
    return name ? `${name} (${id})` : id;
  }

  async loadUsage() {
    const params = new URLSearchParams({ group_by: this.groupBy.value });
    if (this.from.value) params.set("from", this.from.value);
    if (this.to.value) params.set("to", this.to.value);
    let report;
    try {
      report = await this.api.get(`/api/admin/usage?${params}`);
    } catch (error) {
      this.usageError.show(error);
      return;
    }
    this.usageError.clear();
    const byUser = this.groupBy.value === "user";
    const row = (line, label) => h("tr", {}, h("th", { scope: "row" }, label),
      ...[line.input_tokens, line.output_tokens, line.requests, line.runs].map((n) => h("td", {}, String(n))),
      h("td", {}, cost(line.cost_usd)));
    this.table.replaceChildren(h("table", { class: "admin-table" },
      h("caption", {}, report.items.length ? `Usage by ${this.groupBy.value}` : "No usage in this range"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, this.groupBy.selectedOptions[0].textContent),
        ...COLUMNS.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, ...report.items.map((line) => row(line, byUser ? this.userLabel(line.key) : line.key))),
      h("tfoot", {}, row(report.totals, "Total"))));
  }

  async loadBudgets() {
    let budgets;
    try {
      budgets = await this.api.get("/api/admin/budgets");
    } catch (error) {
      this.budgetError.show(error);
      return;
    }
    if (!budgets.length) { this.budgetList.replaceChildren(h("p", { class: "hint" }, "No budgets: nobody is limited.")); return; }
    this.budgetList.replaceChildren(h("table", { class: "admin-table" },
      h("caption", {}, "Budgets, with this period's use"),
      h("thead", {}, h("tr", {}, ...["Applies to", "Period", "Limits", "Used", "Left", "Resets", ""].map(
        (name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, ...budgets.map((budget) => this.budgetRow(budget)))));
  }

  scopeText(budget) {
    if (!budget.user_id && !budget.agent_name) return "Default (each user)";
    if (!budget.user_id) return `${budget.agent_name} (all users)`;
    const user = this.userLabel(budget.user_id);
    return budget.agent_name ? `${user} on ${budget.agent_name}` : user;
  }

  budgetRow(budget) {
    const scope = this.scopeText(budget);
    const remove = confirmTwice(
      h("button", { type: "button", class: "danger", "aria-label": `Delete budget: ${scope}, ${budget.period}` }, "Delete"),
      `Confirm: delete budget ${scope}, ${budget.period}`, () => this.deleteBudget(budget));
    return h("tr", {}, h("th", { scope: "row" }, scope), h("td", {}, budget.period), h("td", {}, limits(budget)),
      h("td", {}, amounts(budget.used)), h("td", {}, amounts(budget.remaining)),
      h("td", {}, budget.resets_at ? when(budget.resets_at) : ""), h("td", {}, remove));
  }

  showScope() {
    const [, user, agent] = SCOPES[this.scope.value];
    this.userRow.hidden = !user;
    this.agentRow.hidden = !agent;
  }

  async saveBudget() {
    const [, user, agent] = SCOPES[this.scope.value];
    const body = {
      period: this.period.value,
      max_tokens: optionalNumber(this.maxTokens.value),
      max_requests: optionalNumber(this.maxRequests.value),
      max_cost_usd: optionalNumber(this.maxCost.value),
    };
    if (user) body.user_id = this.budgetUser.value.trim();
    if (agent) body.agent_name = this.budgetAgent.value.trim();
    try {
      await this.api.post("/api/admin/budgets", body);
    } catch (error) {
      this.budgetError.show(error);
      return;
    }
    this.budgetError.clear();
    for (const input of [this.maxTokens, this.maxRequests, this.maxCost]) input.value = "";
    await this.loadBudgets();
  }

  async deleteBudget(budget) {
    try {
      await this.api.delete(`/api/admin/budgets/${encodeURIComponent(budget.id)}`);
    } catch (error) {
      this.budgetError.show(error);
      return;
    }
    await this.loadBudgets();
    this.scope.focus();
  }
}
