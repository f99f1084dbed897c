"""Clear error states: a failing model (with retry), a busy chat, a server that went away, a key
revoked while signed in."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.browser.servers import browser_test_server
from tests.e2e.harness import LiveServer


def test_a_model_error_is_shown_with_a_retry_that_sends_again(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    ui.send("/fail")

    failure = ui.answers.last.locator(".turn-error")
    expect(failure).to_contain_text("The model failed to answer")
    with ui.page.expect_request("**/api/chat/stream") as retried:
        ui.answers.last.get_by_role("button", name="Retry").click()
    assert json.loads(retried.value.post_data or "{}")["message"] == "/fail"
    expect(ui.page.locator(".turn-error")).to_have_count(2)
    expect(ui.user_messages).to_have_count(2)


def hold_chat(server: LiveServer, person: Person, chat_id: str, statuses: list[int]) -> None:
    """One slow turn on the chat, through the API, as another tab of the same user would."""
    response = httpx.post(
        f"{server.url}/api/chat",
        json={"agent_name": "assistant", "message": "/sleep 6000 holding", "session_id": chat_id},
        headers={"Authorization": f"Bearer {person.key}"},
        timeout=60,
    )
    statuses.append(response.status_code)


def wait_until_turn_started(server: LiveServer, person: Person, chat_id: str, message: str) -> None:
    """The chat is locked once the turn's user message is stored (it is stored under the lock)."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {person.key}"}) as client:
        while time.monotonic() < deadline:
            items = client.get(f"/api/chats/{chat_id}/messages", timeout=30).json()["items"]
            if any(item["role"] == "user" and item["content"] == message for item in items):
                return
            time.sleep(0.05)
    raise AssertionError("the holding turn never started")


def test_a_busy_chat_is_reported_and_the_retry_goes_through_once_it_is_free(
    open_browser: ChatPage, tmp_path: Path, person: Person
) -> None:
    with browser_test_server(tmp_path / "busy", busy_chat_policy="reject") as server:
        ui = open_browser
        ui.open(server.url)
        ui.sign_in(person.key)
        ui.send_and_wait("first")
        chat_id = ui.chat_id()
        statuses: list[int] = []
        holder = threading.Thread(target=hold_chat, args=(server, person, chat_id, statuses))
        holder.start()
        wait_until_turn_started(server, person, chat_id, "/sleep 6000 holding")

        ui.send("second")

        expect(ui.answers.last.locator(".turn-error")).to_contain_text("still answering another message")
        holder.join(timeout=60)
        assert statuses == [200]
        ui.answers.last.get_by_role("button", name="Retry").click()
        expect(ui.answers.last.locator(".md")).to_have_text("echo: second")


def test_a_server_that_went_away_is_reported_with_a_retry(
    open_browser: ChatPage, tmp_path: Path, person: Person
) -> None:
    ui = open_browser
    with browser_test_server(tmp_path / "gone") as server:
        ui.open(server.url)
        ui.sign_in(person.key)

    ui.send("anyone there?")

    failure = ui.answers.last.locator(".turn-error")
    expect(failure).to_contain_text("Cannot reach the server")
    expect(failure.get_by_role("button", name="Retry")).to_be_visible()
    ui.page.get_by_role("button", name="Sign out").click()
    ui.token_field.fill(person.key)
    ui.page.get_by_role("button", name="Sign in").click()
    expect(ui.sign_in_error).to_contain_text("Cannot reach the server at http://127.0.0.1:")


def test_a_key_revoked_while_signed_in_returns_to_the_sign_in_form(
    ui: ChatPage, server: LiveServer, key_person: Person
) -> None:
    ui.sign_in(key_person.key)
    server.cli("keys", "revoke", key_person.key[:10])

    ui.send("still there?")

    expect(ui.token_field).to_be_visible()
    expect(ui.sign_in_error).to_contain_text("no longer accepted")
    assert ui.page.evaluate("sessionStorage.getItem('chatserver.token')") is None
