"""A session instance for the open chat: opened, heartbeated while the page is visible, ended when
the chat is left or the page goes away."""

from __future__ import annotations

import time
from typing import Any

import httpx
from playwright.sync_api import Page, Response, expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer

HEARTBEAT_MS = 60_000


def active_sessions(server: LiveServer, person: Person) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/chat_sessions",
        params={"active": "true"},
        headers={"Authorization": f"Bearer {person.key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def wait_for_no_active_session(server: LiveServer, person: Person) -> None:
    deadline = time.monotonic() + 30
    while active_sessions(server, person):
        assert time.monotonic() < deadline, "the session was never ended"
        time.sleep(0.1)


def is_session_opened(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/chat_sessions")


def is_heartbeat(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/heartbeat")


def set_visibility(page: Page, state: str) -> None:
    """What the browser does when the tab is hidden or shown again (headless tabs never are)."""
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_a_session_is_opened_for_the_chat_and_ended_when_the_page_goes_away(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    with ui.page.expect_response(is_session_opened) as opened:
        ui.send_and_wait("hello")
    assert opened.value.status == 201
    session = opened.value.json()
    assert session["chat_id"] == ui.chat_id()
    assert [s["id"] for s in active_sessions(server, person)] == [session["id"]]

    ui.page.goto("about:blank")

    wait_for_no_active_session(server, person)
    with ui.page.expect_response(is_session_opened) as reopened:
        ui.page.goto(server.url)
    assert reopened.value.json()["chat_id"] == session["chat_id"]
    expect(ui.answers.locator(".md")).to_have_text(["echo: hello"])


def test_leaving_a_chat_for_a_new_one_ends_its_session(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    with ui.page.expect_response(is_session_opened):
        ui.send_and_wait("hello")
    assert len(active_sessions(server, person)) == 1

    ui.page.get_by_role("button", name="New chat").click()

    wait_for_no_active_session(server, person)


def test_the_session_is_heartbeated_only_while_the_page_is_visible(
    open_browser: ChatPage, server: LiveServer, person: Person
) -> None:
    ui = open_browser
    ui.page.clock.install()
    ui.open(server.url)
    ui.sign_in(person.key)
    with ui.page.expect_response(is_session_opened) as opened:
        ui.send_and_wait("hello")
    session_id = opened.value.json()["id"]

    with ui.page.expect_response(is_heartbeat) as beat:
        ui.page.clock.fast_forward(HEARTBEAT_MS + 1000)
    assert beat.value.status == 200
    assert beat.value.url.endswith(f"/api/chat_sessions/{session_id}/heartbeat")

    set_visibility(ui.page, "hidden")
    ui.page.clock.fast_forward(3 * HEARTBEAT_MS)
    with ui.page.expect_response(is_heartbeat):
        set_visibility(ui.page, "visible")

    # Requests leave in order: any sent while hidden is counted before the one sent on showing.
    assert sum(1 for request in ui.watch.requests if request.endswith("/heartbeat")) == 2
