"""The HTTP server's own limits, on a real ``chatserver serve``: oversized and slow requests, idle and
surplus connections. Raw sockets on loopback; every loop is bounded in count and time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.processes import ServerProcess, chatserver_serve

MAX_HEADER_BYTES = 16_384
REQUEST_TIMEOUT = 1.0
KEEP_ALIVE = 1
MAX_CONNECTIONS = 8
MARGIN = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "CHATSERVER_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "CHATSERVER_HTTP_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
        "CHATSERVER_HTTP_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
        "CHATSERVER_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "CHATSERVER_BACKGROUND_TASKS": "false",
    }
    with chatserver_serve(tmp_path_factory.mktemp("limits"), **env) as process:
        process.wait_healthy()
        yield process


def connect(server: ServerProcess) -> socket.socket:
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=10)
    sock.settimeout(REQUEST_TIMEOUT + MARGIN)
    return sock


def answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes (bounded by the socket timeout and 64 KiB)."""
    received = b""
    while len(received) < 65_536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[bool, bytes]:
    """Send ``trickle`` every 0.1 s until the server closes; whether it did within ``seconds``."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.1)
    received = b""
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(trickle)
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def test_a_header_block_past_the_limit_is_answered_431_and_the_connection_closed(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(64):  # 1 MiB of headers at most, in 16 KiB lines
                sock.sendall(b"X-Padding: " + b"a" * 16_000 + b"\r\n")
        except OSError:
            pass  # the server closed while we were still sending: refused
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"request_header_fields_too_large" in reply


def test_headers_just_under_the_limit_are_served(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/healthz", headers={"X-Padding": "a" * 12_000}, timeout=10)
    assert response.status_code == 200


def test_a_client_trickling_its_headers_is_answered_408_within_the_request_timeout(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed, reply = closed_within(sock, REQUEST_TIMEOUT + MARGIN, trickle=b"X-a: b\r\n")
        seconds = time.monotonic() - started
    assert closed and seconds < REQUEST_TIMEOUT + MARGIN
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]


def test_a_body_that_never_arrives_closes_the_connection(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        sock.sendall(b"Content-Length: 1000\r\n\r\n{")
        closed, _ = closed_within(sock, REQUEST_TIMEOUT + MARGIN, trickle=b" ")
    assert closed


@pytest.mark.parametrize("first_request", [False, True], ids=["silent connection", "after a response"])
def test_an_idle_connection_is_closed(server: ServerProcess, first_request: bool) -> None:
    with connect(server) as sock:
        if first_request:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        closed, reply = closed_within(sock, max(REQUEST_TIMEOUT, KEEP_ALIVE) + MARGIN)
    assert closed
    assert reply.startswith(b"HTTP/1.1 200 ") if first_request else True


def test_past_the_connection_limit_a_request_is_answered_503_and_later_ones_are_served(
    server: ServerProcess,
) -> None:
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        with connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            refused = answer(extra)
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while (status := httpx.get(f"{server.url}/healthz", timeout=10).status_code) == 503:
        assert time.monotonic() < deadline, "the server kept refusing after the connections closed"
        time.sleep(0.1)
    assert refused.startswith(b"HTTP/1.1 503 "), refused[:200]
    assert status == 200
