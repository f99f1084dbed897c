// The administrators' users page: every user with their active keys; issue a key (shown once);
// one user's keys, each revocable; erasing a user behind a typed confirmation.

import { byId, h } from "./dom.js";
import { ErrorLine, confirmTwice, field, when } from "./admin_common.js";

const USERS = "/api/admin/users";
const KEYS = "/api/admin/keys";

function userName(user) {
  return user.name ?? user.id;
}

export class UserAdmin {
  constructor(api) {
    this.api = api;
    this.page = byId("admin-users-page");
    this.built = false;
  }

  build() {
    this.userField = h("input", { spellcheck: "false", autocomplete: "off" });
    this.adminBox = h("input", { type: "checkbox", id: "key-admin" });
    this.issueError = new ErrorLine(h("p", { id: "key-error", class: "error-text", role: "alert", hidden: true }));
    this.issued = h("div", { class: "issued-key", hidden: true });
    const form = h("form", { class: "custom-form", novalidate: true, "aria-describedby": "key-error",
      onsubmit: (event) => { event.preventDefault(); this.issue(); } },
    h("h4", {}, "Issue an API key"),
    field("key-user", "User name (a new name creates the user)", this.userField),
    h("label", { class: "toggle" }, this.adminBox, " Give admin rights (to every key of the user)"),
    this.issueError.element,
    h("button", { type: "submit", class: "primary" }, "Issue key"));
    this.listHeading = h("h4", { tabindex: "-1" }, "Users");
    this.list = h("ul", { class: "custom-list" });
    this.listError = new ErrorLine(h("p", { class: "error-text", role: "alert", hidden: true }));
    this.overview = h("div", { class: "admin-stack" }, form, this.issued, this.listHeading, this.listError.element, this.list);
    this.detail = h("div", { class: "admin-stack", hidden: true });
    this.page.append(this.overview, this.detail);
    this.built = true;
  }

  /** The page is shown: the users listed, the issue form's name field focused. */
  async open() {
    if (!this.built) this.build();
    this.showOverview();
    this.userField.focus();
    await this.load();
  }

  showOverview() {
    this.detail.hidden = true;
    this.overview.hidden = false;
  }

  async load() {
    try {
      const users = await this.api.get(USERS);
      this.list.replaceChildren(...users.map((user) => this.item(user)));
      this.listError.clear();
    } catch (error) {
      this.listError.show(error);
    }
  }

  item(user) {
    const keys = `${user.active_keys} active key${user.active_keys === 1 ? "" : "s"}`;
    return h("li", { class: "custom-item" },
      h("div", { class: "custom-head" },
        h("button", { type: "button", class: "user-open", "data-user": user.id, onclick: () => this.show(user.id) },
          userName(user)),
        h("span", { class: "hint" }, user.is_admin ? "admin" : "user")),
      h("p", { class: "hint" }, `${keys} · since ${when(user.created_at)}`));
  }

  async issue() {
    const user = this.userField.value.trim();
    if (!user) { this.issueError.show("Type a user name first."); this.userField.focus(); return; }
    let issued;
    try {
      issued = await this.api.post(KEYS, { user, admin: this.adminBox.checked });
    } catch (error) {
      this.issueError.show(error);
      return;
    }
    this.issueError.clear();
    this.showIssued(issued);
    this.userField.value = "";
    this.adminBox.checked = false;
    await this.load();
  }

  /** The key, once: in a read-only field to copy, focused so it is read out and selectable. */
  showIssued(issued) {
    const key = h("input", { readonly: true, spellcheck: "false", class: "issued-value" });
    key.value = issued.key;
    const copy = h("button", { type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(issued.key); copy.textContent = "Copied"; } catch { key.select(); }
    } }, "Copy key");
    const promoted = `${userName(issued.user)} is now an admin: every key of theirs acts as admin.`;
    this.issued.replaceChildren(
      h("p", {}, `Key for ${userName(issued.user)}: copy it now, it is never shown again.`),
      field("issued-key", "New API key", key),
      ...(issued.promoted ? [h("p", { class: "hint" }, promoted)] : []),
      h("div", { class: "row" }, copy,
        h("button", { type: "button", onclick: () => { this.issued.hidden = true; this.userField.focus(); } }, "Done")));
    this.issued.hidden = false;
    key.focus();
    key.select();
  }

  /** One user's page: their keys and the erasure, focus on its heading. */
  async show(userId) {
    let user;
    try {
      user = await this.api.get(`${USERS}/${encodeURIComponent(userId)}`);
    } catch (error) {
      this.listError.show(error);
      return;
    }
    const heading = h("h4", { tabindex: "-1" }, userName(user));
    const error = new ErrorLine(h("p", { class: "error-text", role: "alert", hidden: true }));
    this.detail.replaceChildren(
      h("button", { type: "button", onclick: () => this.back(userId) }, "All users"),
      heading,
      h("p", { class: "hint" }, `id ${user.id} · ${user.is_admin ? "admin" : "user"} · since ${when(user.created_at)}`),
      error.element,
      h("h5", {}, "API keys"),
      user.keys.length ? h("ul", { class: "custom-list" }, ...user.keys.map((key) => this.keyItem(user, key, error)))
        : h("p", { class: "hint" }, "No API keys (a JWT user signs in with their token)."),
      this.erasure(user, error));
    this.overview.hidden = true;
    this.detail.hidden = false;
    heading.focus();
  }

  keyItem(user, key, error) {
    const state = key.revoked_at ? `revoked ${when(key.revoked_at)}` : "active";
    const revoke = key.revoked_at ? null : confirmTwice(
      h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${key.prefix}` }, "Revoke"),
      `Confirm: revoke ${key.prefix}`, () => this.revoke(user, key, error));
    return h("li", { class: "custom-item" },
      h("div", { class: "custom-head" }, h("code", {}, key.prefix), h("span", { class: "hint" }, state)),
      h("p", { class: "hint" }, `created ${when(key.created_at)}`), revoke);
  }

  async revoke(user, key, error) {
    try {
      await this.api.delete(`${KEYS}/${encodeURIComponent(key.id)}`);
    } catch (problem) {
      error.show(problem);
      return;
    }
    await this.show(user.id);
  }

  /** Erasing cannot be undone: the button stays disabled until the user's id is typed. */
  erasure(user, error) {
    const confirm = h("input", { spellcheck: "false", autocomplete: "off" });
    const erase = h("button", { type: "submit", class: "danger", disabled: true }, "Erase user and all their data");
    confirm.addEventListener("input", () => { erase.disabled = confirm.value.trim() !== user.id; });
    return h("form", { class: "custom-form", novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      if (confirm.value.trim() !== user.id) return;
      try {
        await this.api.delete(`${USERS}/${encodeURIComponent(user.id)}`);
      } catch (problem) {
        error.show(problem);
        return;
      }
      this.back(null);
    } },
    h("h5", {}, "Erase this user"),
    h("p", { class: "hint" }, "Deletes the user, their keys, chats, memories, customizations and usage. Cannot be undone."),
    field("erase-confirm", `Type the user's id (${user.id}) to confirm`, confirm),
    erase);
  }

  /** Back to the list, focus on the user's own button (or the list's heading when they are gone). */
  async back(userId) {
    this.showOverview();
    await this.load();
    const button = userId ? this.list.querySelector(`[data-user="${CSS.escape(userId)}"]`) : null;
    (button ?? this.listHeading).focus();
  }
}
