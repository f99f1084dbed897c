"""The chat page as a test uses it: what a person does (sign in, send) and what they see.

It also watches the page for anything that should never happen: a JavaScript dialog (what an
injected ``alert(1)`` would open), an uncaught error, or a console error such as a Content
Security Policy violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Dialog, Locator, Page, Request, expect

STREAMING = re.compile(r"\bstreaming\b")


@dataclass(frozen=True)
class Person:
    name: str
    key: str  # what goes in the sign-in field: an API key or a JWT


@dataclass
class Watch:
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class ChatPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.watch = Watch()
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.watch.page_errors.append(str(error)))
        page.on("console", self._on_console)
        page.on("request", self._on_request)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        # The browser logs every failed HTTP status as a console error; the tests that cause those
        # (a bad key, a server that is down) check what the page shows instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.watch.console_errors.append(message.text)

    def _on_request(self, request: Request) -> None:
        self.watch.requests.append(f"{request.method} {request.url}")

    def assert_nothing_went_wrong(self) -> None:
        assert self.watch.dialogs == [], "the page opened a dialog"
        assert self.watch.page_errors == [], "the page raised an uncaught error"
        assert self.watch.console_errors == [], "the page logged an error"

    # ---- what a person does ----

    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.token_field).to_be_visible()

    def reload(self) -> None:
        """Reload the tab and wait until the open chat (or a new one) is shown."""
        self.page.reload()
        expect(self.page.locator("#messages")).to_have_attribute("aria-busy", "false")

    def sign_in(self, key: str) -> None:
        self.token_field.fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(self.page.locator("#messages")).to_have_attribute("aria-busy", "false")
        expect(self.message_box).to_be_enabled()

    def send(self, text: str) -> None:
        self.message_box.fill(text)
        self.message_box.press("Enter")

    def send_and_wait(self, text: str) -> Locator:
        """Send ``text`` and return the finished answer to it."""
        count = self.answers.count()
        self.send(text)
        answer = self.answers.nth(count)
        expect(answer).to_be_visible()
        expect(answer).not_to_have_class(STREAMING)
        # After a turn the page lists the chat (it exists now) and marks it as the open one.
        expect(self.page.locator("#chat-list [aria-current=page]")).to_have_count(1)
        return answer

    def open_instructions(self) -> None:
        self.page.get_by_role("button", name="Instructions").click()
        expect(self.page.get_by_role("complementary", name="Your instructions")).to_be_visible()

    # ---- what a person sees ----

    @property
    def token_field(self) -> Locator:
        return self.page.get_by_label("API key or JWT")

    @property
    def sign_in_error(self) -> Locator:
        return self.page.locator("#signin-error")

    @property
    def message_box(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    @property
    def answers(self) -> Locator:
        return self.page.locator(".msg.assistant")

    @property
    def user_messages(self) -> Locator:
        return self.page.locator(".msg.user")

    @property
    def sidebar_chats(self) -> Locator:
        return self.page.locator("#chat-list .chat-open")

    def chat_id(self) -> str:
        """The open chat's id (kept in the tab's sessionStorage once the chat exists)."""
        chat_id = self.page.evaluate("sessionStorage.getItem('chatserver.chat')")
        assert isinstance(chat_id, str) and chat_id, "no chat is open"
        return chat_id
