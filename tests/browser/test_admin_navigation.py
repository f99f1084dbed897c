"""The administration navigation: by keyboard, at phone width, labelled and readable; never offered
to someone who is not an admin, whom the admin routes refuse anyway."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.adminpage import PAGES, an_admin, nav, open_admin, panel
from tests.browser.chatpage import ChatPage, Person
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_accessibility import CONTRAST, PHONE, UNLABELLED_CONTROLS

ADMIN_TEXT = (
    ".admin-nav button, .admin-page .hint, .admin-page label, .admin-table th, .admin-table td, .error-text"
)
ADMIN_ROUTES = [
    "/api/admin/users",
    "/api/admin/users/someone",
    "/api/admin/usage",
    "/api/admin/budgets",
    "/api/admin/agents",
]
FETCH_STATUS = """(path) => fetch(path, {
    headers: {Authorization: "Bearer " + sessionStorage.getItem("chatserver.token")},
}).then((response) => response.status)"""
FIRST_FIELD = {"agents": "Name", "users": "User name (a new name creates the user)", "usage": "Group by"}


def test_the_admin_pages_are_reached_and_left_from_the_keyboard(ui: ChatPage) -> None:
    ui.sign_in(an_admin().key)
    keyboard = ui.page.keyboard
    toggle = ui.page.get_by_role("button", name="Admin", exact=True)
    toggle.focus()
    keyboard.press("Enter")
    expect(ui.page.get_by_label("Name", exact=True)).to_be_focused()

    tabs = nav(ui).get_by_role("button")
    tabs.first.focus()
    keyboard.press("ArrowRight")
    expect(tabs.nth(1)).to_be_focused()
    keyboard.press("Enter")
    expect(ui.page.get_by_label(FIRST_FIELD["users"])).to_be_focused()
    expect(tabs.nth(1)).to_have_attribute("aria-current", "page")
    expect(tabs.first).not_to_have_attribute("aria-current", "page")
    expect(panel(ui).locator("#admin-agents-page")).to_be_hidden()

    tabs.nth(1).focus()
    keyboard.press("End")
    expect(tabs.last).to_be_focused()
    keyboard.press("ArrowRight")
    expect(tabs.first).to_be_focused()
    keyboard.press("ArrowLeft")
    keyboard.press("Enter")
    expect(ui.page.get_by_label(FIRST_FIELD["usage"])).to_be_focused()
    keyboard.press("Tab")
    expect(ui.page.get_by_label("From (UTC)")).to_be_focused()

    keyboard.press("Escape")
    expect(panel(ui)).to_be_hidden()
    expect(toggle).to_be_focused()
    keyboard.press("Enter")
    expect(ui.page.get_by_label(FIRST_FIELD["usage"])).to_be_focused()


def test_every_admin_page_is_labelled_and_its_text_readable(ui: ChatPage) -> None:
    open_admin(ui)
    measured: list[tuple[str, float]] = []
    for name, title in PAGES.items():
        nav(ui).get_by_role("button", name=title).click()
        expect(ui.page.get_by_label(FIRST_FIELD[name], exact=True)).to_be_focused()
        if name == "usage":
            expect(panel(ui).locator(".admin-table").first).to_be_visible()
            ui.page.get_by_role("button", name="Set budget").click()
            expect(ui.page.locator("#budget-error")).to_be_visible()
        if name == "users":
            expect(panel(ui).locator(".user-open").first).to_be_visible()
        assert ui.page.evaluate(UNLABELLED_CONTROLS) == [], name
        measured += ui.page.evaluate(CONTRAST, ADMIN_TEXT)
        ui.page.screenshot(path=str(SCREENSHOTS / f"admin-{name}-desktop.png"), full_page=True)
    low = [(text, ratio) for text, ratio in measured if ratio < 4.5]
    assert len(measured) >= 30 and low == [], low


@pytest.mark.parametrize("name", list(PAGES))
def test_each_admin_page_fits_a_phone_screen(ui: ChatPage, name: str) -> None:
    ui.page.set_viewport_size(PHONE)
    section = open_admin(ui, name)
    expect(ui.page.get_by_label(FIRST_FIELD[name], exact=True)).to_be_focused()
    if name == "usage":
        expect(section.locator(".admin-table").first).to_be_visible()
    for tab in nav(ui).get_by_role("button").all():
        box = tab.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = section.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ui.page.screenshot(path=str(SCREENSHOTS / f"admin-{name}-phone.png"))


def test_someone_who_is_not_an_admin_never_sees_the_admin_pages_and_is_refused(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    expect(ui.page.get_by_role("button", name="Memories")).to_be_visible()
    expect(ui.page.get_by_role("button", name="Admin", exact=True)).to_be_hidden()
    expect(ui.page.get_by_role("navigation", name="Administration pages")).to_be_hidden()
    expect(panel(ui)).to_be_hidden()
    assert not any("/api/admin/" in request for request in ui.watch.requests)
    statuses = [ui.page.evaluate(FETCH_STATUS, path) for path in ADMIN_ROUTES]
    assert statuses == [403] * len(ADMIN_ROUTES)
