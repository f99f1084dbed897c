"""Conversations as trees in the page: regenerate and edit with version arrows, copy, times, and a
failed turn shown as such after a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import STREAMING, ChatPage, Person


def _allow_clipboard(ui: ChatPage) -> None:
    origin = ui.page.url.split("/", 3)[:3]
    ui.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin="/".join(origin))


def test_regenerating_an_answer_adds_a_version_with_arrows_between_them(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    first = ui.send_and_wait("hello")
    bar = first.locator(".msg-actions")
    expect(bar.locator("time")).to_be_visible()

    with ui.page.expect_request("**/api/chat/stream") as sent:
        bar.get_by_role("button", name="Regenerate").click()
    assert '"regenerate"' in (sent.value.post_data or "")
    expect(ui.answers).to_have_count(1)
    answer = ui.answers.last
    expect(answer).not_to_have_class(STREAMING)
    expect(answer.locator(".branch-count")).to_have_text("2/2")
    expect(answer.locator(".md")).to_have_text("echo: hello")

    answer.get_by_role("button", name="Previous version").click()
    expect(ui.answers.last.locator(".branch-count")).to_have_text("1/2")
    expect(ui.answers.last.get_by_role("button", name="Previous version")).to_be_disabled()
    expect(ui.user_messages).to_have_count(1)


def test_editing_a_message_resends_it_as_a_new_version_that_survives_a_reload(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("red")
    ui.send_and_wait("green")
    ui.user_messages.last.get_by_role("button", name="Edit").click()
    box = ui.page.get_by_label("Edit message")
    expect(box).to_be_focused()
    expect(box).to_have_value("green")
    box.fill("blue")
    ui.page.get_by_role("button", name="Save and send").click()

    expect(ui.answers.last.locator(".md")).to_have_text("echo: blue")
    expect(ui.user_messages).to_have_count(2)
    expect(ui.user_messages.last.locator(".branch-count")).to_have_text("2/2")
    ui.reload()
    expect(ui.user_messages.last.locator(".plain")).to_have_text("blue")
    ui.user_messages.last.get_by_role("button", name="Previous version").click()
    expect(ui.user_messages.last.locator(".plain")).to_have_text("green")
    expect(ui.answers.last.locator(".md")).to_have_text("echo: green")


def test_an_edit_is_cancelled_with_escape_and_nothing_is_sent(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("keep me")
    ui.user_messages.last.get_by_role("button", name="Edit").click()
    ui.page.get_by_label("Edit message").press("Escape")
    expect(ui.page.get_by_label("Edit message")).to_have_count(0)
    expect(ui.user_messages.last.locator(".plain")).to_have_text("keep me")
    expect(ui.answers).to_have_count(1)


def test_copy_copies_an_answer_and_a_code_block(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    _allow_clipboard(ui)
    answer = ui.send_and_wait("see:\n```\nprint(1)\n```")

    answer.get_by_role("button", name="Copy code").click()
    assert ui.page.evaluate("navigator.clipboard.readText()") == "print(1)"
    answer.locator(".msg-actions").get_by_role("button", name="Copy").click()
    expect(answer.locator(".msg-actions")).to_contain_text("Copied")
    assert ui.page.evaluate("navigator.clipboard.readText()").startswith("echo: see:")


def test_a_failed_turn_reads_as_failed_after_a_reload(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send("/fail")
    expect(ui.answers.last.locator(".turn-error")).to_be_visible()
    ui.send_and_wait("after")
    ui.reload()
    expect(ui.user_messages).to_have_count(2)
    expect(ui.answers.first.locator(".turn-error")).to_contain_text("The model failed to answer")
