"""Long histories come in pages: earlier messages and older chats load on request."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer

PAGE = 50


def chat_turns(server: LiveServer, person: Person, chat_id: str, messages: list[str]) -> None:
    headers = {"Authorization": f"Bearer {person.key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for message in messages:
            body = {"agent_name": "assistant", "message": message, "session_id": chat_id}
            assert client.post("/api/chat", json=body).status_code == 200


def test_earlier_messages_load_on_request_above_the_newest(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    turns = [f"message {n}" for n in range(30)]
    chat_turns(server, person, "long-chat", turns)
    ui.sign_in(person.key)

    ui.sidebar_chats.first.click()

    expect(ui.user_messages).to_have_count(PAGE // 2)
    expect(ui.user_messages.last).to_contain_text("message 29")
    ui.page.get_by_role("button", name="Load earlier messages").click()
    expect(ui.user_messages).to_have_count(30)
    expect(ui.user_messages.first).to_contain_text("message 0")
    expect(ui.page.get_by_role("button", name="Load earlier messages")).to_be_hidden()


def test_older_chats_load_on_request_below_the_newest(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    for n in range(PAGE + 2):
        chat_turns(server, person, f"chat-{n:03d}", [f"chat number {n:03d}"])
    ui.sign_in(person.key)

    expect(ui.sidebar_chats).to_have_count(PAGE)
    expect(ui.sidebar_chats.first).to_contain_text(f"chat number {PAGE + 1:03d}")
    ui.page.get_by_role("button", name="Load older chats").click()

    expect(ui.sidebar_chats).to_have_count(PAGE + 2)
    expect(ui.sidebar_chats.last).to_contain_text("chat number 000")
    expect(ui.page.get_by_role("button", name="Load older chats")).to_be_hidden()
