"""What the reliability tests send and read back: turns and a chat's stored messages."""

from __future__ import annotations

import uuid

import httpx


def new_chat() -> str:
    return str(uuid.uuid4())


def body(message: str, chat_id: str, agent: str = "assistant") -> dict[str, str]:
    return {"agent_name": agent, "message": message, "session_id": chat_id}


async def turn(
    client: httpx.AsyncClient, message: str, chat_id: str, agent: str = "assistant"
) -> httpx.Response:
    return await client.post("/api/chat", json=body(message, chat_id, agent))


async def stored(client: httpx.AsyncClient, chat_id: str) -> list[tuple[str, str]]:
    """(role, content) of every message of the chat, oldest first (one page of up to 200)."""
    page = await client.get(f"/api/chats/{chat_id}/messages", params={"limit": 200})
    assert page.status_code == 200, page.text
    return [(m["role"], m["content"]) for m in page.json()["items"]]
