"""Approving in the page: a call that needs the user's approval shows as a card with its tool and
editable arguments; Approve (edited or not) runs it and the answer goes on, Deny tells the model.
A run interrupted by a restart offers Resume."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from chatserver.config import Settings
from tests.browser.chatpage import ChatPage, Person
from tests.e2e.conftest import prepared_database
from tests.e2e.harness import LiveServer, mint_token, serve_in_thread

AGENT = "careful"


def create_careful_agent(server: LiveServer) -> None:
    body = {
        "name": AGENT,
        "model": "echo",
        "system_prompt": "",
        "tools": ["remember"],
        "tools_requiring_approval": ["remember"],
    }
    headers = {"Authorization": f"Bearer {mint_token('browser-admin', admin=True)}"}
    response = httpx.post(f"{server.url}/api/admin/agents", json=body, headers=headers, timeout=30)
    assert response.status_code in (201, 409), response.text


def notes_of(server: LiveServer, person: Person) -> list[str]:
    headers = {"Authorization": f"Bearer {person.key}"}
    response = httpx.get(f"{server.url}/api/memories", headers=headers, timeout=30)
    return [item["content"] for item in response.json()["items"]]


def ask(ui: ChatPage, server: LiveServer, person: Person) -> None:
    create_careful_agent(server)
    ui.sign_in(person.key)
    ui.page.get_by_label("Agent").select_option(AGENT)
    ui.send_and_wait('/tool remember {"note": "tea"}')


def test_an_approval_shows_the_tool_and_its_arguments_and_approving_edited_ones_runs_them(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ask(ui, server, person)
    card = ui.page.get_by_role("group", name="Approve remember")
    expect(card).to_contain_text("remember")
    args = card.get_by_label("Arguments of remember")
    expect(args).to_have_value('{\n  "note": "tea"\n}')

    args.fill('{"note": "coffee"}')
    card.get_by_role("button", name="Approve").click()

    expect(ui.answers.last.locator(".md")).to_contain_text("tool remember returned: remembered")
    expect(card).to_contain_text("remember: approved")
    expect(ui.answers.first).not_to_contain_text("(no answer)")
    assert notes_of(server, person) == ["coffee"]


def test_arguments_that_are_not_json_are_refused_in_the_card(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ask(ui, server, person)
    card = ui.page.get_by_role("group", name="Approve remember")

    card.get_by_label("Arguments of remember").fill("{not json")
    card.get_by_role("button", name="Approve").click()

    expect(card.get_by_role("alert")).to_have_text("The arguments are not valid JSON.")
    card.get_by_role("button", name="Deny").click()
    expect(ui.answers.last.locator(".md")).to_contain_text("denied by the user: denied in the web page")
    assert notes_of(server, person) == []


def test_a_chat_reopened_while_its_run_waits_shows_the_card_again(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ask(ui, server, person)
    ui.reload()

    ui.sidebar_chats.first.click()

    card = ui.page.get_by_role("group", name="Approve remember")
    card.get_by_role("button", name="Approve").click()
    expect(ui.answers.last.locator(".md")).to_contain_text("tool remember returned: remembered")
    assert notes_of(server, person) == ["tea"]


@contextmanager
def prepared_in_thread(directory: Path, **overrides: Any) -> Iterator[Settings]:
    """A prepared SQLite database kept for the block, made in a thread of its own (the test's
    thread runs Playwright's event loop, where ``asyncio`` cannot run)."""
    ready: queue.Queue[Settings | BaseException] = queue.Queue()
    done = threading.Event()

    def hold() -> None:
        try:
            with prepared_database("sqlite", directory, **overrides) as settings:
                ready.put(settings)
                done.wait(timeout=600)
        except BaseException as error:
            ready.put(error)

    thread = threading.Thread(target=hold, name="browser-test-database", daemon=True)
    thread.start()
    settings = ready.get(timeout=120)
    if isinstance(settings, BaseException):
        raise settings
    try:
        yield settings
    finally:
        done.set()
        thread.join(timeout=60)


def test_a_run_interrupted_by_a_restart_offers_resume_and_resuming_answers(
    open_browser: ChatPage, person: Person, tmp_path: Path
) -> None:
    ui = open_browser
    with prepared_in_thread(tmp_path, shutdown_grace_seconds=0.2, model_timeout_seconds=30.0) as settings:
        with serve_in_thread(settings) as first:
            ui.open(first.url)
            ui.sign_in(person.key)
            ui.send("/sleep 4000 after the restart")
            expect(ui.page.get_by_role("button", name="Stop")).to_be_visible()
            # The page lets go of the stream, or the server's shutdown would wait for the run.
            ui.page.goto("about:blank")
        with serve_in_thread(settings) as second:
            ui.page.goto(second.url)
            expect(ui.page.locator("#messages")).to_have_attribute("aria-busy", "false")
            ui.sidebar_chats.first.click()
            resume = ui.page.get_by_role("button", name="Resume")
            expect(ui.answers.last).to_contain_text("The server stopped while answering.")
            resume.click()
            expect(ui.answers.last.locator(".md")).to_have_text("echo: after the restart")
            expect(resume).to_have_count(0)
            expect(ui.answers).to_have_count(1)
