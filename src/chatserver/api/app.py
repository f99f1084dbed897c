"""create_app(settings): the ASGI application. The lifespan owns the container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from chatserver import __version__
from chatserver.api.errors import install_error_handlers
from chatserver.api.json_bodies import JsonBodyCheck
from chatserver.api.limits import BodySizeLimit
from chatserver.api.responses import API_ERRORS, OPENAI_ERRORS
from chatserver.api.routes import (
    agents,
    approvals,
    chat,
    chats,
    customizations,
    health,
    keys,
    me,
    openai,
    runs,
    sessions,
    ui,
    usage,
    users,
    web,
)
from chatserver.api.routes import events as audit_events
from chatserver.api.routes import memories as memory_routes
from chatserver.api.routes import responses as openai_responses
from chatserver.api.shutdown import ShutdownAnswers
from chatserver.config import Settings
from chatserver.container import Container, build_container
from chatserver.observability.http import RequestContext
from chatserver.observability.tracing import start_tracing


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Build the app; with ``container`` given the caller owns it (tests), else the lifespan does.

    Tracing starts here, before the lifespan, because the HTTP spans wrap the app's middleware
    stack, which is built before the lifespan runs; the container shuts it down with itself."""
    settings = settings or (container.settings if container else Settings())
    tracing = container.tracing if container else start_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or build_container(settings, tracing=tracing)
        await app.state.container.start()
        try:
            yield
        finally:
            if owned:
                await app.state.container.aclose()

    # A FastAPI app whose /docs and /redoc load their assets from this server: they work offline.
    app = FastAPIOffline(
        title="chatserver",
        version=__version__,
        description="Self-hosted, multi-user LLM agent chat server",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    # The error responses are documented so that the OpenAPI schema describes every answer but a 500.
    for module in (chat, runs, approvals, agents, chats, customizations, sessions, me, users, usage, ui):
        app.include_router(module.router, responses=API_ERRORS)
    app.include_router(openai.router, responses=OPENAI_ERRORS)
    app.include_router(openai_responses.router, responses=OPENAI_ERRORS)
    app.include_router(memory_routes.router, responses=API_ERRORS)
    app.include_router(audit_events.router, responses=API_ERRORS)
    app.include_router(keys.router, responses=API_ERRORS)
    app.include_router(web.build_router())
    # Inside the size limit: the JSON check never holds more than the limit in memory.
    app.add_middleware(JsonBodyCheck)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outside the body checks and the routes (where auth is): a preflight is answered before either,
    # and every answer, a 401 or a 413 included, carries the headers a browser needs to read it.
    _allow_cross_origin(app, settings.cors_origins)
    # Just inside the request context: the answer to a request cut by shutdown is logged and counted.
    app.add_middleware(ShutdownAnswers)
    # Outermost: request id, access log and metrics cover every response, a 413 included.
    app.add_middleware(RequestContext)
    if tracing is not None:
        tracing.instrument_app(app)
    return app


# What browser clients send and read beyond the CORS-safelisted headers.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-Chat-Id"]
CORS_RESPONSE_HEADERS = ["Location", "X-Chat-Id"]


def _allow_cross_origin(app: FastAPI, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["*"],
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        # Credentials (cookies, client certificates) only to origins named one by one, never to any.
        allow_credentials="*" not in origins,
    )
