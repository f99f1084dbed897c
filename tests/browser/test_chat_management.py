"""Managing chats in the sidebar: rename in place, pin, archive, and search with snippets."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person


def _menu(ui: ChatPage, title: str) -> None:
    ui.page.get_by_label(f"More actions for chat {title}").click()


def test_a_chat_is_renamed_in_place_and_the_header_follows(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("first words")
    _menu(ui, "first words")
    ui.page.get_by_role("button", name="Rename").click()
    field = ui.page.get_by_label("New title for first words")
    expect(field).to_be_focused()
    field.fill("Shopping list")
    field.press("Enter")

    expect(ui.sidebar_chats.first.locator(".chat-name")).to_have_text("Shopping list")
    expect(ui.page.locator("#chat-title")).to_have_text("Shopping list")
    ui.reload()
    expect(ui.sidebar_chats.first.locator(".chat-name")).to_have_text("Shopping list")


def test_renaming_is_cancelled_with_escape(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("stay as is")
    _menu(ui, "stay as is")
    ui.page.get_by_role("button", name="Rename").click()
    ui.page.get_by_label("New title for stay as is").press("Escape")
    expect(ui.page.locator(".rename-box")).to_have_count(0)
    expect(ui.sidebar_chats.first).to_be_focused()


def test_a_pinned_chat_comes_first_and_an_archived_one_moves_to_the_archive(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("older chat")
    ui.page.get_by_role("button", name="New chat").click()
    expect(ui.answers).to_have_count(0)
    ui.send_and_wait("newer chat")
    expect(ui.sidebar_chats.first).to_contain_text("newer chat")

    _menu(ui, "older chat")
    ui.page.get_by_role("button", name="Pin").click()
    expect(ui.sidebar_chats.first).to_contain_text("📌 older chat")

    _menu(ui, "newer chat")
    ui.page.get_by_role("button", name="Archive").click()
    expect(ui.sidebar_chats).to_have_count(1)
    ui.page.get_by_label("Archived chats").check()
    expect(ui.sidebar_chats).to_have_count(1)
    expect(ui.sidebar_chats.first).to_contain_text("newer chat")


def test_search_finds_a_chat_by_its_words_and_shows_the_snippet(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("the quick brown fox")
    ui.page.get_by_role("button", name="New chat").click()
    expect(ui.answers).to_have_count(0)
    ui.send_and_wait("something else")

    ui.page.get_by_label("Search chats").fill("brown fox")
    expect(ui.sidebar_chats).to_have_count(1)
    expect(ui.sidebar_chats.first.locator(".chat-snippet")).to_contain_text("brown fox")
    ui.page.get_by_label("Search chats").fill("nothing like this")
    expect(ui.page.locator("#no-chats")).to_have_text("No chat matches.")
    ui.page.get_by_label("Search chats").fill("")
    expect(ui.sidebar_chats).to_have_count(2)
