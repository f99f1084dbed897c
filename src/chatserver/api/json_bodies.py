"""Every JSON request body passes ``untrusted.parse_json`` before a route reads it (422, naming where).

The check runs on the body's last chunk, inside ``BodySizeLimit`` (so it never buffers more than the
limit), and raises from ``receive``; the error handlers answer it as any validation error
(``"loc": ["body", ...]``, OpenAI's shape on ``/v1``). Bodies not JSON are left to FastAPI.
"""

from __future__ import annotations

import email.message
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatserver.untrusted import UntrustedJsonError, error_location, parse_json


class JsonBodyRefused(HTTPException):
    """An HTTP error, not a plain exception: FastAPI turns any other error raised while it reads a
    body into a 400; ``api.errors`` answers this one like any validation error."""

    def __init__(self, error: UntrustedJsonError) -> None:
        super().__init__(422, error.reason)
        self.error = error

    def errors(self) -> list[dict[str, Any]]:
        loc = ["body", *error_location(self.error.path)]
        return [{"loc": loc, "msg": self.error.reason, "type": "value_error"}]


def is_json(scope: Scope) -> bool:
    """What FastAPI parses as JSON: no content type, ``application/json`` or ``application/*+json``."""
    raw = dict(scope["headers"]).get(b"content-type")
    if raw is None:
        return True
    message = email.message.Message()
    message["content-type"] = raw.decode("latin-1")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def check_body(body: bytes) -> None:
    try:
        parse_json(body)
    except UntrustedJsonError as error:
        raise JsonBodyRefused(error) from None
    except ValueError:
        pass  # not JSON at all: FastAPI's own parsing answers it


class JsonBodyCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def checking_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    check_body(b"".join(chunks))
            return message

        await self.app(scope, checking_receive, send)
