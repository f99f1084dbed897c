"""Many turns at once over real HTTP: one chat stays strictly ordered, many chats never mix.

Half the turns are streamed (``/api/chat/stream``), half plain (``/api/chat``): both take the chat's
turn the same way.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.e2e.harness import LiveServer
from tests.e2e.streams import stream_turn
from tests.reliability.turns import body, stored, turn

TURNS = 50
CHATS = 50


async def any_turn(client: httpx.AsyncClient, message: str, chat_id: str, streamed: bool) -> str:
    """The answer, through either route; fails the test on any error."""
    if not streamed:
        response = await turn(client, message, chat_id)
        assert response.status_code == 200, response.text
        return str(response.json()["response"])
    response, events = await stream_turn(client, body(message, chat_id))
    assert response.status_code == 200 and events[-1].name == "done", (response.status_code, events)
    return str(events[-1].data["response"])


async def test_fifty_concurrent_turns_on_one_chat_store_all_hundred_messages_strictly_alternating(
    live: LiveServer,
) -> None:
    chat_id = str(uuid.uuid4())
    messages = [f"m{i}" for i in range(TURNS)]
    async with live.client("hundred", timeout=120) as client:
        answers = await asyncio.gather(
            *[any_turn(client, message, chat_id, streamed=i % 2 == 1) for i, message in enumerate(messages)]
        )
        kept = await stored(client, chat_id)
    assert answers == [f"echo: {message}" for message in messages]
    assert len(kept) == 2 * TURNS
    assert [role for role, _ in kept] == ["user", "assistant"] * TURNS
    for (_, question), (_, answer) in zip(kept[::2], kept[1::2], strict=True):
        assert answer == f"echo: {question}"
    assert sorted(content for _, content in kept[::2]) == sorted(messages)


async def test_fifty_chats_of_one_user_and_agent_at_once_never_share_a_message(live: LiveServer) -> None:
    chats = [f"mix-{uuid.uuid4().hex[:8]}-{n}" for n in range(CHATS)]

    async def converse(client: httpx.AsyncClient, n: int, chat_id: str) -> str:
        for i in range(2):
            assert await any_turn(client, f"{chat_id}/{i}", chat_id, streamed=(n + i) % 2 == 1)
        return await any_turn(client, "/recall", chat_id, streamed=n % 2 == 0)

    async with live.client("juggler", timeout=120) as client:
        recalls = await asyncio.gather(*[converse(client, n, chat_id) for n, chat_id in enumerate(chats)])
        kept = [await stored(client, chat_id) for chat_id in chats]
        listed = (await client.get("/api/chats", params={"limit": 200})).json()["items"]
    for chat_id, recall, messages in zip(chats, recalls, kept, strict=True):
        assert recall == f"recall: {chat_id}/0 | {chat_id}/1"
        assert messages == [
            ("user", f"{chat_id}/0"),
            ("assistant", f"echo: {chat_id}/0"),
            ("user", f"{chat_id}/1"),
            ("assistant", f"echo: {chat_id}/1"),
            ("user", "/recall"),
            ("assistant", recall),
        ]
    assert {chat["id"] for chat in listed} >= set(chats)
