"""The usage and budgets page: everyone's usage by user, agent, model or day; budgets set and deleted."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.adminpage import as_admin, nav, open_admin
from tests.browser.chatpage import ChatPage, Person
from tests.browser.test_accessibility import UNLABELLED_CONTROLS
from tests.e2e.harness import LiveServer


def chatted(ui: ChatPage, person: Person) -> str:
    """The person's id (a JWT's subject) after one answer of theirs; then they sign out."""
    ui.sign_in(person.key)
    ui.send_and_wait("count me")
    ui.page.get_by_role("button", name="Sign out").click()
    return person.name


def signed_up(server: LiveServer, person: Person) -> str:
    me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {person.key}"}, timeout=30)
    assert me.status_code == 200
    return str(me.json()["id"])


def test_usage_is_grouped_as_asked_and_a_range_that_makes_no_sense_is_refused(
    ui: ChatPage, person: Person
) -> None:
    user_id = chatted(ui, person)
    section = open_admin(ui, "usage")
    expect(ui.page.get_by_label("Group by")).to_be_focused()
    usage = section.locator("table").first
    row = usage.locator("tbody tr", has_text=user_id)
    expect(row.locator("th")).to_have_text(user_id)
    expect(row.locator("td").nth(2)).to_have_text("1")

    ui.page.get_by_label("Group by").select_option("model")
    section.get_by_role("button", name="Show usage").click()
    expect(usage.locator("thead th").first).to_have_text("Model")
    expect(usage.locator("tbody th", has_text="echo")).to_have_count(1)

    ui.page.get_by_label("From (UTC)").fill("2999-01-01")
    section.get_by_role("button", name="Show usage").click()
    expect(usage.locator("caption")).to_have_text("No usage in this range")
    ui.page.get_by_label("To (UTC, included)").fill("2998-01-01")
    section.get_by_role("button", name="Show usage").click()
    expect(section.get_by_role("alert").first).to_have_text("to: 'to' must not be before 'from'")


def test_a_budget_is_set_shows_what_it_used_and_is_deleted_after_confirming(
    ui: ChatPage, person: Person, server: LiveServer
) -> None:
    user_id = signed_up(server, person)
    section = open_admin(ui, "usage")
    page = ui.page
    page.get_by_label("Applies to").select_option("user")
    page.get_by_label("User id").fill(user_id)
    page.get_by_label("Most requests").fill("5")
    page.get_by_role("button", name="Set budget").click()

    budgets = section.locator("table").nth(1)
    row = budgets.locator("tbody tr", has_text=user_id)
    expect(row.locator("td").nth(1)).to_have_text("5 requests")
    expect(row.locator("td").nth(3)).to_have_text("5 requests")
    answer = httpx.post(
        f"{server.url}/api/chat",
        json={"agent_name": "assistant", "message": "count me", "session_id": f"budgeted-{user_id}"},
        headers={"Authorization": f"Bearer {person.key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    nav(ui).get_by_role("button", name="Usage and budgets").click()
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d+ tokens, 1 requests, \$0\.0000$"))
    expect(row.locator("td").nth(3)).to_have_text("4 requests")
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    page.get_by_label("Applies to").select_option("user")
    page.get_by_label("User id").fill("nobody-at-all")
    page.get_by_label("Most tokens").fill("10")
    page.get_by_role("button", name="Set budget").click()
    expect(page.locator("#budget-error")).to_have_text("user 'nobody-at-all' not found (not_found)")

    delete = row.get_by_role("button")
    delete.click()
    expect(delete).to_have_text(f"Confirm: delete budget {user_id}, day")
    delete.click()
    expect(budgets.locator("tbody tr", has_text=user_id)).to_have_count(0)
    expect(page.get_by_label("Applies to")).to_be_focused()
    assert all(
        budget["user_id"] != user_id for budget in as_admin(server, "GET", "/api/admin/budgets").json()
    )
