"""The seed's chat API, which chatserver and the original both serve: ``POST /api/chat`` with
``{agent_name, message, session_id}``, answered with ``{session_id, response, tool_name, ...}``."""

from __future__ import annotations

import httpx

from benchmarks.common import bearer
from benchmarks.peers.contender import Chat, Turn

AGENT = "assistant"


class SeedChatApi:
    """A chat needs nothing before its first turn: its id (a UUID) names it."""

    async def open_chats(self, client: httpx.AsyncClient, chats: list[Chat]) -> list[Chat]:
        return chats

    def turn(self, chat: Chat, message: str) -> Turn:
        body = {"agent_name": AGENT, "message": message, "session_id": chat.chat_id}
        return Turn("/api/chat", bearer(chat.user), json=body)

    def answer_of(self, response: httpx.Response) -> str:
        return str(response.json()["response"])
