"""Labelled controls, keyboard use, and a phone-width screen."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.chatpage import ChatPage, Person

UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll("button, input, select, textarea"))
    .filter(el => {
        const aria = (el.getAttribute("aria-label") || "").trim();
        if (el.tagName === "BUTTON") return !aria && !el.textContent.trim();
        return !aria && !(el.labels && el.labels.length);
    })
    .map(el => el.outerHTML)"""

PHONE = {"width": 375, "height": 740}


def test_every_control_has_a_label(ui: ChatPage, person: Person) -> None:
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []
    ui.sign_in(person.key)
    ui.send_and_wait("hello")
    ui.open_instructions()
    ui.page.get_by_role("button", name="Add", exact=True).click()
    expect(ui.page.get_by_role("button", name="Edit instruction_set")).to_be_visible()

    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []


def test_the_page_works_from_the_keyboard(ui: ChatPage, person: Person) -> None:
    keyboard = ui.page.keyboard
    expect(ui.token_field).to_be_focused()
    keyboard.type(person.key)
    keyboard.press("Enter")
    expect(ui.message_box).to_be_focused()

    keyboard.type("line one")
    keyboard.press("Shift+Enter")
    keyboard.type("line two")
    keyboard.press("Enter")
    expect(ui.user_messages.last.locator(".plain")).to_have_text("line one\nline two")
    expect(ui.answers.last.locator(".md")).to_have_text("echo: line one\nline two", use_inner_text=True)
    keyboard.press("Tab")
    expect(ui.page.get_by_role("button", name="Send")).to_be_focused()

    answer = ui.send_and_wait("/tool current_time {}")
    answer.locator("summary").focus()
    keyboard.press("Enter")
    expect(answer.locator(".tool-args")).to_be_visible()

    toggle = ui.page.get_by_role("button", name="Instructions")
    toggle.focus()
    keyboard.press("Enter")
    expect(ui.page.get_by_label("Instruction 1", exact=True)).to_be_focused()
    keyboard.press("Escape")
    expect(ui.page.locator("#panel")).to_be_hidden()
    expect(toggle).to_be_focused()


def test_the_page_is_readable_at_phone_width(ui: ChatPage, person: Person) -> None:
    ui.page.set_viewport_size(PHONE)
    ui.sign_in(person.key)
    ui.send_and_wait("a fairly long first message that has to wrap on a narrow phone screen")
    ui.send_and_wait(
        "look:\n```\n" + "x = 1  # a long line of code that must scroll, not widen the page\n" + "```"
    )

    assert ui.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    sidebar = ui.page.get_by_role("navigation", name="Your chats")
    expect(sidebar).to_be_hidden()
    ui.page.get_by_role("button", name="Chats").click()
    expect(sidebar).to_be_visible()
    expect(ui.sidebar_chats).to_have_count(1)
    ui.sidebar_chats.first.click()
    expect(sidebar).to_be_hidden()
    box = ui.message_box.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


# WCAG contrast of each element's text against the first opaque background behind it.
CONTRAST = """(selector) => {
    const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || c[3] > 0.9) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    return Array.from(document.querySelectorAll(selector)).map((el) => {
        const [a, b] = [lum(rgb(getComputedStyle(el).color).slice(0, 3)), lum(background(el))];
        return [el.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
    });
}"""
TREE_TEXT = (
    ".msg-actions time, .msg-actions button, .branch-count, .chat-meta, .chat-snippet, .toggle, .code-copy"
)


def test_message_bars_and_chat_menus_are_labelled_keyboard_usable_and_readable(
    ui: ChatPage, person: Person
) -> None:
    ui.sign_in(person.key)
    ui.send_and_wait("code:\n```\nx = 1\n```")
    ui.answers.last.get_by_role("button", name="Regenerate").click()
    expect(ui.answers.last.locator(".branch-count")).to_have_text("2/2")
    ui.page.get_by_label("Search chats").fill("code")
    expect(ui.sidebar_chats.first.locator(".chat-snippet")).to_be_visible()
    ui.page.locator(".chat-menu summary").first.click()
    ui.user_messages.last.get_by_role("button", name="Edit").click()
    assert ui.page.evaluate(UNLABELLED_CONTROLS) == []

    ui.page.get_by_label("Edit message").press("Escape")
    regenerate = ui.answers.last.get_by_role("button", name="Regenerate")
    regenerate.focus()
    ui.page.keyboard.press("Tab")
    expect(ui.answers.last.get_by_role("button", name="Previous version")).to_be_focused()
    ui.page.keyboard.press("Enter")
    expect(ui.answers.last.locator(".branch-count")).to_have_text("1/2")

    measured = ui.page.evaluate(CONTRAST, TREE_TEXT)
    low = [(text, ratio) for text, ratio in measured if ratio < 4.5]
    assert len(measured) >= 10 and low == [], low
