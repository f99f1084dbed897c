"""Streamed turns over real HTTP: Server-Sent Events read as a browser's EventSource would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    name: str
    data: Any
    id: str | None = None


async def events_of(response: httpx.Response) -> AsyncIterator[Event]:
    """Each event as it arrives: ``event:`` names it (default ``message``), ``data:`` lines are JSON,
    ``id:`` is its id (a browser's ``lastEventId``)."""
    name, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("id:"):
            event_id = line[len("id:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())
        elif not line and data:
            text = "\n".join(data)
            yield Event(name, text if text == "[DONE]" else json.loads(text), event_id)
            name, data, event_id = "message", [], None


async def stream_turn(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[httpx.Response, list[Event]]:
    """POST /api/chat/stream and read every event (an error response is returned with no events)."""
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return response, []
        return response, [event async for event in events_of(response)]


def turn(message: str, chat_id: str, agent: str = "assistant") -> dict[str, str]:
    return {"agent_name": agent, "message": message, "session_id": chat_id}


async def first_accepted_turn(
    client: httpx.AsyncClient, body: dict[str, str]
) -> tuple[httpx.Response, float]:
    """POST /api/chat until the chat is not busy (409); the answer, and how long the chat stayed busy."""
    started = time.monotonic()
    for _ in range(400):
        sent = time.monotonic()
        response = await client.post("/api/chat", json=body)
        if response.status_code != 409:
            return response, sent - started
        await asyncio.sleep(0.05)
    raise AssertionError("the chat never became free")
