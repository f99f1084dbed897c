"""A reloaded chat reads as it did live: who answered and what it took under each answer, and a
stopped or failed turn shown as stopped or failed (the last one with a Retry), not as two user
messages in a row."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.chatpage import STREAMING, ChatPage, Person
from tests.browser.test_accessibility import CONTRAST, UNLABELLED_CONTROLS

META = re.compile(r"^echo · \d+ in, \d+ out tokens$")


def test_model_and_tokens_show_under_each_answer_live_and_after_a_reload(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    live = [ui.send_and_wait(text).locator(".turn-meta").inner_text() for text in ("one", "two three")]
    assert all(META.match(meta) for meta in live), live

    ui.reload()

    expect(ui.answers).to_have_count(2)
    expect(ui.page.locator(".msg.assistant .turn-meta")).to_have_text(live)


def test_a_stopped_last_turn_reloads_as_stopped_and_its_retry_answers_it_as_a_new_version(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send("/sleep 1500 worth a retry")
    expect(ui.answers.last).to_have_class(STREAMING)
    ui.page.wait_for_function("() => sessionStorage.getItem('chatserver.run') !== null")
    ui.page.get_by_role("button", name="Stop").click()
    expect(ui.answers.last.locator(".turn-error")).to_contain_text("Stopped.")
    expect(ui.page.get_by_role("button", name="Send")).to_be_visible()

    ui.reload()

    expect(ui.user_messages).to_have_count(1)
    expect(ui.answers).to_have_count(1)
    expect(ui.answers.last.locator(".turn-error")).to_have_text(re.compile(r"^Stopped\.\s*Retry$"))
    ui.answers.last.get_by_role("button", name="Retry").click()
    expect(ui.answers.last.locator(".md")).to_have_text("echo: worth a retry", timeout=15_000)
    expect(ui.user_messages).to_have_count(1)
    expect(ui.user_messages.last.locator(".branch-count")).to_have_text("2/2")
    expect(ui.answers.last.locator(".turn-meta")).to_have_text(META)


def test_a_failed_turn_reloads_with_its_reason_the_last_one_with_a_retry_an_earlier_one_without(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send("/fail")
    live = ui.answers.last.locator(".turn-error span")
    expect(live).to_contain_text("The model failed to answer")
    failed_live = live.inner_text()

    ui.reload()

    expect(ui.user_messages).to_have_count(1)
    expect(ui.answers.last.locator(".turn-error span")).to_have_text(failed_live)
    expect(ui.answers.last.get_by_role("button", name="Retry")).to_be_visible()

    ui.send_and_wait("and then")
    ui.reload()

    expect(ui.user_messages).to_have_count(2)
    first_answer = ui.answers.first
    expect(first_answer.locator(".turn-error span")).to_have_text(failed_live)
    expect(first_answer.get_by_role("button", name="Retry")).to_have_count(0)
    expect(ui.answers.last.locator(".md")).to_have_text("echo: and then")


def test_turn_endings_after_a_reload_are_labelled_announced_and_readable(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send("/fail")
    expect(ui.answers.last.locator(".turn-error")).to_be_visible()
    ui.send_and_wait("fine")

    ui.reload()

    expect(ui.page.locator(".msg.assistant .turn-error[role=alert]")).to_have_count(1)
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []
    measured = ui.page.evaluate(CONTRAST, ".turn-error span, .turn-meta")
    low = [(text, ratio) for text, ratio in measured if ratio < 4.5]
    assert len(measured) == 2 and low == [], measured


def test_each_message_shows_when_it_was_stored_live_and_after_a_reload(ui: ChatPage, person: Person) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("what time is it")
    expect(ui.page.locator(".msg .msg-actions time")).to_have_count(2)
    stored = ui.page.evaluate(
        """async (key) => {
            const chat = sessionStorage.getItem('chatserver.chat');
            const headers = { Authorization: `Bearer ${key}` };
            const r = await fetch(`/api/chats/${chat}/messages`, { headers });
            return (await r.json()).items.map((m) => m.created_at);
        }""",
        person.key,
    )
    live = ui.page.locator(".msg .msg-actions time").evaluate_all("(els) => els.map((e) => e.dateTime)")

    ui.reload()

    reloaded = ui.page.locator(".msg .msg-actions time")
    assert live == stored == reloaded.evaluate_all("(els) => els.map((e) => e.dateTime)")
    for at, time in zip(stored, reloaded.all(), strict=True):
        expect(time).to_be_visible()
        assert time.get_attribute("title") == ui.page.evaluate("(iso) => new Date(iso).toISOString()", at)
