"""The memories panel: what the agents noted about you, searched, deleted one by one or all at once."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer, mint_token

NOTER = "noter"


def _noter(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/api/admin/agents",
        json={"name": NOTER, "model": "echo", "system_prompt": "", "tools": ["remember"]},
        headers={"Authorization": f"Bearer {mint_token('browser-admin', admin=True)}"},
        timeout=30,
    )
    assert response.status_code in (201, 409), response.text


def _remember(ui: ChatPage, *notes: str) -> None:
    ui.page.get_by_label("Agent").select_option(NOTER)
    for note in notes:
        ui.send_and_wait(f'/tool remember {{"note": "{note}"}}')
    ui.page.get_by_role("button", name="Memories").click()


def test_memories_are_listed_searched_and_deleted_one_at_a_time(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    _noter(server)
    ui.sign_in(person.key)
    _remember(ui, "likes tea", "lives in Oslo")
    panel = ui.page.get_by_role("complementary", name="Your memories")
    items = panel.locator(".memory")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("lives in Oslo")
    expect(ui.page.get_by_label("Search memories")).to_be_focused()

    ui.page.get_by_label("Search memories").fill("tea")
    expect(items).to_have_count(1)
    ui.page.get_by_role("button", name="Delete memory: likes tea").click()
    expect(panel.locator("#no-memories")).to_have_text("No memory matches.")
    ui.page.get_by_label("Search memories").fill("")
    expect(items).to_have_count(1)
    ui.page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(ui.page.get_by_role("button", name="Memories")).to_be_focused()


def test_delete_all_asks_for_a_second_press_then_erases_the_agents_notes(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    _noter(server)
    ui.sign_in(person.key)
    _remember(ui, "one note", "another note")
    panel = ui.page.get_by_role("complementary", name="Your memories")
    expect(panel.locator(".memory")).to_have_count(2)
    erase = panel.locator("#erase-memories")
    erase.click()
    expect(erase).to_have_text(f"Confirm: delete all of {NOTER}'s memories")
    expect(panel.locator(".memory")).to_have_count(2)
    erase.click()
    expect(panel.locator(".memory")).to_have_count(0)
    expect(panel.locator("#no-memories")).to_have_text("No memories yet.")


def _notes_over_http(server: LiveServer, person: Person, notes: list[str]) -> None:
    headers = {"Authorization": f"Bearer {person.key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for note in notes:
            body = {
                "agent_name": NOTER,
                "message": f'/tool remember {{"note": "{note}"}}',
                "session_id": "notes",
            }
            assert client.post("/api/chat", json=body).status_code == 200


def test_search_asks_the_server_and_finds_a_note_older_than_the_loaded_page(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    _noter(server)
    _notes_over_http(server, person, ["the oldest note, about tea", *(f"note {n}" for n in range(100))])
    ui.sign_in(person.key)
    ui.page.get_by_label("Agent").select_option(NOTER)
    ui.page.get_by_role("button", name="Memories").click()
    panel = ui.page.get_by_role("complementary", name="Your memories")
    expect(panel.locator(".memory")).to_have_count(100)
    expect(panel.get_by_text("the oldest note, about tea")).to_have_count(0)

    with ui.page.expect_response("**/api/memories?*q=oldest+tea*") as searched:
        ui.page.get_by_label("Search memories").fill("oldest tea")

    assert searched.value.status == 200
    expect(panel.locator(".memory")).to_have_count(1)
    expect(panel.locator(".memory-text")).to_have_text("the oldest note, about tea")
    ui.page.get_by_label("Search memories").fill("no such words")
    expect(panel.locator("#no-memories")).to_have_text("No memory matches.")
    expect(panel.locator(".memory")).to_have_count(0)
