"""Chatting in the page: streamed answers as Markdown, tool calls, stopping, and the chat list."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import STREAMING, ChatPage, Person
from tests.e2e.harness import LiveServer

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def test_a_message_gets_the_streamed_echo_answer(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    with ui.page.expect_response("**/api/chat/stream") as streamed:
        answer = ui.send_and_wait("hello **world**")

    expect(ui.user_messages.last).to_contain_text("hello **world**")
    expect(answer.locator(".md")).to_have_text("echo: hello world")
    expect(answer.locator(".md strong")).to_have_text("world")
    assert streamed.value.headers["content-type"].startswith("text/event-stream")


def test_the_answer_shows_as_streaming_until_it_is_done(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    ui.send("/sleep 1500 slow words")

    answer = ui.answers.last
    expect(answer).to_have_class(STREAMING)
    expect(ui.page.get_by_role("button", name="Stop")).to_be_visible()
    expect(answer).not_to_have_class(STREAMING)
    expect(answer.locator(".md")).to_have_text("echo: slow words")
    expect(ui.page.get_by_role("button", name="Send")).to_be_visible()


def test_code_blocks_render_as_readable_preformatted_code(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    answer = ui.send_and_wait("look:\n```python\nprint('<b>hi</b>')\n```")

    code = answer.locator("pre code")
    expect(code).to_have_text("print('<b>hi</b>')")
    expect(code).to_have_class("language-python")
    style = answer.locator("pre").evaluate(
        "el => { const s = getComputedStyle(el); return [s.fontFamily, s.overflowX, s.whiteSpace]; }"
    )
    assert "monospace" in style[0]
    assert style[1:] == ["auto", "pre"]


def test_a_tool_call_is_shown_inline_and_collapsible(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    answer = ui.send_and_wait("/tool current_time {}")

    card = answer.locator("details.tool")
    expect(card).to_have_count(1)
    expect(card.locator("summary")).to_contain_text("current_time")
    expect(card.locator("summary")).to_contain_text("done")
    expect(card.locator(".tool-result")).to_be_hidden()
    card.locator("summary").click()
    expect(card.locator(".tool-args")).to_have_text("{}")
    result = card.locator(".tool-result").inner_text()
    assert ISO_UTC.fullmatch(result), result
    expect(answer.locator(".md")).to_have_text(f"tool current_time returned: {result}")
    card.locator("summary").click()
    expect(card.locator(".tool-result")).to_be_hidden()

    ui.reload()
    stored = ui.answers.last.locator("details.tool")
    expect(stored.locator("summary")).to_contain_text("current_time")
    stored.locator("summary").click()
    expect(stored.locator(".tool-args")).to_have_text("{}")
    expect(stored.locator(".tool-result")).to_have_text(result)


def test_after_a_reload_the_chats_are_in_the_sidebar_newest_first(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("first chat")
    ui.page.get_by_role("button", name="New chat").click()
    expect(ui.answers).to_have_count(0)
    ui.send_and_wait("second chat")

    ui.reload()

    expect(ui.sidebar_chats).to_have_count(2)
    expect(ui.sidebar_chats.nth(0)).to_contain_text("second chat")
    expect(ui.sidebar_chats.nth(1)).to_contain_text("first chat")
    expect(ui.page.locator("#chat-title")).to_have_text("second chat")
    expect(ui.answers.locator(".md")).to_have_text(["echo: second chat"])
    ui.sidebar_chats.nth(1).click()
    expect(ui.page.locator("#chat-title")).to_have_text("first chat")
    expect(ui.answers.locator(".md")).to_have_text(["echo: first chat"])
    expect(ui.sidebar_chats.nth(1)).to_have_attribute("aria-current", "page")


def test_a_chat_continues_where_it_was_after_a_reload(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("one")
    ui.send_and_wait("two")

    ui.reload()
    answer = ui.send_and_wait("/recall")

    expect(answer.locator(".md")).to_have_text("recall: one | two")


def test_deleting_a_chat_removes_it_from_the_sidebar_and_the_server(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("doomed")
    chat_id = ui.chat_id()
    expect(ui.sidebar_chats).to_have_count(1)

    ui.page.get_by_role("button", name="Delete chat doomed").click()
    ui.page.get_by_role("button", name="Confirm: delete chat doomed").click()

    expect(ui.sidebar_chats).to_have_count(0)
    expect(ui.page.locator("#chat-title")).to_have_text("New chat")
    headers = {"Authorization": f"Bearer {person.key}"}
    listed = httpx.get(f"{server.url}/api/chats", headers=headers, timeout=30).json()
    assert [chat["id"] for chat in listed["items"]] == []
    gone = httpx.get(f"{server.url}/api/chats/{chat_id}/messages", headers=headers, timeout=30)
    assert gone.status_code == 404


def test_stop_ends_a_slow_answer_and_offers_a_retry(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send("/sleep 20000 never")
    expect(ui.answers.last).to_have_class(STREAMING)

    ui.page.get_by_role("button", name="Stop").click()

    expect(ui.answers.last.locator(".turn-error")).to_contain_text("Stopped.")
    expect(ui.answers.last.get_by_role("button", name="Retry")).to_be_visible()
    expect(ui.page.get_by_role("button", name="Send")).to_be_visible()


def test_stop_cancels_the_run_on_the_server(ui: ChatPage, person: Person, server: LiveServer) -> None:
    ui.sign_in(person.key)
    ui.send("/sleep 20000 never")
    expect(ui.answers.last).to_have_class(STREAMING)

    with ui.page.expect_response("**/api/runs/*/cancel") as cancelled:
        ui.page.get_by_role("button", name="Stop").click()

    assert cancelled.value.status == 200
    run = cancelled.value.json()
    assert run["status"] == "cancelled"
    expect(ui.answers.last.locator(".turn-error")).to_contain_text("Stopped.")


def test_a_reload_mid_answer_follows_the_run_to_its_answer(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send("/sleep 2500 worth the wait")
    expect(ui.answers.last).to_have_class(STREAMING)
    # Mid-answer: the run has started on the server (its first event reached the page).
    ui.page.wait_for_function("() => sessionStorage.getItem('chatserver.run') !== null")

    with ui.page.expect_response("**/api/runs/*/events") as reattached:
        ui.reload()

    assert reattached.value.status == 200
    expect(ui.user_messages.last).to_contain_text("/sleep 2500 worth the wait")
    expect(ui.answers.last.locator(".md")).to_have_text("echo: worth the wait", timeout=15_000)
    expect(ui.page.get_by_role("button", name="Send")).to_be_visible()
