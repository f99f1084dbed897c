"""The agents panel: administrators create and edit agents from the page; others never see it."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.browser.test_accessibility import UNLABELLED_CONTROLS
from tests.e2e.harness import LiveServer, mint_token


def _admin() -> Person:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    return Person(name, mint_token(name, admin=True))


def test_an_admin_creates_an_agent_that_the_picker_then_offers(ui: ChatPage, server: LiveServer) -> None:
    name = f"helper-{uuid.uuid4().hex[:6]}"
    ui.sign_in(_admin().key)
    ui.page.get_by_role("button", name="Admin", exact=True).click()
    panel = ui.page.get_by_role("complementary", name="Administration")
    expect(ui.page.get_by_label("Name", exact=True)).to_be_focused()
    ui.page.get_by_label("Name", exact=True).fill(name)
    ui.page.get_by_label("System prompt").fill("Be helpful.")
    ui.page.get_by_label("Tools (comma-separated)").fill("current_time, remember")
    ui.page.get_by_role("button", name="Create agent").click()

    expect(panel.locator(".custom-item", has_text=name)).to_contain_text("Tools: current_time, remember")
    expect(ui.page.get_by_label("Agent").locator(f"option[value='{name}']")).to_have_count(1)
    stored = httpx.get(
        f"{server.url}/api/admin/agents/{name}",
        headers={"Authorization": f"Bearer {mint_token('checker', admin=True)}"},
        timeout=30,
    ).json()
    assert (stored["system_prompt"], stored["tools"]) == ("Be helpful.", ["current_time", "remember"])

    panel.get_by_role("button", name=f"Edit {name}").click()
    expect(ui.page.get_by_label("Name", exact=True)).not_to_be_editable()
    ui.page.get_by_label("Tools (comma-separated)").fill("remember")
    ui.page.get_by_role("button", name="Save agent").click()
    expect(panel.locator(".custom-item", has_text=name)).to_contain_text("Tools: remember")
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []
    ui.page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(ui.page.get_by_role("button", name="Admin", exact=True)).to_be_focused()


def test_a_bad_agent_is_refused_with_the_servers_reason(ui: ChatPage) -> None:
    ui.sign_in(_admin().key)
    ui.page.get_by_role("button", name="Admin", exact=True).click()
    ui.page.get_by_label("Name", exact=True).fill("Not A Valid Name")
    ui.page.get_by_role("button", name="Create agent").click()
    expect(ui.page.locator("#agent-error")).to_be_visible()


def test_someone_who_is_not_an_admin_has_no_agents_panel(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    expect(ui.page.get_by_role("button", name="Memories")).to_be_visible()
    expect(ui.page.get_by_role("button", name="Admin", exact=True)).to_be_hidden()
