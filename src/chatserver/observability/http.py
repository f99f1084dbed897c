"""Per-request context: a request id on every log line and on the response, metrics, an access log.

A pure ASGI middleware, so streamed responses are measured to their last byte. The access log line
is written here (uvicorn's own is off): it names the path without its query string, so a secret a
client puts in a URL never reaches the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Protocol

import structlog
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatserver.observability.metrics import UNMATCHED_ROUTE, Metrics

log = logging.getLogger("chatserver.http")

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class BeforeResponse(Protocol):
    """Work that must be done before a response starts (e.g. publishing cache invalidations)."""

    async def settle(self) -> None: ...


class NothingToSettle:
    async def settle(self) -> None:
        return None


class Observed(Protocol):
    """What the middleware needs from the container the lifespan puts on ``app.state``."""

    metrics: Metrics
    before_response: BeforeResponse


class RequestContext:
    """Binds ``request_id``, answers ``X-Request-Id``, counts and times each request by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        container: Observed | None = getattr(scope["app"].state, "container", None)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if container is not None:
                    await container.before_response.settle()
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, container, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, container: Observed | None, status: int, seconds: float) -> None:
        route = route_template(scope)
        if container is not None:
            container.metrics.http_request(scope["method"], route, status, seconds)
        level = logging.DEBUG if route in _QUIET_ROUTES and status < 500 else logging.INFO
        log.log(
            level,
            "http request",
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )


def route_template(scope: Scope) -> str:
    """The matched route's path template, or a constant for requests that matched no route."""
    route = scope.get("route")
    if route is None or isinstance(route, Mount):
        return UNMATCHED_ROUTE if route is None else str(route.path or "/")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is short and plain (so it can't forge log lines), else new."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CLIENT_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex
