"""Signing in with an API key or a JWT, a key that is refused, and signing out."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer


def test_signing_in_with_an_api_key_shows_the_agents_and_a_new_chat(ui: ChatPage, key_person: Person) -> None:
    ui.sign_in(key_person.key)

    expect(ui.page.get_by_label("Agent")).to_have_value("assistant")
    expect(ui.page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(ui.page.locator("#no-chats")).to_be_visible()
    expect(ui.message_box).to_be_focused()


def test_a_bad_key_shows_a_clear_error_and_keeps_the_sign_in_form(ui: ChatPage) -> None:
    ui.token_field.fill("cs_this-key-was-never-issued")
    ui.page.get_by_role("button", name="Sign in").click()

    expect(ui.sign_in_error).to_be_visible()
    expect(ui.sign_in_error).to_contain_text("not accepted (401 unauthorized)")
    expect(ui.page.locator("#app")).to_be_hidden()
    assert ui.page.evaluate("sessionStorage.getItem('chatserver.token')") is None


def test_a_revoked_key_is_refused_at_sign_in(ui: ChatPage, server: LiveServer, key_person: Person) -> None:
    server.cli("keys", "revoke", key_person.key[:10])

    ui.token_field.fill(key_person.key)
    ui.page.get_by_role("button", name="Sign in").click()

    expect(ui.sign_in_error).to_contain_text("not accepted")


def test_a_jwt_signs_in_and_the_token_survives_a_reload(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    ui.page.reload()

    expect(ui.page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(ui.token_field).to_be_hidden()


def test_signing_out_forgets_the_token(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    ui.page.get_by_role("button", name="Sign out").click()

    expect(ui.token_field).to_be_visible()
    assert ui.page.evaluate("sessionStorage.getItem('chatserver.token')") is None
    ui.page.reload()
    expect(ui.token_field).to_be_visible()
    expect(ui.page.locator("#app")).to_be_hidden()
