"""A real browser against a live chatserver on loopback.

Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright through
``executable_path``: Playwright never downloads a browser. Each test gets a fresh browser profile
and a user of its own with an API key, and leaves a screenshot in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, expect, sync_playwright

from tests.browser.chatpage import ChatPage, Person
from tests.browser.servers import browser_test_server
from tests.e2e.harness import LiveServer, mint_token

CHROMIUM = Path(os.environ.get("CHATSERVER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Generous: the machine is shared with other test runs. Waits are event-based, so this is a ceiling.
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1200, "height": 800}

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Per module, not per session: while it runs, its event loop occupies the main thread, where
    the asyncio tests of the rest of the suite need theirs."""
    if not CHROMIUM.exists():
        raise pytest.UsageError(f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server per test module."""
    with browser_test_server(tmp_path_factory.mktemp("browser")) as live:
        yield live


@pytest.fixture
def person() -> Person:
    """A user of their own, signing in with a JWT (instant to make)."""
    name = f"web-{uuid.uuid4().hex[:10]}"
    return Person(name=name, key=mint_token(name))


@pytest.fixture
def key_person(server: LiveServer) -> Person:
    """A user of their own, signing in with an API key issued by ``chatserver keys create``."""
    name = f"web-{uuid.uuid4().hex[:10]}"
    done = server.cli("keys", "create", "--user", name)
    return Person(name=name, key=done.stdout.strip().splitlines()[-1])


@pytest.fixture
def open_browser(
    playwright_driver: Playwright, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ChatPage]:
    """A page in a fresh profile; not yet navigated. Screenshot taken when the test ends."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=DESKTOP,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        chat_page = ChatPage(page)
        yield chat_page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if not page.is_closed() and page.url.startswith("http"):
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"))
        chat_page.assert_nothing_went_wrong()
    finally:
        context.close()


@pytest.fixture
def ui(open_browser: ChatPage, server: LiveServer) -> ChatPage:
    """The chat page of the module's server, loaded and showing the sign-in form."""
    open_browser.open(server.url)
    return open_browser
