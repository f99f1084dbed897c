"""POST /api/chat over real HTTP: the seed contract, memory window, tools, failures."""

from __future__ import annotations

import uuid

from tests.e2e.harness import LiveServer


def new_chat_id() -> str:
    return str(uuid.uuid4())


async def test_a_chat_turn_answers_in_the_seed_response_shape(live: LiveServer) -> None:
    async with live.client("alice") as client:
        chat_id = new_chat_id()
        response = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "hello there", "session_id": chat_id}
        )
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "session_id": chat_id,
        "response": "echo: hello there",
        "tool_name": None,
        "tool_input": None,
        "error": None,
        "tool_calls": [],
        "usage": body["usage"],
        "run_id": body["run_id"],
        "model": "echo",
        "status": "completed",
    }
    assert body["usage"]["requests"] == 1
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


async def test_recall_sees_only_the_last_window_of_earlier_turns(live: LiveServer) -> None:
    await live.create_agent("short", history_window=2)
    async with live.client("bob") as client:
        chat_id = new_chat_id()
        for word in ["one", "two", "three", "four"]:
            sent = await client.post(
                "/api/chat", json={"agent_name": "short", "message": word, "session_id": chat_id}
            )
            assert sent.status_code == 200
        recall = await client.post(
            "/api/chat", json={"agent_name": "short", "message": "/recall", "session_id": chat_id}
        )
    assert recall.json()["response"] == "recall: three | four"


async def test_recall_with_the_default_window_sees_every_earlier_message(live: LiveServer) -> None:
    async with live.client("carol") as client:
        chat_id = new_chat_id()
        for word in ["red", "green"]:
            await client.post(
                "/api/chat", json={"agent_name": "assistant", "message": word, "session_id": chat_id}
            )
        recall = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "/recall", "session_id": chat_id}
        )
    assert recall.json()["response"] == "recall: red | green"


async def test_system_shows_the_agents_system_prompt(live: LiveServer) -> None:
    await live.create_agent("pirate", system_prompt="You talk like a pirate.")
    async with live.client("dave") as client:
        reply = await client.post(
            "/api/chat", json={"agent_name": "pirate", "message": "/system", "session_id": new_chat_id()}
        )
    assert reply.json()["response"] == "You talk like a pirate."


async def test_a_tool_call_is_reported_in_the_response(live: LiveServer) -> None:
    async with live.client("erin") as client:
        reply = await client.post(
            "/api/chat",
            json={"agent_name": "assistant", "message": "/tool current_time {}", "session_id": new_chat_id()},
        )
    body = reply.json()
    assert reply.status_code == 200
    assert body["tool_name"] == "current_time"
    assert body["tool_input"] == {}
    [call] = body["tool_calls"]
    assert call["name"] == "current_time" and call["args"] == {}
    assert call["result"].endswith("+00:00")
    assert body["response"] == f"tool current_time returned: {call['result']}"
    assert body["usage"]["requests"] == 2


async def test_the_readmes_tool_examples_work_on_the_seeded_assistant(live: LiveServer) -> None:
    calls = [
        '/tool update_instructions {"instructions": ["Be brief"]}',
        '/tool remember {"note": "likes tea"}',
        '/tool recall_memories {"query": "tea"}',
    ]
    async with live.client("readme-reader") as client:
        replies = [
            await client.post(
                "/api/chat", json={"agent_name": "assistant", "message": call, "session_id": new_chat_id()}
            )
            for call in calls
        ]
    names = [reply.json()["tool_calls"][0]["name"] for reply in replies]
    assert names == ["update_instructions", "remember", "recall_memories"]
    assert "likes tea" in replies[2].json()["response"]


async def test_a_tool_the_agent_lacks_is_answered_without_a_call(live: LiveServer) -> None:
    await live.create_agent("toolless", tools=[])
    async with live.client("erin") as client:
        reply = await client.post(
            "/api/chat",
            json={"agent_name": "toolless", "message": "/tool current_time {}", "session_id": new_chat_id()},
        )
    assert reply.json()["response"] == "unknown tool: current_time"
    assert reply.json()["tool_calls"] == []


async def test_a_failing_model_is_a_502_and_the_users_message_stays_stored(live: LiveServer) -> None:
    async with live.client("frank") as client:
        chat_id = new_chat_id()
        failed = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "/fail", "session_id": chat_id}
        )
        assert failed.status_code == 502
        assert failed.json()["code"] == "model_error"
        after = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "/recall", "session_id": chat_id}
        )
        messages = await client.get(f"/api/chats/{chat_id}/messages")
    assert after.json()["response"] == "recall: /fail"
    roles = [(m["role"], m["content"]) for m in messages.json()["items"]]
    assert roles == [("user", "/fail"), ("user", "/recall"), ("assistant", "recall: /fail")]


async def test_a_slow_model_times_out_with_504_and_keeps_the_message(live: LiveServer) -> None:
    async with live.client("gina") as client:
        chat_id = new_chat_id()
        slow = await client.post(
            "/api/chat",
            json={"agent_name": "assistant", "message": "/sleep 600000 late", "session_id": chat_id},
        )
        messages = await client.get(f"/api/chats/{chat_id}/messages")
    assert slow.status_code == 504
    assert slow.json()["code"] == "model_timeout"
    assert [m["content"] for m in messages.json()["items"]] == ["/sleep 600000 late"]
