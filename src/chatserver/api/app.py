"""create_app(settings): the ASGI application. The lifespan owns the container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatserver import __version__
from chatserver.api.errors import install_error_handlers
from chatserver.api.json_bodies import JsonBodyCheck
from chatserver.api.limits import BodySizeLimit
from chatserver.api.responses import API_ERRORS, OPENAI_ERRORS
from chatserver.api.routes import (
    agents,
    chat,
    chats,
    customizations,
    health,
    me,
    openai,
    runs,
    sessions,
    users,
    web,
)
from chatserver.api.routes import events as audit_events
from chatserver.api.routes import memories as memory_routes
from chatserver.config import Settings
from chatserver.container import Container, build_container
from chatserver.observability.http import RequestContext


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Build the app; with ``container`` given the caller owns it (tests), else the lifespan does."""
    settings = settings or (container.settings if container else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or build_container(settings)
        await app.state.container.start()
        try:
            yield
        finally:
            if owned:
                await app.state.container.aclose()

    app = FastAPI(
        title="chatserver",
        version=__version__,
        description="Self-hosted, multi-user LLM agent chat server",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    # The error responses are documented so that the OpenAPI schema describes every answer but a 500.
    for module in (chat, runs, agents, chats, customizations, sessions, me, users):
        app.include_router(module.router, responses=API_ERRORS)
    app.include_router(openai.router, responses=OPENAI_ERRORS)
    app.include_router(memory_routes.router, responses=API_ERRORS)
    app.include_router(audit_events.router, responses=API_ERRORS)
    app.include_router(web.build_router())
    # Inside the size limit: the JSON check never holds more than the limit in memory.
    app.add_middleware(JsonBodyCheck)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outermost: request id, access log and metrics cover every response, a 413 included.
    app.add_middleware(RequestContext)
    return app
