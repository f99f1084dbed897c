"""The agent picker: a chat belongs to one agent; picking another starts a new chat with it."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer, mint_token


def create_agent(server: LiveServer, name: str, system_prompt: str) -> None:
    response = httpx.post(
        f"{server.url}/api/admin/agents",
        json={"name": name, "model": "echo", "system_prompt": system_prompt, "tools": []},
        headers={"Authorization": f"Bearer {mint_token('browser-admin', admin=True)}"},
        timeout=30,
    )
    assert response.status_code in (201, 409), response.text


def test_picking_another_agent_starts_a_chat_with_it(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    create_agent(server, "pirate", "Talk like a pirate.")
    ui.sign_in(person.key)
    picker = ui.page.get_by_label("Agent")
    ui.send_and_wait("ahoy from the assistant")

    picker.select_option("pirate")

    expect(ui.page.locator("#chat-title")).to_have_text("New chat")
    expect(ui.answers).to_have_count(0)
    answer = ui.send_and_wait("/system")
    expect(answer.locator(".md")).to_have_text("Talk like a pirate.")
    expect(ui.sidebar_chats.first).to_contain_text("pirate")
    ui.sidebar_chats.nth(1).click()
    expect(picker).to_have_value("assistant")
    expect(ui.answers.locator(".md")).to_have_text(["echo: ahoy from the assistant"])


def test_the_instructions_panel_follows_the_selected_agent(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    create_agent(server, "pirate", "Talk like a pirate.")
    ui.sign_in(person.key)
    ui.open_instructions()
    ui.page.get_by_label("Instruction 1", exact=True).fill("Say arr.")
    ui.page.get_by_role("button", name="Add", exact=True).click()
    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(1)

    ui.page.get_by_label("Agent").select_option("pirate")

    expect(ui.page.locator("#panel-agent")).to_have_text("pirate")
    expect(ui.page.get_by_text("No instructions yet.")).to_be_visible()
    ui.page.get_by_label("Agent").select_option("assistant")
    expect(ui.page.locator("#custom-list .custom-item")).to_contain_text(["Say arr."])
