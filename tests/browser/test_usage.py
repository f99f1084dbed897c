"""What an answer cost, in the page: the model and tokens under each answer, and what is left of
the budget that binds the user."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer, mint_token


def set_budget(server: LiveServer, **body: object) -> None:
    headers = {"Authorization": f"Bearer {mint_token('web-admin', admin=True)}"}
    response = httpx.post(f"{server.url}/api/admin/budgets", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text


def sign_up(server: LiveServer, person: Person) -> None:
    me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {person.key}"}, timeout=30)
    assert me.status_code == 200


def test_each_answer_names_its_model_and_tokens(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)

    answer = ui.send_and_wait("hello")

    expect(answer.locator(".turn-meta")).to_have_text(re.compile(r"^echo · \d+ in, \d+ out tokens$"))
    expect(ui.page.locator("#budget")).to_be_hidden()


def test_the_remaining_budget_shows_and_counts_down_with_each_answer(
    ui: ChatPage, person: Person, server: LiveServer
) -> None:
    sign_up(server, person)
    set_budget(server, user_id=person.name, period="day", max_requests=3)
    ui.sign_in(person.key)
    budget = ui.page.locator("#budget")
    expect(budget).to_contain_text("3 requests left today")

    ui.send_and_wait("one")

    expect(budget).to_contain_text("2 requests left today (resets ")
    expect(budget).to_contain_text(" UTC)")
