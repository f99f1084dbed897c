"""The instructions panel: the user's prompt customizations for the selected agent."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer


def content_field(ui: ChatPage) -> Locator:
    """The JSON editor, opened under Advanced."""
    advanced = ui.page.locator("#custom-advanced")
    if advanced.get_attribute("open") is None:
        advanced.locator("summary").click()
    return ui.page.get_by_label("Content (a JSON object)")


def add_instructions(ui: ChatPage, content: str) -> None:
    content_field(ui).fill(content)
    ui.page.get_by_role("button", name="Add", exact=True).click()


def close_panel(ui: ChatPage) -> None:
    ui.page.get_by_role("button", name="Close instructions").click()
    expect(ui.page.locator("#panel")).to_be_hidden()


def stored_customizations(
    server: LiveServer, person: Person, *, include_inactive: bool = False
) -> list[dict[str, object]]:
    response = httpx.get(
        f"{server.url}/api/agent/prompt_customizations/assistant",
        params={"include_inactive": str(include_inactive).lower()},
        headers={"Authorization": f"Bearer {person.key}"},
        timeout=30,
    )
    assert response.status_code == 200
    return list(response.json())


def test_an_edited_customization_shows_in_system(ui: ChatPage, server: LiveServer, person: Person) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    items = ui.page.locator("#custom-list .custom-item")
    add_instructions(ui, '{"instructions": ["Answer in French."]}')
    expect(items).to_have_count(1)
    expect(items).to_contain_text("Answer in French.")

    ui.page.get_by_role("button", name="Edit instruction_set").click()
    expect(ui.page.get_by_label("Instruction 1", exact=True)).to_be_focused()
    expect(ui.page.get_by_label("Instruction 1", exact=True)).to_have_value("Answer in French.")
    content_field(ui).fill('{"instructions": ["Answer in Dutch."], "tone": "dry"}')
    ui.page.get_by_role("button", name="Save").click()
    expect(items).to_contain_text("Answer in Dutch.")
    close_panel(ui)
    answer = ui.send_and_wait("/system")

    prompt = answer.locator(".md")
    expect(prompt.locator("h2")).to_have_text("instruction_set")
    expect(prompt.locator("li")).to_contain_text(["Answer in Dutch."])
    expect(prompt).to_contain_text("tone: dry")
    expect(prompt).not_to_contain_text("French")
    rows = stored_customizations(server, person)
    assert [row["content"] for row in rows] == [{"instructions": ["Answer in Dutch."], "tone": "dry"}]


def test_a_deleted_customization_leaves_the_prompt(ui: ChatPage, server: LiveServer, person: Person) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    add_instructions(ui, '{"instructions": ["Use metric units."]}')
    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(1)
    close_panel(ui)
    expect(ui.send_and_wait("/system").locator(".md")).to_contain_text("Use metric units.")

    ui.open_instructions()
    ui.page.get_by_role("button", name="Delete instruction_set").click()

    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(0)
    expect(ui.page.get_by_text("No instructions yet.")).to_be_visible()
    close_panel(ui)
    expect(ui.send_and_wait("/system").locator(".md")).not_to_contain_text("metric")
    assert stored_customizations(server, person) == []


def test_content_that_is_not_a_json_object_is_refused_before_sending(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    error = ui.page.locator("#custom-error")

    add_instructions(ui, '{"instructions": ["unclosed"')
    expect(error).to_contain_text("not valid JSON")
    expect(content_field(ui)).to_be_focused()
    add_instructions(ui, '["a list"]')
    expect(error).to_contain_text("must be a JSON object")

    assert stored_customizations(server, person) == []


def test_a_second_customization_of_the_same_type_is_a_clear_conflict(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    add_instructions(ui, '{"instructions": ["One."]}')
    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(1)

    add_instructions(ui, '{"instructions": ["Two."]}')

    expect(ui.page.locator("#custom-error")).to_contain_text('already have "instruction_set" instructions')
    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(1)


def test_a_deactivated_customization_stays_listed_as_inactive_and_can_be_activated_again(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    items = ui.page.locator("#custom-list .custom-item")
    add_instructions(ui, '{"instructions": ["Say hi first."]}')
    expect(items).to_have_count(1)

    ui.page.get_by_role("button", name="Deactivate instruction_set").click()
    expect(items).to_have_count(1)
    expect(items).to_contain_text("inactive")
    stored = stored_customizations(server, person, include_inactive=True)
    assert [row["is_active"] for row in stored] == [False]
    close_panel(ui)
    expect(ui.send_and_wait("/system").locator(".md")).not_to_contain_text("Say hi first.")

    ui.open_instructions()
    ui.page.get_by_role("button", name="Activate instruction_set").click()
    expect(ui.page.get_by_role("button", name="Deactivate instruction_set")).to_be_visible()
    expect(items).not_to_contain_text("inactive")
    close_panel(ui)
    expect(ui.send_and_wait("/system").locator(".md")).to_contain_text("Say hi first.")


def test_instructions_are_edited_as_a_list_and_other_keys_as_fields(
    ui: ChatPage, server: LiveServer, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.open_instructions()
    expect(ui.page.get_by_label("Content (a JSON object)")).to_be_hidden()
    ui.page.get_by_label("Instruction 1", exact=True).fill("Be kind.")
    ui.page.get_by_role("button", name="Add instruction").click()
    expect(ui.page.get_by_label("Instruction 2", exact=True)).to_be_focused()
    ui.page.keyboard.type("Use metric units.")
    ui.page.get_by_role("button", name="Add", exact=True).click()
    expect(ui.page.locator("#custom-list .custom-item")).to_have_count(1)
    assert [row["content"] for row in stored_customizations(server, person)] == [
        {"instructions": ["Be kind.", "Use metric units."]}
    ]

    ui.page.get_by_role("button", name="Edit instruction_set").click()
    content_field(ui).fill('{"instructions": ["Be kind.", "Use metric units."], "tone": "dry"}')
    ui.page.get_by_label("tone").fill("warm")
    ui.page.get_by_role("button", name="Remove instruction 1").click()
    expect(ui.page.get_by_label("Instruction 1", exact=True)).to_have_value("Use metric units.")
    ui.page.get_by_role("button", name="Save").click()
    expect(ui.page.locator("#custom-list .custom-item")).to_contain_text("warm")
    assert [row["content"] for row in stored_customizations(server, person)] == [
        {"instructions": ["Use metric units."], "tone": "warm"}
    ]
