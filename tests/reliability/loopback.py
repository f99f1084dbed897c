"""A small ASGI app served on loopback in a thread, for what the server under test fetches (a JWKS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.e2e.harness import free_port


@contextmanager
def json_document(path: str, document: dict[str, Any]) -> Iterator[str]:
    """Serve ``document`` at ``path``; yields its URL."""

    async def serve(request: Request) -> JSONResponse:
        return JSONResponse(document)

    port = free_port()
    app = Starlette(routes=[Route(path, serve)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="loopback-document", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
