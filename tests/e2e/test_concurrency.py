"""Concurrent turns over real HTTP: one chat serialized, separate chats never crossed."""

from __future__ import annotations

import asyncio
import uuid

from tests.e2e.harness import LiveServer


async def test_twenty_concurrent_turns_on_one_chat_are_stored_in_strict_alternation(live: LiveServer) -> None:
    chat_id = str(uuid.uuid4())
    async with live.client("hank") as client:
        replies = await asyncio.gather(
            *[
                client.post(
                    "/api/chat", json={"agent_name": "assistant", "message": f"m{i}", "session_id": chat_id}
                )
                for i in range(20)
            ]
        )
        assert [r.status_code for r in replies] == [200] * 20
        page = await client.get(f"/api/chats/{chat_id}/messages", params={"limit": 200})
    items = page.json()["items"]
    assert len(items) == 40
    assert [m["role"] for m in items] == ["user", "assistant"] * 20
    for question, answer in zip(items[::2], items[1::2], strict=True):
        assert answer["content"] == f"echo: {question['content']}"
    assert sorted(m["content"] for m in items[::2]) == sorted(f"m{i}" for i in range(20))


async def test_two_chats_of_one_user_and_agent_never_see_each_others_messages(live: LiveServer) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with live.client("ivy") as client:

        async def drive(chat_id: str, tag: str) -> str:
            for i in range(3):
                sent = await client.post(
                    "/api/chat",
                    json={
                        "agent_name": "assistant",
                        "message": f"/sleep 30 {tag}{i}",
                        "session_id": chat_id,
                    },
                )
                assert sent.status_code == 200
            recall = await client.post(
                "/api/chat", json={"agent_name": "assistant", "message": "/recall", "session_id": chat_id}
            )
            return str(recall.json()["response"])

        recall_a, recall_b = await asyncio.gather(drive(first, "a"), drive(second, "b"))
    assert recall_a == "recall: /sleep 30 a0 | /sleep 30 a1 | /sleep 30 a2"
    assert recall_b == "recall: /sleep 30 b0 | /sleep 30 b1 | /sleep 30 b2"
