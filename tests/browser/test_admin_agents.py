"""The agents page: administrators create, edit and delete agents from the page; others never see it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.adminpage import as_admin, open_admin
from tests.browser.chatpage import ChatPage, Person
from tests.browser.servers import browser_test_server
from tests.browser.test_accessibility import UNLABELLED_CONTROLS
from tests.e2e.harness import LiveServer, mint_token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that accepts OpenAI model names (a local base URL, never called): a fallback needs
    a second model, and agents here are only saved, never run."""
    directory = tmp_path_factory.mktemp("browser-admin")
    with browser_test_server(directory, openai_base_url="http://127.0.0.1:9/v1") as live:
        yield live


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


def test_an_admin_sets_approval_tools_fallbacks_limits_and_an_mcp_server(
    ui: ChatPage, server: LiveServer
) -> None:
    name = f"careful-{uuid.uuid4().hex[:6]}"
    section = open_admin(ui)
    page = ui.page
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Model", exact=True).fill("openai:gpt-4o-mini")
    page.get_by_label("Fallback models (comma-separated, tried in order)").fill("echo")
    page.get_by_label("Tools (comma-separated)").fill("current_time, remember")
    page.get_by_label("Tools that wait for a person's approval (comma-separated)").fill("remember")
    page.get_by_label("History window (turns; empty: the server's)").fill("12")
    page.get_by_label("Context budget (estimated tokens; empty: none)").fill("3000")
    page.get_by_role("button", name="Add MCP server").click()
    expect(page.get_by_label("MCP server 1 name")).to_be_focused()
    page.get_by_label("MCP server 1 name").fill("docs")
    page.get_by_label("MCP server 1 URL or command").fill("https://mcp.example.test/mcp")
    page.get_by_role("button", name="Create agent").click()

    item = section.locator(".custom-item", has_text=name)
    expect(item).to_contain_text("Approval: remember")
    expect(item).to_contain_text("Fallbacks: echo")
    expect(item).to_contain_text("MCP: docs")
    stored = as_admin(server, "GET", f"/api/admin/agents/{name}").json()
    assert stored["tools_requiring_approval"] == ["remember"]
    assert stored["fallback_models"] == ["echo"]
    assert (stored["history_window"], stored["context_tokens"]) == (12, 3000)
    assert stored["mcp_servers"] == [{"name": "docs", "command": None, "url": "https://mcp.example.test/mcp"}]

    section.get_by_role("button", name=f"Edit {name}").click()
    expect(page.get_by_label("MCP server 1 URL or command")).to_have_value("https://mcp.example.test/mcp")
    expect(page.get_by_label("Tools that wait for a person's approval (comma-separated)")).to_have_value(
        "remember"
    )
    page.get_by_role("button", name="Remove MCP server 1").click()
    expect(page.get_by_role("button", name="Add MCP server")).to_be_focused()
    page.get_by_label("Tools that wait for a person's approval (comma-separated)").fill("")
    page.get_by_role("button", name="Save agent").click()
    expect(item).not_to_contain_text("MCP: docs")
    stored = as_admin(server, "GET", f"/api/admin/agents/{name}").json()
    assert (stored["mcp_servers"], stored["tools_requiring_approval"]) == ([], [])
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []


def test_the_servers_reason_shows_next_to_the_form_and_marks_the_field(ui: ChatPage) -> None:
    open_admin(ui)
    page = ui.page
    page.get_by_label("Name", exact=True).fill(f"strict-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Tools (comma-separated)").fill("current_time")
    approvals = page.get_by_label("Tools that wait for a person's approval (comma-separated)")
    approvals.fill("remember")
    page.get_by_role("button", name="Create agent").click()

    error = page.locator("#agent-error")
    expect(error).to_have_text("tools_requiring_approval: tool 'remember' is not one of the agent's tools")
    expect(approvals).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Tools (comma-separated)")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#agent-form")).to_have_attribute("aria-describedby", "agent-error")


def test_an_admin_deletes_an_agent_only_after_confirming(ui: ChatPage, server: LiveServer) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    assert (
        as_admin(
            server, "POST", "/api/admin/agents", json={"name": name, "model": "echo", "system_prompt": ""}
        ).status_code
        == 201
    )
    section = open_admin(ui)
    delete = section.get_by_role("button", name=f"Delete {name}")
    delete.click()
    confirm = section.get_by_role("button", name=f"Confirm: delete {name} and every chat with it")
    expect(confirm).to_be_focused()
    assert as_admin(server, "GET", f"/api/admin/agents/{name}").status_code == 200
    confirm.click()

    expect(section.locator(".custom-item", has_text=name)).to_have_count(0)
    expect(ui.page.get_by_role("button", name="New agent")).to_be_focused()
    expect(ui.page.locator(f"#agent option[value='{name}']")).to_have_count(0)
    assert as_admin(server, "GET", f"/api/admin/agents/{name}").status_code == 404
