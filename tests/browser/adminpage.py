"""The administration panel as a test uses it: an admin signs in, opens the panel, picks a page."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import Locator, expect

from tests.browser.chatpage import ChatPage, Person
from tests.e2e.harness import LiveServer, mint_token

PAGES = {"agents": "Agents", "users": "Users and keys", "usage": "Usage and budgets"}


def an_admin() -> Person:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    return Person(name, mint_token(name, admin=True))


def as_admin(server: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {mint_token('checker', admin=True)}"}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kwargs)


def panel(ui: ChatPage) -> Locator:
    return ui.page.get_by_role("complementary", name="Administration")


def open_admin(ui: ChatPage, page: str = "agents") -> Locator:
    """Sign in as a new admin, open the panel and the page; returns the page's section."""
    ui.sign_in(an_admin().key)
    ui.page.get_by_role("button", name="Admin", exact=True).click()
    expect(panel(ui)).to_be_visible()
    if page != "agents":
        nav(ui).get_by_role("button", name=PAGES[page]).click()
    section = panel(ui).locator(f"#admin-{page}-page")
    expect(section).to_be_visible()
    return section


def nav(ui: ChatPage) -> Locator:
    return ui.page.get_by_role("navigation", name="Administration pages")
