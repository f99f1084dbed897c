"""Bodies over ``CHATSERVER_MAX_BODY_BYTES`` are refused with 413 before they are read whole.

Raw sockets, so the test decides what is sent and when: a declared length past the limit is refused
with no body sent at all, and a chunked body is refused as soon as it passes the limit while the
client is still holding the rest (a server that waited for the end would never answer).
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from tests.e2e.harness import LiveServer, mint_token

ANSWER_SECONDS = 10.0


async def exchange(live: LiveServer, head: str, chunks: list[bytes]) -> tuple[int, dict[str, object]]:
    """Send the request head and ``chunks`` but never the end of the body; read the answer."""
    url = urlsplit(live.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.encode())
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), ANSWER_SECONDS)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)


def request_head(live: LiveServer, **headers: str) -> str:
    lines = [
        "POST /api/chat HTTP/1.1",
        f"Host: {urlsplit(live.url).netloc}",
        f"Authorization: Bearer {mint_token('bulky')}",
        "Content-Type: application/json",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(live: LiveServer) -> None:
    head = request_head(live, Content_Length=str(10 * 1024**3))
    status, body = await exchange(live, head, [])
    assert (status, body["code"]) == (413, "payload_too_large")


async def test_a_chunked_body_is_refused_once_it_passes_the_limit_while_the_rest_is_still_unsent(
    live: LiveServer,
) -> None:
    limit = live.settings.max_body_bytes
    piece = 16 * 1024
    chunk = f"{piece:x}\r\n".encode() + b"x" * piece + b"\r\n"
    chunks = [chunk] * (limit // piece + 2)  # past the limit, and no terminating chunk
    status, body = await exchange(live, request_head(live, Transfer_Encoding="chunked"), chunks)
    assert (status, body["code"]) == (413, "payload_too_large")


async def test_a_body_at_the_limit_is_read_and_judged_on_its_content(live: LiveServer) -> None:
    """The limit is on size, not on the request: just under it, the body is parsed (and found long)."""
    limit = live.settings.max_body_bytes
    filler = "y" * (limit - 200)
    async with live.client("exact") as client:
        response = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": filler, "session_id": "exact"}
        )
    assert len(response.request.content) <= limit
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert "message is longer" in response.json()["detail"]
