"""The HTTP server's limits: header size, time to send a request, idle keep-alive, connections.

uvicorn's httptools protocol has none of the first two: a header block of any size is read (64 MiB
was answered 200), and a client that sends a byte now and then keeps its connection, and the
memory it holds, forever (each byte restarts the keep-alive timer). ``BoundedHttpTools`` adds both
to that protocol, keeping its speed (h11, which caps headers, is slower per request):

- from its first byte, a request's line and headers may take at most ``max_header_bytes``; past
  that the answer is 431 and the connection closes;
- a connection must deliver a whole request (line, headers, body) within ``request_timeout``
  of opening or of the request's first byte; else it is answered 408 (or, once the app has it,
  just closed).

Idle keep-alive connections close after ``keep_alive`` seconds, and past ``max_connections``
concurrent connections (or requests) uvicorn answers 503 (its ``limit_concurrency``).

``DrainingServer`` tells the app when a graceful stop begins, so that the runs still going when the
connections are done get what is left of the same grace, not a second one.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chatserver.config import Settings

LINGER_SECONDS = 1.0


def _response(status: str, detail: str, code: str) -> bytes:
    body = json.dumps({"detail": detail, "code": code}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def bounded_protocol(max_header_bytes: int, request_timeout: float) -> type[HttpToolsProtocol]:
    too_large = _response(
        "431 Request Header Fields Too Large",
        f"request line and headers exceed {max_header_bytes} bytes",
        "request_header_fields_too_large",
    )
    too_slow = _response(
        "408 Request Timeout", f"the request did not arrive within {request_timeout}s", "request_timeout"
    )

    class BoundedHttpTools(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _header_bytes: int | None = None  # None: not inside a request's line and headers
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # the rest of a refused request, read only so the client can read our answer
            super().data_received(data)
            if self._header_bytes is None:
                return
            self._header_bytes += len(data)
            if self._header_bytes > max_header_bytes:
                self._refuse(too_large)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            if self._deadline is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._header_bytes = None
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self._header_bytes is not None or self.cycle is None:
                self._refuse(too_slow)  # the app has not seen this request: it can be answered
            elif not self.transport.is_closing():
                self.transport.close()  # the app is waiting for the rest of the body: it sees a disconnect

        def _refuse(self, response: bytes) -> None:
            """Answer, then read and drop what the client still sends for a moment before closing:
            closing with unread data would reset the connection, and the client lose the answer."""
            self._disarm()
            self._header_bytes = None
            if self.transport.is_closing() or self._refused:
                return
            self._refused = True
            self.transport.write(response)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    return BoundedHttpTools


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that apply the limits of ``settings``."""
    return {
        "http": bounded_protocol(settings.http_max_header_bytes, settings.http_request_timeout_seconds),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_connections,
    }


class DrainingServer(uvicorn.Server):
    """uvicorn's server, calling ``on_drain`` as it stops accepting connections."""

    def __init__(self, config: uvicorn.Config, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_drain = on_drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_drain()
        await super().shutdown(sockets)
