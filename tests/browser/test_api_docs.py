"""The API docs (/docs, /redoc) render with no internet: their scripts and styles come from this server."""

from __future__ import annotations

from playwright.sync_api import Route, expect

from tests.browser.chatpage import ChatPage
from tests.e2e.harness import LiveServer

RENDERING = {"document", "script", "stylesheet", "font", "fetch", "xhr"}
"""What a page needs to render and work; ReDoc's "API docs by Redocly" footer image is not."""


def offline(ui: ChatPage, server: LiveServer) -> list[str]:
    """Refuse every request that leaves the server, as a machine without internet would; the list
    fills with the refused requests a page needs to render."""
    refused: list[str] = []

    def handle(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
            return
        if route.request.resource_type in RENDERING:
            refused.append(f"{route.request.resource_type} {route.request.url}")
        route.abort()

    ui.page.route("**/*", handle)
    return refused


def test_swagger_ui_renders_the_api_offline(open_browser: ChatPage, server: LiveServer) -> None:
    refused = offline(open_browser, server)
    open_browser.page.goto(f"{server.url}/docs")

    expect(open_browser.page.locator(".swagger-ui .info .title")).to_contain_text("chatserver")
    expect(open_browser.page.get_by_text("/api/chat", exact=True).first).to_be_visible()
    assert refused == []


def test_redoc_renders_the_api_offline(open_browser: ChatPage, server: LiveServer) -> None:
    refused = offline(open_browser, server)
    open_browser.page.goto(f"{server.url}/redoc")

    expect(open_browser.page.get_by_role("heading", name="chatserver").first).to_be_visible()
    assert refused == []
