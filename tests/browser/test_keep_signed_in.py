"""'Keep me signed in': opt-in; a new tab of the same browser is then signed in, until sign-out."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.chatpage import ChatPage, Person


def _new_tab(ui: ChatPage) -> Page:
    tab = ui.page.context.new_page()
    tab.goto(ui.page.url)
    return tab


def test_a_new_tab_asks_for_the_key_again_unless_asked_to_keep_it(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    tab = _new_tab(ui)
    expect(tab.get_by_label("API key or JWT")).to_be_visible()
    assert ui.page.evaluate("localStorage.length") == 0
    tab.close()


def test_keeping_the_key_signs_in_a_new_tab_and_signing_out_forgets_it(ui: ChatPage, person: Person) -> None:
    ui.page.get_by_label("Keep me signed in on this device").check()
    ui.sign_in(person.key)
    tab = _new_tab(ui)
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_label("Keep me signed in on this device")).to_be_checked()

    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_label("API key or JWT")).to_be_visible()
    assert tab.evaluate("localStorage.length") == 0
    another = _new_tab(ui)
    expect(another.get_by_label("API key or JWT")).to_be_visible()
    another.close()
    tab.close()
