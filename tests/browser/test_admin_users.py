"""The users and keys page: an admin issues a key (shown once), revokes one, and erases a user."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from tests.browser.adminpage import as_admin, open_admin
from tests.browser.chatpage import ChatPage
from tests.browser.test_accessibility import UNLABELLED_CONTROLS
from tests.e2e.harness import LiveServer


def me(server: LiveServer, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_key_is_issued_shown_once_and_revoked_after_confirming(ui: ChatPage, server: LiveServer) -> None:
    name = f"newcomer-{uuid.uuid4().hex[:6]}"
    section = open_admin(ui, "users")
    page = ui.page
    expect(page.get_by_label("User name (a new name creates the user)")).to_be_focused()
    page.get_by_label("User name (a new name creates the user)").fill(name)
    page.get_by_role("button", name="Issue key").click()

    shown = page.get_by_label("New API key")
    expect(shown).to_be_focused()
    expect(section).to_contain_text(f"Key for {name}: copy it now, it is never shown again.")
    key = shown.input_value()
    assert key.startswith("cs_") and me(server, key).status_code == 200
    user_button = section.get_by_role("button", name=name, exact=True)
    item = section.locator(".custom-item").filter(has=page.get_by_role("button", name=name, exact=True))
    expect(item).to_contain_text("1 active key")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.get_by_role("button", name="Done").click()
    expect(shown).to_be_hidden()

    user_button.click()
    expect(section.get_by_role("heading", name=name)).to_be_focused()
    revoke = section.get_by_role("button", name=f"Revoke key {key[:10]}")
    revoke.click()
    assert me(server, key).status_code == 200
    section.get_by_role("button", name=f"Confirm: revoke {key[:10]}").click()
    expect(section.locator(".custom-item", has_text=key[:10])).to_contain_text("revoked")
    assert me(server, key).status_code == 401

    section.get_by_role("button", name="All users").click()
    expect(section.get_by_role("button", name=name, exact=True)).to_be_focused()
    expect(item).to_contain_text("0 active keys")


def test_a_second_admin_key_says_the_user_became_an_admin(ui: ChatPage, server: LiveServer) -> None:
    name = f"rising-{uuid.uuid4().hex[:6]}"
    assert as_admin(server, "POST", "/api/admin/keys", json={"user": name}).status_code == 201
    section = open_admin(ui, "users")
    ui.page.get_by_label("User name (a new name creates the user)").fill(name)
    ui.page.get_by_label("Give admin rights (to every key of the user)").check()
    ui.page.get_by_role("button", name="Issue key").click()
    expect(section).to_contain_text(f"{name} is now an admin: every key of theirs acts as admin.")
    item = section.locator(".custom-item").filter(has=ui.page.get_by_role("button", name=name, exact=True))
    expect(item.locator(".custom-head .hint")).to_have_text("admin")


def test_a_refused_revocation_shows_the_servers_reason(ui: ChatPage, server: LiveServer) -> None:
    name = f"raced-{uuid.uuid4().hex[:6]}"
    issued = as_admin(server, "POST", "/api/admin/keys", json={"user": name}).json()
    section = open_admin(ui, "users")
    section.get_by_role("button", name=name, exact=True).click()
    assert as_admin(server, "DELETE", f"/api/admin/keys/{issued['id']}").status_code == 204
    section.get_by_role("button", name=f"Revoke key {issued['prefix']}").click()
    section.get_by_role("button", name=f"Confirm: revoke {issued['prefix']}").click()
    expect(section.get_by_role("alert")).to_have_text(f"no active API key '{issued['id']}' (not_found)")


def test_erasing_a_user_needs_their_id_typed_and_then_removes_them(ui: ChatPage, server: LiveServer) -> None:
    name = f"leaving-{uuid.uuid4().hex[:6]}"
    issued = as_admin(server, "POST", "/api/admin/keys", json={"user": name}).json()
    user_id = issued["user"]["id"]
    section = open_admin(ui, "users")
    section.get_by_role("button", name=name, exact=True).click()
    erase = section.get_by_role("button", name="Erase user and all their data")
    expect(erase).to_be_disabled()
    confirm = ui.page.get_by_label(f"Type the user's id ({user_id}) to confirm")
    confirm.fill(user_id[:-1])
    expect(erase).to_be_disabled()
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []
    confirm.fill(user_id)
    erase.click()

    expect(section.get_by_role("heading", name="Users")).to_be_focused()
    expect(section.get_by_role("button", name=name, exact=True)).to_have_count(0)
    assert as_admin(server, "GET", f"/api/admin/users/{user_id}").status_code == 404
    assert me(server, issued["key"]).status_code == 401
